/* The ranks of a data-parallel job and their collectives, on an existing
 * engine: MPI (OpenMPI from Debian; the job is started by mpirun, by srun
 * with PMI, or by `genre train --procs N`, which runs mpirun itself). A
 * process started by none of them is a world of one, and MPI is not touched;
 * ranks started without MPI (srun without PMI, by hand) join through NCCL
 * and a rendezvous (comm_open).
 *
 * Buffers are host memory. Every collective is called by every rank in the
 * same order; each waits at most the communicator's timeout for the others
 * (non-blocking MPI polled against a deadline), so a rank that died or hangs
 * ends the job in bounded time: the call fails with err_set naming the wait,
 * and the caller stops (comm_abort ends the other ranks).
 *
 * Reductions are deterministic for a given world size: MPI's reduction
 * order is fixed for a fixed communicator and count. With two ranks a sum
 * is a + b exactly; from three on, the grouping may differ from a sequential
 * sum (rounding only). */
#ifndef GENRE_DIST_COMM_H
#define GENRE_DIST_COMM_H

#include <stdbool.h>
#include <stddef.h>

typedef struct Comm Comm;

typedef enum { COMM_F32, COMM_F64, COMM_I32 } CommType;
typedef enum { COMM_SUM, COMM_MEAN, COMM_MAX } CommOp; /* MEAN: the sum / world size (floats only) */

/* Whether this process was started by an MPI launcher (mpirun, srun with
 * PMI): its environment says so. */
bool comm_launched(void);

/* The job this process belongs to, collectives waiting at most timeout_s
 * seconds. Started by an MPI launcher: MPI is initialised (once per process)
 * and the communicator spans the job. Else, in an srun step of several
 * tasks without PMI, or given a rendezvous (src/dist/rendezvous.h: NULL
 * for Slurm's default): NCCL joins the ranks, on GPU SLURM_LOCALID, its
 * unique id shared through the rendezvous, and carries the host
 * collectives through device memory too. Otherwise a world of one. NULL
 * with err_set when the job cannot be joined (several MPI ranks and no MPI
 * built in; a rendezvous and no NCCL or no GPU; a rendezvous that fails). */
Comm *comm_open(double timeout_s, const char *rendezvous);
/* Ends this rank's part in the job (MPI_Finalize); NULL is ignored. */
void comm_close(Comm *c);
/* Ends every rank of the job with status code, now (MPI_Abort); for a rank
 * that failed while the others may wait for it. Returns only in a world of one. */
void comm_abort(Comm *c, int code);

int comm_rank(const Comm *c);
int comm_world(const Comm *c);
/* This rank's index among the job's ranks on its node: which GPU it takes. */
int comm_local_rank(const Comm *c);

/* In place over n values of type t on every rank. 0, or -1 with err_set. */
int comm_allreduce(Comm *c, void *buf, size_t n, CommType t, CommOp op);
/* root's bytes into every rank's buf. */
int comm_broadcast(Comm *c, void *buf, size_t bytes, int root);
int comm_barrier(Comm *c);
/* in: world x n values; out (n values): this rank's block of their sum over ranks. */
int comm_reduce_scatter(Comm *c, const void *in, void *out, size_t n, CommType t);
/* in: bytes from each rank; out: world x bytes, rank order. */
int comm_allgather(Comm *c, const void *in, void *out, size_t bytes);

#endif
