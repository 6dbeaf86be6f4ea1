/* NCCL in the simulator: each simulated process one "GPU", the collectives
 * carried by MPI when the process has initialised it (`mpirun -np N
 * bin/genre-sim`: genre joins the job through src/dist/comm.h before any
 * NCCL call, as a real job bootstraps NCCL's unique id over MPI), else by
 * shared memory named after the unique id (processes on one machine that
 * found each other through genre's own rendezvous, src/dist/rendezvous.h):
 * each rank copies its part into its slot, all wait at a barrier, and each
 * combines the slots in rank order. A rank that never arrives faults the
 * others after CUDASIM_NCCL_TIMEOUT seconds (default 30) instead of hanging.
 *
 * What is checked as NCCL would fail or hang on a GPU: every rank must pass
 * the same unique id to ncclCommInitRank (the bootstrap worked), with the
 * nranks and rank MPI knows; buffers must be device memory of the right
 * size; collectives are queued on their stream and run only when something
 * waits for it, as other device work (so a missing synchronisation shows);
 * every rank must issue the same collectives in the same order (a
 * mismatch deadlocks NCCL; here MPI compares a per-call signature and
 * faults). Implemented: ncclGetVersion, ncclGetUniqueId, ncclCommInitRank,
 * ncclCommDestroy, ncclCommAbort, ncclCommGetAsyncError, ncclCommCount, ncclCommUserRank,
 * ncclCommCuDevice, ncclGetErrorString, ncclGetLastError, ncclGroupStart,
 * ncclGroupEnd, ncclAllReduce, ncclBroadcast, ncclReduceScatter and
 * ncclAllGather for uint8 (not reduced), int32, float and double with sum, max and avg. Not
 * caught: NCCL's own timing and its in-place rules beyond sendbuff ==
 * recvbuff; several communicators per process. NCCL_DEBUG=INFO, as NCCL's
 * own, says each communicator made and (unlike NCCL's INFO) each
 * collective called, one stderr line each: what a test reads to know that
 * NCCL was used at all. */
/* The C API only: OpenMPI's C++ bindings do not compile warning-free. */
#define OMPI_SKIP_MPICXX 1
#include <mpi.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <thread>
#include <unistd.h>

#include "internal.h"
#include <nccl.h>

using namespace cudasim;

/* The shared-memory transport: a header, then one slot per rank. */
struct Shm {
    std::atomic<uint64_t> arrived;    /* barrier: arrivals so far, all rounds */
    std::atomic<int> joined, ready;
    uint64_t sig[64][4];              /* each rank's call signature */
    size_t slot;                      /* bytes per slot */
};

struct ncclComm {
    MPI_Comm mpi;                     /* MPI_COMM_NULL: shared memory */
    int rank, nranks;
    uint64_t calls;
    Shm *shm;
    size_t shm_bytes;
    uint64_t rounds;                  /* barriers passed */
};

static thread_local char last_error[512];

/* NCCL_DEBUG=INFO (any case, as NCCL reads it). */
static bool info()
{
    static const bool on = getenv("NCCL_DEBUG") && !strcasecmp(getenv("NCCL_DEBUG"), "INFO");
    return on;
}

static ncclResult_t fail(ncclResult_t r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static ncclResult_t fail(ncclResult_t r, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_error, sizeof last_error, fmt, ap);
    va_end(ap);
    fprintf(stderr, "%s\n", last_error);
    return r;
}

static size_t type_bytes(ncclDataType_t t)
{
    switch (t) {
    case ncclUint8: return 1;
    case ncclInt32: return 4;
    case ncclFloat32: return 4;
    case ncclFloat64: return 8;
    default: return 0;
    }
}

static MPI_Datatype mpi_type(ncclDataType_t t)
{
    return t == ncclUint8 ? MPI_UNSIGNED_CHAR : t == ncclInt32 ? MPI_INT : t == ncclFloat32 ? MPI_FLOAT : MPI_DOUBLE;
}

static unsigned char *slot(ncclComm *c, int r) { return (unsigned char *)(c->shm + 1) + (size_t)r * c->shm->slot; }

/* All ranks here, or a fault after the timeout. */
static bool shm_barrier(ncclComm *c, const char *name)
{
    static const double limit = getenv("CUDASIM_NCCL_TIMEOUT") ? atof(getenv("CUDASIM_NCCL_TIMEOUT")) : 30.0;
    uint64_t target = (++c->rounds) * (uint64_t)c->nranks;
    c->shm->arrived.fetch_add(1);
    auto start = std::chrono::steady_clock::now();
    while (c->shm->arrived.load() < target) {
        if (std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() > limit) {
            fault(cudaErrorLaunchFailure, "cudasim: %s: the other ranks did not arrive in %g s (on a GPU NCCL would "
                                          "hang)", name, limit);
            return false;
        }
        std::this_thread::sleep_for(std::chrono::microseconds(20));
    }
    return true;
}

/* Joins (rank 0 creates) the shared memory named after the unique id. */
static ncclResult_t shm_join(ncclComm *c, const ncclUniqueId &id)
{
    uint64_t h = 14695981039346656037ull;
    for (int i = 0; i < NCCL_UNIQUE_ID_BYTES; i++) h = (h ^ (unsigned char)id.internal[i]) * 1099511628211ull;
    char name[64];
    snprintf(name, sizeof name, "/cudasim-nccl-%016llx", (unsigned long long)h);
    size_t slot_bytes = 64u << 20;
    c->shm_bytes = sizeof(Shm) + (size_t)c->nranks * slot_bytes;
    int fd = -1;
    for (int tries = 0; fd < 0 && tries < 3000; tries++) {
        fd = c->rank == 0 ? shm_open(name, O_CREAT | O_EXCL | O_RDWR, 0600) : shm_open(name, O_RDWR, 0600);
        if (fd < 0) usleep(10000);
    }
    if (fd < 0) return fail(ncclSystemError, "cudasim: ncclCommInitRank: shared memory %s: %s", name, strerror(errno));
    if (c->rank == 0 && ftruncate(fd, (off_t)c->shm_bytes) != 0) {
        close(fd);
        return fail(ncclSystemError, "cudasim: ncclCommInitRank: cannot size %s", name);
    }
    void *p = MAP_FAILED;
    for (int tries = 0; p == MAP_FAILED && tries < 3000; tries++) {
        struct stat st;
        if (fstat(fd, &st) == 0 && (size_t)st.st_size == c->shm_bytes)
            p = mmap(nullptr, c->shm_bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        if (p == MAP_FAILED) usleep(10000);
    }
    close(fd);
    if (p == MAP_FAILED) return fail(ncclSystemError, "cudasim: ncclCommInitRank: cannot map %s", name);
    c->shm = (Shm *)p;
    if (c->rank == 0) {
        c->shm->slot = slot_bytes;
        c->shm->ready.store(1);
    }
    while (!c->shm->ready.load()) usleep(1000);
    c->shm->joined.fetch_add(1);
    if (!shm_barrier(c, "ncclCommInitRank")) return fail(ncclSystemError, "cudasim: ncclCommInitRank: ranks missing");
    if (c->rank == 0) shm_unlink(name); /* everyone has it mapped */
    return ncclSuccess;
}

extern "C" {

const char *ncclGetErrorString(ncclResult_t r)
{
    switch (r) {
    case ncclSuccess: return "no error";
    case ncclUnhandledCudaError: return "unhandled cuda error";
    case ncclSystemError: return "unhandled system error";
    case ncclInternalError: return "internal error";
    case ncclInvalidArgument: return "invalid argument";
    case ncclInvalidUsage: return "invalid usage";
    default: return "unknown result code";
    }
}

const char *ncclGetLastError(ncclComm_t) { return last_error; }

ncclResult_t ncclGetVersion(int *version)
{
    if (!version) return fail(ncclInvalidArgument, "cudasim: ncclGetVersion: version is NULL");
    *version = NCCL_VERSION_CODE;
    return ncclSuccess;
}

/* Random bytes and this process: another job's id, or none, differs. */
ncclResult_t ncclGetUniqueId(ncclUniqueId *id)
{
    if (!id) return fail(ncclInvalidArgument, "cudasim: ncclGetUniqueId: id is NULL");
    memset(id, 0, sizeof *id);
    FILE *f = fopen("/dev/urandom", "rb");
    if (!f || fread(id->internal, 1, 64, f) != 64) {
        if (f) fclose(f);
        return fail(ncclSystemError, "cudasim: ncclGetUniqueId: cannot read /dev/urandom");
    }
    fclose(f);
    snprintf(id->internal + 64, 64, "cudasim pid %d", (int)getpid());
    return ncclSuccess;
}

ncclResult_t ncclCommInitRank(ncclComm_t *comm, int nranks, ncclUniqueId id, int rank)
{
    int ready = 0, world = 0, me = 0;
    MPI_Initialized(&ready);
    if (!comm) return fail(ncclInvalidArgument, "cudasim: ncclCommInitRank: comm is NULL");
    if (nranks < 1 || nranks > 64 || rank < 0 || rank >= nranks)
        return fail(ncclInvalidArgument, "cudasim: ncclCommInitRank: rank %d of %d", rank, nranks);
    if (!ready) {
        ncclComm *c = new ncclComm{MPI_COMM_NULL, rank, nranks, 0, nullptr, 0, 0};
        ncclResult_t r = shm_join(c, id);
        if (r != ncclSuccess) {
            delete c;
            return r;
        }
        *comm = c;
        if (info())
            fprintf(stderr, "cudasim: NCCL INFO ncclCommInitRank: rank %d of %d, over shared memory\n", rank, nranks);
        return ncclSuccess;
    }
    MPI_Comm_size(MPI_COMM_WORLD, &world);
    MPI_Comm_rank(MPI_COMM_WORLD, &me);
    if (nranks != world || rank != me)
        return fail(ncclInvalidArgument, "cudasim: ncclCommInitRank: rank %d of %d, but this is MPI rank %d of %d",
                    rank, nranks, me, world);
    /* The bootstrap must have given every rank rank 0's id. */
    char first[NCCL_UNIQUE_ID_BYTES];
    memcpy(first, id.internal, sizeof first);
    MPI_Bcast(first, sizeof first, MPI_BYTE, 0, MPI_COMM_WORLD);
    int same = !memcmp(first, id.internal, sizeof first), all = 0;
    MPI_Allreduce(&same, &all, 1, MPI_INT, MPI_LAND, MPI_COMM_WORLD);
    if (!all)
        return fail(ncclInvalidUsage, "cudasim: ncclCommInitRank: the ranks were given different unique ids (on a "
                                      "GPU they would wait for each other forever)");
    ncclComm *c = new ncclComm{MPI_COMM_NULL, rank, nranks, 0, nullptr, 0, 0};
    MPI_Comm_dup(MPI_COMM_WORLD, &c->mpi);
    *comm = c;
    if (info()) fprintf(stderr, "cudasim: NCCL INFO ncclCommInitRank: rank %d of %d, over MPI\n", rank, nranks);
    return ncclSuccess;
}

ncclResult_t ncclCommDestroy(ncclComm_t comm)
{
    if (!comm) return fail(ncclInvalidArgument, "cudasim: ncclCommDestroy: comm is NULL");
    cudaDeviceSynchronize();
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (comm->mpi != MPI_COMM_NULL && !finalized) MPI_Comm_free(&comm->mpi);
    if (comm->shm) munmap(comm->shm, comm->shm_bytes);
    delete comm;
    return ncclSuccess;
}

ncclResult_t ncclCommGetAsyncError(ncclComm_t comm, ncclResult_t *async)
{
    if (!comm || !async) return fail(ncclInvalidArgument, "cudasim: ncclCommGetAsyncError: NULL argument");
    *async = ncclSuccess; /* the simulator's faults are CUDA's sticky errors */
    return ncclSuccess;
}

ncclResult_t ncclCommAbort(ncclComm_t comm) { return ncclCommDestroy(comm); }

ncclResult_t ncclCommCount(const ncclComm_t comm, int *count)
{
    if (!comm || !count) return fail(ncclInvalidArgument, "cudasim: ncclCommCount: NULL argument");
    *count = comm->nranks;
    return ncclSuccess;
}

ncclResult_t ncclCommUserRank(const ncclComm_t comm, int *rank)
{
    if (!comm || !rank) return fail(ncclInvalidArgument, "cudasim: ncclCommUserRank: NULL argument");
    *rank = comm->rank;
    return ncclSuccess;
}

ncclResult_t ncclCommCuDevice(const ncclComm_t comm, int *device)
{
    if (!comm || !device) return fail(ncclInvalidArgument, "cudasim: ncclCommCuDevice: NULL argument");
    *device = 0;
    return ncclSuccess;
}

/* Collectives run one at a time anyway: a group changes nothing here. */
ncclResult_t ncclGroupStart() { return ncclSuccess; }
ncclResult_t ncclGroupEnd() { return ncclSuccess; }

} /* extern "C" */

/* The checks every collective makes when called, then its work queued on
 * stream: the buffers' bytes must be device memory, and the ranks must be
 * running the same call (name, type, count) as the others. */
static ncclResult_t collective(const char *name, const void *send, size_t send_bytes, void *recv, size_t recv_bytes,
                               size_t count, ncclDataType_t t, ncclComm_t comm, cudaStream_t stream,
                               std::function<void(MPI_Comm)> run, std::function<void()> run_shm)
{
    if (!comm) return fail(ncclInvalidArgument, "cudasim: %s: comm is NULL", name);
    if (!type_bytes(t)) return fail(ncclInvalidArgument, "cudasim: %s: data type %d not simulated", name, (int)t);
    if (!valid_stream(stream)) return fail(ncclInvalidArgument, "cudasim: %s: %p is not a stream", name, (void *)stream);
    const void *bufs[2] = {send, recv};
    size_t sizes[2] = {send_bytes, recv_bytes};
    for (int k = 0; k < 2; k++)
        if (sizes[k] && !device_block(bufs[k], sizes[k], nullptr, nullptr)) {
            char where[300];
            describe(bufs[k], where, sizeof where);
            return fail(ncclInvalidArgument, "cudasim: %s: %s buffer %p of %zu bytes is not device memory (%s)", name,
                        k ? "receive" : "send", bufs[k], sizes[k], where);
        }
    if (info())
        fprintf(stderr, "cudasim: NCCL INFO rank %d of %d: %s of %zu values (type %d), call %llu\n", comm->rank,
                comm->nranks, name, count, (int)t, (unsigned long long)comm->calls);
    uint64_t call = comm->calls++, which = 14695981039346656037ull; /* FNV-1a of the name */
    for (const char *p = name; *p; p++) which = (which ^ (unsigned char)*p) * 1099511628211ull;
    uint64_t sig[4] = {call, (uint64_t)t, (uint64_t)count, which};
    if (comm->shm && (send_bytes > comm->shm->slot || recv_bytes > comm->shm->slot * (size_t)comm->nranks))
        return fail(ncclInvalidArgument, "cudasim: %s: %zu bytes is more than the shared-memory transport holds", name,
                    send_bytes);
    enqueue(stream, name, [=]() {
        bool same = true;
        if (comm->shm) {
            memcpy(comm->shm->sig[comm->rank], sig, sizeof sig);
            if (!shm_barrier(comm, name)) return;
            for (int r = 0; r < comm->nranks; r++) same = same && !memcmp(comm->shm->sig[r], sig, sizeof sig);
        } else {
            uint64_t lo[4], hi[4];
            MPI_Allreduce(sig, lo, 4, MPI_UINT64_T, MPI_MIN, comm->mpi);
            MPI_Allreduce(sig, hi, 4, MPI_UINT64_T, MPI_MAX, comm->mpi);
            same = !memcmp(lo, hi, sizeof lo);
        }
        if (!same)
            fault(cudaErrorLaunchFailure,
                  "cudasim: %s (call %llu of this communicator): the ranks issued different collectives (on a GPU "
                  "NCCL would hang)", name, (unsigned long long)call);
        else if (comm->shm)
            run_shm();
        else
            run(comm->mpi);
    });
    return ncclSuccess;
}

static MPI_Op mpi_op(ncclRedOp_t op) { return op == ncclMax ? MPI_MAX : MPI_SUM; }

template <typename T> static void combine_as(void *out, ncclComm *c, size_t off, size_t count, ncclRedOp_t op)
{
    T *o = (T *)out;
    for (size_t i = 0; i < count; i++) {
        T x = ((const T *)slot(c, 0))[off + i];
        for (int r = 1; r < c->nranks; r++) {
            T y = ((const T *)slot(c, r))[off + i];
            x = op == ncclMax ? (y > x ? y : x) : x + y;
        }
        o[i] = x;
    }
}

/* out[i] = the slots' values off + i combined in rank order. */
static void combine(void *out, ncclComm *c, size_t off, size_t count, ncclDataType_t t, ncclRedOp_t op)
{
    if (t == ncclFloat32) combine_as<float>(out, c, off, count, op);
    else if (t == ncclFloat64) combine_as<double>(out, c, off, count, op);
    else combine_as<int32_t>(out, c, off, count, op);
}

static void average(void *buf, size_t count, ncclDataType_t t, int n)
{
    for (size_t i = 0; i < count; i++) {
        if (t == ncclFloat32) ((float *)buf)[i] /= (float)n;
        else if (t == ncclFloat64) ((double *)buf)[i] /= (double)n;
    }
}

extern "C" {

ncclResult_t ncclAllReduce(const void *sendbuff, void *recvbuff, size_t count, ncclDataType_t datatype,
                           ncclRedOp_t op, ncclComm_t comm, cudaStream_t stream)
{
    if (op != ncclSum && op != ncclMax && op != ncclAvg)
        return fail(ncclInvalidArgument, "cudasim: ncclAllReduce: reduction %d not simulated", (int)op);
    if (op == ncclAvg && datatype == ncclInt32)
        return fail(ncclInvalidArgument, "cudasim: ncclAllReduce: ncclAvg of integers");
    size_t bytes = count * type_bytes(datatype);
    return collective("ncclAllReduce", sendbuff, bytes, recvbuff, bytes, count, datatype, comm, stream,
                      [=](MPI_Comm m) {
                          MPI_Allreduce(sendbuff == recvbuff ? MPI_IN_PLACE : sendbuff, recvbuff, (int)count,
                                        mpi_type(datatype), mpi_op(op), m);
                          if (op == ncclAvg) average(recvbuff, count, datatype, comm->nranks);
                      },
                      [=]() {
                          memcpy(slot(comm, comm->rank), sendbuff, bytes);
                          if (!shm_barrier(comm, "ncclAllReduce")) return;
                          combine(recvbuff, comm, 0, count, datatype, op);
                          if (op == ncclAvg) average(recvbuff, count, datatype, comm->nranks);
                          shm_barrier(comm, "ncclAllReduce");
                      });
}

ncclResult_t ncclBroadcast(const void *sendbuff, void *recvbuff, size_t count, ncclDataType_t datatype, int root,
                           ncclComm_t comm, cudaStream_t stream)
{
    size_t bytes = count * type_bytes(datatype);
    if (comm && (root < 0 || root >= comm->nranks))
        return fail(ncclInvalidArgument, "cudasim: ncclBroadcast: root %d of %d ranks", root, comm->nranks);
    return collective("ncclBroadcast", comm && comm->rank == root ? sendbuff : nullptr,
                      comm && comm->rank == root ? bytes : 0, recvbuff, bytes, count, datatype, comm, stream,
                      [=](MPI_Comm m) {
                          if (comm->rank == root && sendbuff != recvbuff) memmove(recvbuff, sendbuff, bytes);
                          MPI_Bcast(recvbuff, (int)count, mpi_type(datatype), root, m);
                      },
                      [=]() {
                          if (comm->rank == root) memcpy(slot(comm, root), sendbuff, bytes);
                          if (!shm_barrier(comm, "ncclBroadcast")) return;
                          memcpy(recvbuff, slot(comm, root), bytes);
                          shm_barrier(comm, "ncclBroadcast");
                      });
}

ncclResult_t ncclReduceScatter(const void *sendbuff, void *recvbuff, size_t recvcount, ncclDataType_t datatype,
                               ncclRedOp_t op, ncclComm_t comm, cudaStream_t stream)
{
    if (op != ncclSum && op != ncclMax && op != ncclAvg)
        return fail(ncclInvalidArgument, "cudasim: ncclReduceScatter: reduction %d not simulated", (int)op);
    size_t bytes = recvcount * type_bytes(datatype), n = comm ? (size_t)comm->nranks : 1;
    return collective("ncclReduceScatter", sendbuff, n * bytes, recvbuff, bytes, recvcount, datatype, comm, stream,
                      [=](MPI_Comm m) {
                          MPI_Reduce_scatter_block(sendbuff, recvbuff, (int)recvcount, mpi_type(datatype),
                                                   mpi_op(op), m);
                          if (op == ncclAvg) average(recvbuff, recvcount, datatype, comm->nranks);
                      },
                      [=]() {
                          memcpy(slot(comm, comm->rank), sendbuff, n * bytes);
                          if (!shm_barrier(comm, "ncclReduceScatter")) return;
                          combine(recvbuff, comm, (size_t)comm->rank * recvcount, recvcount, datatype, op);
                          if (op == ncclAvg) average(recvbuff, recvcount, datatype, comm->nranks);
                          shm_barrier(comm, "ncclReduceScatter");
                      });
}

ncclResult_t ncclAllGather(const void *sendbuff, void *recvbuff, size_t sendcount, ncclDataType_t datatype,
                           ncclComm_t comm, cudaStream_t stream)
{
    size_t bytes = sendcount * type_bytes(datatype), n = comm ? (size_t)comm->nranks : 1;
    return collective("ncclAllGather", sendbuff, bytes, recvbuff, n * bytes, sendcount, datatype, comm, stream,
                      [=](MPI_Comm m) {
                          MPI_Allgather(sendbuff, (int)sendcount, mpi_type(datatype), recvbuff, (int)sendcount,
                                        mpi_type(datatype), m);
                      },
                      [=]() {
                          memcpy(slot(comm, comm->rank), sendbuff, bytes);
                          if (!shm_barrier(comm, "ncclAllGather")) return;
                          for (int r = 0; r < comm->nranks; r++)
                              memcpy((unsigned char *)recvbuff + (size_t)r * bytes, slot(comm, r), bytes);
                          shm_barrier(comm, "ncclAllGather");
                      });
}

} /* extern "C" */
