/* nccl-check: the simulated NCCL (tests/cudasim/nccl.cpp) under a real MPI
 * job, mpirun -np N build/tests/nccl-check MODE:
 *   ok            every collective on device buffers, against values each
 *                 rank computes alone; prints "nccl-check: rank R of N: ok"
 *   own-ids       each rank makes its own unique id (a broken bootstrap):
 *                 ncclCommInitRank must fail
 *   mismatch      rank 0 all-reduces while the others broadcast: the
 *                 synchronisation must fail (NCCL would hang)
 *   host-pointer  a host buffer to ncclAllReduce must be refused
 * Exits 0 when the mode's expectation holds. tests/unit/test_dist.c runs it. */
#include <cuda_runtime.h>
#include <nccl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "src/core/err.h"
#include "src/dist/comm.h"

static int check(int ok, int rank, const char *what)
{
    if (!ok) fprintf(stderr, "nccl-check: rank %d: %s\n", rank, what);
    return ok ? 0 : 1;
}

int main(int argc, char **argv)
{
    const char *mode = argc > 1 ? argv[1] : "ok";
    Comm *c = comm_open(20.0, NULL);
    if (!c) die_err();
    int r = comm_rank(c), n = comm_world(c);
    ncclUniqueId id;
    memset(&id, 0, sizeof id);
    if (r == 0 || !strcmp(mode, "own-ids")) ncclGetUniqueId(&id);
    if (strcmp(mode, "own-ids") && comm_broadcast(c, &id, sizeof id, 0)) die_err();
    ncclComm_t nc;
    ncclResult_t init = ncclCommInitRank(&nc, n, id, r);
    if (!strcmp(mode, "own-ids")) {
        int bad = check(init != ncclSuccess, r, "different unique ids were accepted");
        comm_close(c);
        return bad;
    }
    if (init != ncclSuccess) die("ncclCommInitRank: %s", ncclGetErrorString(init));
    cudaStream_t s;
    cudaStreamCreate(&s);
    float *d, h[4];
    cudaMalloc((void **)&d, (size_t)(4 * n) * sizeof(float));
    int bad = 0;
    if (!strcmp(mode, "host-pointer")) {
        bad = check(ncclAllReduce(h, h, 4, ncclFloat32, ncclSum, nc, s) == ncclInvalidArgument, r,
                    "a host buffer was accepted");
    } else if (!strcmp(mode, "mismatch")) {
        if (r == 0) ncclAllReduce(d, d, 4, ncclFloat32, ncclSum, nc, s);
        else ncclBroadcast(d, d, 4, ncclFloat32, 0, nc, s);
        bad = check(cudaStreamSynchronize(s) != cudaSuccess, r, "mismatched collectives ran");
    } else {
        for (int k = 0; k < 4; k++) h[k] = (float)(r + k);
        double sum_r = n * (n - 1) / 2.0;
        cudaMemcpy(d, h, sizeof h, cudaMemcpyHostToDevice);
        ncclAllReduce(d, d, 4, ncclFloat32, ncclSum, nc, s);
        cudaStreamSynchronize(s);
        cudaMemcpy(h, d, sizeof h, cudaMemcpyDeviceToHost);
        for (int k = 0; k < 4; k++) bad |= check(h[k] == (float)(sum_r + n * k), r, "all-reduce sum");
        for (int k = 0; k < 4; k++) h[k] = (float)(2 * r + k);
        cudaMemcpy(d, h, sizeof h, cudaMemcpyHostToDevice);
        ncclAllReduce(d, d, 4, ncclFloat32, ncclAvg, nc, s);
        cudaMemcpy(h, d, sizeof h, cudaMemcpyDeviceToHost); /* a blocking copy waits for the stream */
        for (int k = 0; k < 4; k++) bad |= check(h[k] == (float)((2 * sum_r + n * k) / n), r, "all-reduce avg");
        for (int k = 0; k < 4; k++) h[k] = r == n - 1 ? 7.0f + (float)k : -1.0f;
        cudaMemcpy(d, h, sizeof h, cudaMemcpyHostToDevice);
        ncclBroadcast(d, d, 4, ncclFloat32, n - 1, nc, s);
        cudaMemcpy(h, d, sizeof h, cudaMemcpyDeviceToHost);
        for (int k = 0; k < 4; k++) bad |= check(h[k] == 7.0f + (float)k, r, "broadcast");
        float *all = malloc((size_t)(4 * n) * sizeof(float));
        for (int k = 0; k < 4 * n; k++) all[k] = (float)(r + k);
        cudaMemcpy(d, all, (size_t)(4 * n) * sizeof(float), cudaMemcpyHostToDevice);
        float *out;
        cudaMalloc((void **)&out, (size_t)(4 * n) * sizeof(float));
        ncclReduceScatter(d, out, 4, ncclFloat32, ncclSum, nc, s);
        cudaMemcpy(h, out, sizeof h, cudaMemcpyDeviceToHost);
        for (int k = 0; k < 4; k++) bad |= check(h[k] == (float)(sum_r + n * (4 * r + k)), r, "reduce-scatter");
        for (int k = 0; k < 4; k++) h[k] = (float)(10 * r + k);
        cudaMemcpy(d, h, sizeof h, cudaMemcpyHostToDevice);
        ncclAllGather(d, out, 4, ncclFloat32, nc, s);
        cudaMemcpy(all, out, (size_t)(4 * n) * sizeof(float), cudaMemcpyDeviceToHost);
        for (int q = 0; q < n; q++)
            for (int k = 0; k < 4; k++) bad |= check(all[4 * q + k] == (float)(10 * q + k), r, "all-gather");
        free(all);
        cudaFree(out);
        if (!bad) printf("nccl-check: rank %d of %d: ok\n", r, n);
    }
    cudaFree(d);
    cudaStreamDestroy(s);
    if (strcmp(mode, "mismatch")) ncclCommDestroy(nc);
    comm_close(c);
    return bad;
}
