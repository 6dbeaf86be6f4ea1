#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "src/core/err.h"
#include "src/dist/comm.h"

#ifdef GENRE_MPI
#include <mpi.h>
#endif

struct Comm {
    int rank, world, local;
    double timeout;
#ifdef GENRE_MPI
    MPI_Comm mpi; /* MPI_COMM_NULL: a world of one */
#endif
};

static long env_long(const char *name)
{
    const char *v = getenv(name);
    return v && *v ? strtol(v, NULL, 10) : -1;
}

/* What mpirun (OpenMPI), PMIx launchers (srun --mpi=pmix, prterun) and
 * PMI-1/2 launchers (MPICH's hydra, srun --mpi=pmi2) put in the environment. */
bool comm_launched(void)
{
    return getenv("OMPI_COMM_WORLD_SIZE") || getenv("PMIX_RANK") || getenv("PMI_RANK") || getenv("PMI_SIZE");
}

/* srun started several tasks of this step but gave them nothing to find
 * each other through: each would train alone into the same directory. */
static int lone_srun_task(void)
{
    long tasks = env_long("SLURM_STEP_NUM_TASKS");
    if (tasks > 1 && !comm_launched())
        return err_set("srun started %ld tasks (SLURM_PROCID %ld) but no MPI environment (PMI) joins them: "
                       "run `srun --mpi=pmix genre train ...` (see configs/launch/)", tasks, env_long("SLURM_PROCID"));
    return 0;
}

#ifdef GENRE_MPI
static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

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

Comm *comm_open(double timeout_s)
{
    if (lone_srun_task() != 0) return NULL;
    Comm *c = xcalloc(1, sizeof *c);
    c->world = 1;
    c->timeout = timeout_s;
#ifdef GENRE_MPI
    c->mpi = MPI_COMM_NULL;
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

int comm_allreduce(Comm *c, void *buf, size_t n, CommType t, CommOp op)
{
    if (op == COMM_MEAN && t == COMM_I32) return err_set("comm_allreduce: no mean of integers");
    if (c->world == 1) return 0;
#ifdef GENRE_MPI
    MPI_Op mop = op == COMM_MAX ? MPI_MAX : MPI_SUM;
    for (size_t at = 0; at < n; at += PIECE) {
        size_t k = n - at < PIECE ? n - at : PIECE;
        MPI_Request req;
        int rc = MPI_Iallreduce(MPI_IN_PLACE, (char *)buf + at * type_size(t), (int)k, mpi_type(t), mop, c->mpi, &req);
        if (rc != MPI_SUCCESS) return mpi_error(rc, "all-reduce");
        if (wait_for(c, &req, "all-reduce") != 0) return -1;
    }
    if (op == COMM_MEAN)
        for (size_t i = 0; i < n; i++) {
            if (t == COMM_F32) ((float *)buf)[i] /= (float)c->world;
            else ((double *)buf)[i] /= (double)c->world;
        }
    return 0;
#else
    (void)buf, (void)n;
    return err_set("comm: no MPI in this build");
#endif
}

int comm_broadcast(Comm *c, void *buf, size_t bytes, int root)
{
    if (c->world == 1) return 0;
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
