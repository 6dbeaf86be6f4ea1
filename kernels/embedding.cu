/* Word + position embeddings, forward and backward, as src/ops/embedding.h
 * computes them: out[b, t, :] = wte[ids[b, t], :] + wpe[t, :], the backward
 * accumulating into dwte and dwpe; both bit for bit the CPU's.
 * Forward: a grid-stride loop over the B x T x C outputs.
 * Backward, without atomics: the CPU adds position p's gradient into its
 * vocabulary row for p = 0, 1, ... in turn, so each (row, column) sum runs
 * over that row's positions in increasing order. Here one thread per
 * (distinct id, column) runs the same sum in the same order, walking the
 * id's positions as the host-built plan lists them (embedding_backward_plan:
 * the positions sorted by id, then position, and how many ids, read by the
 * kernel: a grid sized for n distinct ids serves any batch of n positions,
 * so a captured graph replays with each step's plan); a block's 256 threads take
 * consecutive columns, so loads coalesce. The position table: one thread
 * per (t, column) adds the B gradients of position t in batch order, again
 * the CPU's order. E, the activations' element type (float or bf16): out is
 * rounded once from the fp32 sum, dout widened exactly; the tables and
 * their gradients are fp32 either way. */
#include <algorithm>

#include "kernels/cuda_common.h"
#include "kernels/kernels.h"

template <class E>
__global__ void embedding_forward_kernel(E *out, const int32_t *ids, const float *wte,
                                         const float *wpe, int T, int C, size_t n)
{
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n;
         i += (size_t)blockDim.x * gridDim.x) {
        size_t row = i / C;
        int c = (int)(i % C), t = (int)(row % T);
        out[i] = from_f32<E>(wte[(size_t)ids[row] * C + c] + wpe[(size_t)t * C + c]);
    }
}

/* Block (x, y): columns blockIdx.x * 256 + threadIdx.x of the distinct ids
 * blockIdx.y, blockIdx.y + gridDim.y, ... */
template <class E>
__global__ void embedding_backward_wte_kernel(float *dwte, const E *dout, const int32_t *ids,
                                              const int32_t *plan, int n, int C)
{
    int c = blockIdx.x * blockDim.x + threadIdx.x;
    if (c >= C) return;
    int n_ids = plan[0];
    const int32_t *order = plan + 1, *start = plan + 1 + n;
    for (int s = blockIdx.y; s < n_ids; s += gridDim.y) {
        float *dw = dwte + (size_t)ids[order[start[s]]] * C + c;
        float acc = *dw;
        for (int j = start[s]; j < start[s + 1]; j++) acc += to_f32(dout[(size_t)order[j] * C + c]);
        *dw = acc;
    }
}

template <class E>
__global__ void embedding_backward_wpe_kernel(float *dwpe, const E *dout, int B, int T, int C)
{
    int c = blockIdx.x * blockDim.x + threadIdx.x, t = blockIdx.y;
    if (c >= C) return;
    float acc = dwpe[(size_t)t * C + c];
    for (int b = 0; b < B; b++) acc += to_f32(dout[((size_t)b * T + t) * C + c]);
    dwpe[(size_t)t * C + c] = acc;
}

template <class E>
static int forward(E *out, const int32_t *ids, const float *wte, const float *wpe, int B, int T, int C,
                   cudaStream_t stream)
{
    size_t n = (size_t)B * T * C;
    if (B <= 0 || T <= 0 || C <= 0) return 0;
    LAUNCH(embedding_forward_kernel<E>, grid_stride_blocks(n), 256, 0, stream, out, ids, wte, wpe, T,
           C, n);
    CUDA_CHECK(cudaGetLastError());
    return 0;
}

template <class E>
static int backward(float *dwte, float *dwpe, const E *dout, const int32_t *ids, const int32_t *plan,
                    int B, int T, int C, cudaStream_t stream)
{
    if (B <= 0 || T <= 0 || C <= 0) return 0;
    unsigned cols = ceil_div(C, 256);
    int n = B * T; /* at most n distinct ids */
    LAUNCH(embedding_backward_wte_kernel<E>, dim3(cols, n < 65535 ? n : 65535), 256, 0, stream, dwte, dout, ids,
           plan, n, C);
    CUDA_CHECK(cudaGetLastError());
    for (int t0 = 0; t0 < T; t0 += 65535) { /* gridDim.y limit */
        int nt = T - t0 < 65535 ? T - t0 : 65535;
        LAUNCH(embedding_backward_wpe_kernel<E>, dim3(cols, nt), 256, 0, stream,
               dwpe + (size_t)t0 * C, dout + (size_t)t0 * C, B, T, C);
        CUDA_CHECK(cudaGetLastError());
    }
    return 0;
}

extern "C" {

size_t embedding_plan_len(int n) { return n > 0 ? 2 * (size_t)n + 2 : 1; }

int embedding_backward_plan(int32_t *plan, const int32_t *ids, int n)
{
    plan[0] = 0;
    if (n <= 0) return 0;
    int32_t *order = plan + 1, *start = plan + 1 + n;
    for (int i = 0; i < n; i++) order[i] = i;
    std::sort(order, order + n, [ids](int32_t a, int32_t b) {
        return ids[a] != ids[b] ? ids[a] < ids[b] : a < b;
    });
    int n_ids = 0;
    for (int i = 0; i < n; i++)
        if (i == 0 || ids[order[i]] != ids[order[i - 1]]) start[n_ids++] = i;
    start[n_ids] = n;
    plan[0] = n_ids;
    return n_ids;
}

int embedding_forward_cuda(float *out, const int32_t *ids, const float *wte, const float *wpe,
                           int B, int T, int C, cudaStream_t stream)
{
    return forward(out, ids, wte, wpe, B, T, C, stream);
}

int embedding_forward_cuda_bf16(bf16 *out, const int32_t *ids, const float *wte, const float *wpe,
                                int B, int T, int C, cudaStream_t stream)
{
    return forward(out, ids, wte, wpe, B, T, C, stream);
}

int embedding_backward_cuda(float *dwte, float *dwpe, const float *dout, const int32_t *ids,
                            const int32_t *plan, int B, int T, int C,
                            cudaStream_t stream)
{
    return backward(dwte, dwpe, dout, ids, plan, B, T, C, stream);
}

int embedding_backward_cuda_bf16(float *dwte, float *dwpe, const bf16 *dout, const int32_t *ids,
                                 const int32_t *plan, int B, int T, int C,
                                 cudaStream_t stream)
{
    return backward(dwte, dwpe, dout, ids, plan, B, T, C, stream);
}

}
