#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "src/core/err.h"
#include "src/dist/comm.h"
#include "src/dist/rendezvous.h"

#ifdef GENRE_MPI
#include <mpi.h>
#endif
#ifdef GENRE_NCCL
#include <cuda_runtime.h>
#include <nccl.h>
#endif

struct Comm {
    int rank, world, local;
    double timeout;
#ifdef GENRE_MPI
    MPI_Comm mpi; /* MPI_COMM_NULL: a world of one, or NCCL's */
#endif
#ifdef GENRE_NCCL
    /* A job no MPI launcher started: NCCL carries the host collectives too,
     * through a device buffer, on a stream of the communicator's own. */
    ncclComm_t nccl;
    cudaStream_t stream;
    void *dev;
    size_t dev_size;
#endif
};

#ifndef GENRE_MPI
static long env_long(const char *name)
{
    const char *v = getenv(name);
    return v && *v ? strtol(v, NULL, 10) : -1;
}
#endif

/* What mpirun (OpenMPI), PMIx launchers (srun --mpi=pmix, prterun) and
 * PMI-1/2 launchers (MPICH's hydra, srun --mpi=pmi2) put in the environment. */
bool comm_launched(void)
{
    return getenv("OMPI_COMM_WORLD_SIZE") || getenv("PMIX_RANK") || getenv("PMI_RANK") || getenv("PMI_SIZE");
}

#if defined(GENRE_MPI) || defined(GENRE_NCCL)
static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

#endif

#ifdef GENRE_MPI
static int mpi_error(int code, const char *what)
{
    char text[MPI_MAX_ERROR_STRING];
    int len = 0;
    MPI_Error_string(code, text, &len);
    return err_set("%s: %s", what, text);
}

/* Polls a non-blocking collective until it completes or the timeout passes.
 * Naps grow to 1 ms, so a wait costs little CPU and a fast step little
 * latency. */
static int wait_for(Comm *c, MPI_Request *req, const char *what)
{
    double deadline = now() + c->timeout;
    useconds_t nap = 1;
    for (;;) {
        int done = 0, rc = MPI_Test(req, &done, MPI_STATUS_IGNORE);
        if (rc != MPI_SUCCESS) return mpi_error(rc, what);
        if (done) return 0;
        if (now() > deadline)
            return err_set("%s: no answer from the other ranks in %g s (a rank died or hangs)", what, c->timeout);
        usleep(nap);
        if (nap < 1000) nap *= 2;
    }
}

static MPI_Datatype mpi_type(CommType t)
{
    return t == COMM_F32 ? MPI_FLOAT : t == COMM_F64 ? MPI_DOUBLE : MPI_INT;
}
#endif

static size_t type_size(CommType t) { return t == COMM_F64 ? sizeof(double) : sizeof(float); }

#ifdef GENRE_NCCL
static int cuda_ok(cudaError_t e, const char *what)
{
    return e == cudaSuccess ? 0 : err_set("%s: %s", what, cudaGetErrorString(e));
}

static int nccl_ok(ncclResult_t r, const char *what)
{
    return r == ncclSuccess ? 0 : err_set("%s: %s", what, ncclGetErrorString(r));
}

/* This rank's GPU, rank 0's unique id through the rendezvous, the
 * communicator. */
static int nccl_join(Comm *c, const RendezvousJob *job)
{
    int gpus = 0;
    if (cudaGetDeviceCount(&gpus) != cudaSuccess || gpus == 0)
        return err_set("rank %d of %d (no MPI launcher): the ranks join through NCCL, which needs a GPU; run under "
                       "mpirun or srun --mpi=pmix", job->rank, job->world);
    ncclUniqueId id;
    memset(&id, 0, sizeof id);
    if (cuda_ok(cudaSetDevice(job->local % gpus), "cudaSetDevice") ||
        (job->rank == 0 && nccl_ok(ncclGetUniqueId(&id), "ncclGetUniqueId")) ||
        rendezvous_share(job, &id, sizeof id, c->timeout) ||
        nccl_ok(ncclCommInitRank(&c->nccl, job->world, id, job->rank), "ncclCommInitRank") ||
        cuda_ok(cudaStreamCreateWithFlags(&c->stream, cudaStreamNonBlocking), "cudaStreamCreate"))
        return -1;
    c->rank = job->rank;
    c->world = job->world;
    c->local = job->local;
    return 0;
}
#endif

Comm *comm_open(double timeout_s, const char *rendezvous)
{
    Comm *c = xcalloc(1, sizeof *c);
    c->world = 1;
    c->timeout = timeout_s;
#ifdef GENRE_MPI
    c->mpi = MPI_COMM_NULL;
#endif
    RendezvousJob job;
    int rc = comm_launched() ? 1 : rendezvous_job(&job, rendezvous);
    if (rc < 0) {
        free(c);
        return NULL;
    }
    if (rc == 0) {
#ifdef GENRE_NCCL
        if (nccl_join(c, &job) == 0) return c;
#else
        err_set("rank %d of %d: a job without an MPI launcher joins through NCCL, and this genre was built without "
                "it; run under mpirun or srun --mpi=pmix", job.rank, job.world);
#endif
        comm_close(c);
        return NULL;
    }
#ifdef GENRE_MPI
    if (!comm_launched()) return c;
    int ready = 0, provided;
    MPI_Initialized(&ready);
    /* FUNNELED: OpenMP threads compute, only the main thread calls MPI. */
    if (!ready && MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS) {
        free(c);
        err_set("MPI_Init failed");
        return NULL;
    }
    MPI_Comm_dup(MPI_COMM_WORLD, &c->mpi);
    MPI_Comm_set_errhandler(c->mpi, MPI_ERRORS_RETURN);
    MPI_Comm_rank(c->mpi, &c->rank);
    MPI_Comm_size(c->mpi, &c->world);
    MPI_Comm node;
    MPI_Comm_split_type(c->mpi, MPI_COMM_TYPE_SHARED, c->rank, MPI_INFO_NULL, &node);
    MPI_Comm_rank(node, &c->local);
    MPI_Comm_free(&node);
#else
    long world = env_long("OMPI_COMM_WORLD_SIZE") > 0 ? env_long("OMPI_COMM_WORLD_SIZE") : env_long("PMI_SIZE");
    if (comm_launched() && world != 1) {
        free(c);
        err_set("started by an MPI launcher with %ld ranks, but this genre was built without MPI "
                "(install libopenmpi-dev and rebuild)", world);
        return NULL;
    }
#endif
    return c;
}

void comm_close(Comm *c)
{
    if (!c) return;
#ifdef GENRE_NCCL
    if (c->nccl) ncclCommDestroy(c->nccl);
    if (c->stream) cudaStreamDestroy(c->stream);
    if (c->dev) cudaFree(c->dev);
#endif
#ifdef GENRE_MPI
    if (c->mpi != MPI_COMM_NULL) {
        MPI_Comm_free(&c->mpi);
        MPI_Finalize();
    }
#endif
    free(c);
}

void comm_abort(Comm *c, int code)
{
#ifdef GENRE_NCCL
    /* NCCL cannot end the other ranks: they stop at their next wait. */
    if (c && c->nccl) ncclCommAbort(c->nccl), c->nccl = NULL;
#endif
#ifdef GENRE_MPI
    if (c && c->mpi != MPI_COMM_NULL) MPI_Abort(c->mpi, code);
#else
    (void)c, (void)code;
#endif
}

int comm_rank(const Comm *c) { return c->rank; }
int comm_world(const Comm *c) { return c->world; }
int comm_local_rank(const Comm *c) { return c->local; }

/* MPI counts are int: larger buffers go in pieces of 2^30 values. */
#define PIECE ((size_t)1 << 30)

#ifdef GENRE_NCCL
/* The staging buffer, grown to bytes. */
static void *staging(Comm *c, size_t bytes)
{
    if (bytes > c->dev_size) {
        if (c->dev) cudaFree(c->dev);
        c->dev = NULL;
        c->dev_size = 0;
        if (cuda_ok(cudaMalloc(&c->dev, bytes), "comm: cudaMalloc")) return NULL;
        c->dev_size = bytes;
    }
    return c->dev;
}

/* Polls the communicator's stream until its work is done or the timeout
 * passes (then the communicator is aborted, as NCCL asks). */
static int nccl_wait(Comm *c, const char *what)
{
    double deadline = now() + c->timeout;
    useconds_t nap = 1;
    for (;;) {
        cudaError_t e = cudaStreamQuery(c->stream);
        if (e == cudaSuccess) return 0;
        if (e != cudaErrorNotReady) return cuda_ok(e, what);
        ncclResult_t async;
        if (ncclCommGetAsyncError(c->nccl, &async) == ncclSuccess && async != ncclSuccess && async != ncclInProgress)
            return nccl_ok(async, what);
        if (now() > deadline) {
            ncclCommAbort(c->nccl);
            c->nccl = NULL;
            return err_set("%s: no answer from the other ranks in %g s (a rank died or hangs)", what, c->timeout);
        }
        usleep(nap);
        if (nap < 1000) nap *= 2;
    }
}

static ncclDataType_t nccl_type(CommType t) { return t == COMM_F32 ? ncclFloat32 : t == COMM_F64 ? ncclFloat64 : ncclInt32; }

/* in (in_bytes) to the device, the collective `run` there, out_bytes back
 * into out, waited for. */
static int nccl_host(Comm *c, const char *what, const void *in, size_t in_bytes, void *out, size_t out_bytes,
                     ncclResult_t (*run)(Comm *c, void *dev, const void *arg), const void *arg)
{
    void *d = staging(c, in_bytes > out_bytes ? in_bytes : out_bytes);
    if (!d || cuda_ok(cudaMemcpyAsync(d, in, in_bytes, cudaMemcpyHostToDevice, c->stream), what) ||
        nccl_ok(run(c, d, arg), what) ||
        cuda_ok(cudaMemcpyAsync(out, d, out_bytes, cudaMemcpyDeviceToHost, c->stream), what))
        return -1;
    return nccl_wait(c, what);
}

typedef struct {
    size_t n;
    CommType t;
    CommOp op;
    int root;
} NcclArgs;

static ncclResult_t run_allreduce(Comm *c, void *d, const void *arg)
{
    const NcclArgs *a = arg;
    return ncclAllReduce(d, d, a->n, nccl_type(a->t), a->op == COMM_MAX ? ncclMax : ncclSum, c->nccl, c->stream);
}

static ncclResult_t run_broadcast(Comm *c, void *d, const void *arg)
{
    const NcclArgs *a = arg;
    return ncclBroadcast(d, d, a->n, ncclUint8, a->root, c->nccl, c->stream);
}

/* Reduce-scatter and all-gather out of place: the output after the input. */
static ncclResult_t run_reduce_scatter(Comm *c, void *d, const void *arg)
{
    const NcclArgs *a = arg;
    size_t in = (size_t)c->world * a->n * type_size(a->t);
    return ncclReduceScatter(d, (char *)d + in, a->n, nccl_type(a->t), ncclSum, c->nccl, c->stream);
}

static ncclResult_t run_allgather(Comm *c, void *d, const void *arg)
{
    const NcclArgs *a = arg;
    return ncclAllGather(d, (char *)d + a->n, a->n, ncclUint8, c->nccl, c->stream);
}
#endif

static void divide(void *buf, size_t n, CommType t, int world)
{
    for (size_t i = 0; i < n; i++) {
        if (t == COMM_F32) ((float *)buf)[i] /= (float)world;
        else ((double *)buf)[i] /= (double)world;
    }
}

int comm_allreduce(Comm *c, void *buf, size_t n, CommType t, CommOp op)
{
    if (op == COMM_MEAN && t == COMM_I32) return err_set("comm_allreduce: no mean of integers");
    if (c->world == 1) return 0;
#ifdef GENRE_NCCL
    if (c->nccl) {
        NcclArgs a = {n, t, op, 0};
        size_t bytes = n * type_size(t);
        if (nccl_host(c, "all-reduce", buf, bytes, buf, bytes, run_allreduce, &a) != 0) return -1;
        if (op == COMM_MEAN) divide(buf, n, t, c->world);
        return 0;
    }
#endif
#ifdef GENRE_MPI
    MPI_Op mop = op == COMM_MAX ? MPI_MAX : MPI_SUM;
    for (size_t at = 0; at < n; at += PIECE) {
        size_t k = n - at < PIECE ? n - at : PIECE;
        MPI_Request req;
        int rc = MPI_Iallreduce(MPI_IN_PLACE, (char *)buf + at * type_size(t), (int)k, mpi_type(t), mop, c->mpi, &req);
        if (rc != MPI_SUCCESS) return mpi_error(rc, "all-reduce");
        if (wait_for(c, &req, "all-reduce") != 0) return -1;
    }
    if (op == COMM_MEAN) divide(buf, n, t, c->world);
    return 0;
#else
    (void)buf, (void)n, (void)divide;
    return err_set("comm: no MPI in this build");
#endif
}

int comm_broadcast(Comm *c, void *buf, size_t bytes, int root)
{
    if (c->world == 1) return 0;
#ifdef GENRE_NCCL
    if (c->nccl) {
        NcclArgs a = {bytes, COMM_I32, COMM_SUM, root};
        return nccl_host(c, "broadcast", buf, bytes, buf, bytes, run_broadcast, &a);
    }
#endif
#ifdef GENRE_MPI
    for (size_t at = 0; at < bytes; at += PIECE) {
        size_t k = bytes - at < PIECE ? bytes - at : PIECE;
        MPI_Request req;
        int rc = MPI_Ibcast((char *)buf + at, (int)k, MPI_BYTE, root, c->mpi, &req);
        if (rc != MPI_SUCCESS) return mpi_error(rc, "broadcast");
        if (wait_for(c, &req, "broadcast") != 0) return -1;
    }
    return 0;
#else
    (void)buf, (void)bytes, (void)root;
    return err_set("comm: no MPI in this build");
#endif
}

int comm_barrier(Comm *c)
{
    if (c->world == 1) return 0;
#ifdef GENRE_NCCL
    if (c->nccl) {
        int one = 1;
        return comm_allreduce(c, &one, 1, COMM_I32, COMM_SUM);
    }
#endif
#ifdef GENRE_MPI
    MPI_Request req;
    int rc = MPI_Ibarrier(c->mpi, &req);
    if (rc != MPI_SUCCESS) return mpi_error(rc, "barrier");
    return wait_for(c, &req, "barrier");
#else
    return err_set("comm: no MPI in this build");
#endif
}

int comm_reduce_scatter(Comm *c, const void *in, void *out, size_t n, CommType t)
{
    if (c->world == 1) {
        memmove(out, in, n * type_size(t));
        return 0;
    }
#ifdef GENRE_NCCL
    if (c->nccl) {
        NcclArgs a = {n, t, COMM_SUM, 0};
        size_t in_bytes = (size_t)c->world * n * type_size(t), out_bytes = n * type_size(t);
        void *d = staging(c, in_bytes + out_bytes);
        if (!d || cuda_ok(cudaMemcpyAsync(d, in, in_bytes, cudaMemcpyHostToDevice, c->stream), "reduce-scatter") ||
            nccl_ok(run_reduce_scatter(c, d, &a), "reduce-scatter") ||
            cuda_ok(cudaMemcpyAsync(out, (char *)d + in_bytes, out_bytes, cudaMemcpyDeviceToHost, c->stream),
                    "reduce-scatter"))
            return -1;
        return nccl_wait(c, "reduce-scatter");
    }
#endif
#ifdef GENRE_MPI
    if (n > PIECE) return err_set("reduce-scatter: %zu values per rank is more than MPI counts", n);
    MPI_Request req;
    int rc = MPI_Ireduce_scatter_block(in, out, (int)n, mpi_type(t), MPI_SUM, c->mpi, &req);
    if (rc != MPI_SUCCESS) return mpi_error(rc, "reduce-scatter");
    return wait_for(c, &req, "reduce-scatter");
#else
    return err_set("comm: no MPI in this build");
#endif
}

int comm_allgather(Comm *c, const void *in, void *out, size_t bytes)
{
    if (c->world == 1) {
        memmove(out, in, bytes);
        return 0;
    }
#ifdef GENRE_NCCL
    if (c->nccl) {
        NcclArgs a = {bytes, COMM_I32, COMM_SUM, 0};
        size_t all = (size_t)c->world * bytes;
        void *d = staging(c, bytes + all);
        if (!d || cuda_ok(cudaMemcpyAsync(d, in, bytes, cudaMemcpyHostToDevice, c->stream), "all-gather") ||
            nccl_ok(run_allgather(c, d, &a), "all-gather") ||
            cuda_ok(cudaMemcpyAsync(out, (char *)d + bytes, all, cudaMemcpyDeviceToHost, c->stream), "all-gather"))
            return -1;
        return nccl_wait(c, "all-gather");
    }
#endif
#ifdef GENRE_MPI
    if (bytes > PIECE) return err_set("all-gather: %zu bytes per rank is more than MPI counts", bytes);
    MPI_Request req;
    int rc = MPI_Iallgather(in, (int)bytes, MPI_BYTE, out, (int)bytes, MPI_BYTE, c->mpi, &req);
    if (rc != MPI_SUCCESS) return mpi_error(rc, "all-gather");
    return wait_for(c, &req, "all-gather");
#else
    return err_set("comm: no MPI in this build");
#endif
}
