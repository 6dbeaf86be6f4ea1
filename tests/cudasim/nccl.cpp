/* NCCL in the simulator: the communicator of `mpirun -np N bin/genre-sim`,
 * each simulated process one "GPU", the collectives carried by MPI (which
 * the process has initialised: genre joins the job through src/dist/comm.h
 * before any NCCL call, as a real job bootstraps NCCL's unique id over MPI).
 *
 * What is checked as NCCL would fail or hang on a GPU: every rank must pass
 * the same unique id to ncclCommInitRank (the bootstrap worked), with the
 * nranks and rank MPI knows; buffers must be device memory of the right
 * size; collectives are queued on their stream and run only when something
 * waits for it, as other device work (so a missing synchronisation shows);
 * every rank must issue the same collectives in the same order (a
 * mismatch deadlocks NCCL; here MPI compares a per-call signature and
 * faults). Implemented: ncclGetVersion, ncclGetUniqueId, ncclCommInitRank,
 * ncclCommDestroy, ncclCommAbort, ncclCommCount, ncclCommUserRank,
 * ncclCommCuDevice, ncclGetErrorString, ncclGetLastError, ncclGroupStart,
 * ncclGroupEnd, ncclAllReduce, ncclBroadcast, ncclReduceScatter and
 * ncclAllGather for int32, float and double with sum, max and avg. Not
 * caught: NCCL's own timing and its in-place rules beyond sendbuff ==
 * recvbuff; several communicators per process. */
/* The C API only: OpenMPI's C++ bindings do not compile warning-free. */
#define OMPI_SKIP_MPICXX 1
#include <mpi.h>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <unistd.h>

#include "internal.h"
#include <nccl.h>

using namespace cudasim;

struct ncclComm {
    MPI_Comm mpi;
    int rank, nranks;
    uint64_t calls;
};

static thread_local char last_error[512];

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
    case ncclInt32: return 4;
    case ncclFloat32: return 4;
    case ncclFloat64: return 8;
    default: return 0;
    }
}

static MPI_Datatype mpi_type(ncclDataType_t t)
{
    return t == ncclInt32 ? MPI_INT : t == ncclFloat32 ? MPI_FLOAT : MPI_DOUBLE;
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
    if (!ready)
        return fail(ncclInvalidUsage, "cudasim: ncclCommInitRank: MPI is not initialised (the simulator carries "
                                      "NCCL over the MPI job; run under mpirun)");
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
    ncclComm *c = new ncclComm{MPI_COMM_NULL, rank, nranks, 0};
    MPI_Comm_dup(MPI_COMM_WORLD, &c->mpi);
    *comm = c;
    return ncclSuccess;
}

ncclResult_t ncclCommDestroy(ncclComm_t comm)
{
    if (!comm) return fail(ncclInvalidArgument, "cudasim: ncclCommDestroy: comm is NULL");
    cudaDeviceSynchronize();
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (!finalized) MPI_Comm_free(&comm->mpi);
    delete comm;
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
                               std::function<void(MPI_Comm)> run)
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
    uint64_t call = comm->calls++, which = 14695981039346656037ull; /* FNV-1a of the name */
    for (const char *p = name; *p; p++) which = (which ^ (unsigned char)*p) * 1099511628211ull;
    uint64_t sig[4] = {call, (uint64_t)t, (uint64_t)count, which};
    enqueue(stream, name, [=]() {
        uint64_t lo[4], hi[4];
        MPI_Allreduce(sig, lo, 4, MPI_UINT64_T, MPI_MIN, comm->mpi);
        MPI_Allreduce(sig, hi, 4, MPI_UINT64_T, MPI_MAX, comm->mpi);
        if (memcmp(lo, hi, sizeof lo))
            fault(cudaErrorLaunchFailure,
                  "cudasim: %s (call %llu of this communicator): the ranks issued different collectives (on a GPU "
                  "NCCL would hang)", name, (unsigned long long)call);
        else
            run(comm->mpi);
    });
    return ncclSuccess;
}

static MPI_Op mpi_op(ncclRedOp_t op) { return op == ncclMax ? MPI_MAX : MPI_SUM; }

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
                      });
}

} /* extern "C" */
