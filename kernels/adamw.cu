/* AdamW over every parameter in one launch, as adamw_update_segments
 * (src/optim/adamw.h) computes it, PyTorch's semantics in its lerp form:
 *   m = m + (1 - b1) (g - m),  v = b2 v + (1 - b2) g g,
 *   p = p * keep - step_size * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
 * with keep = 1 - lr * wd for decayed parameters, else 1. The host computes
 * the per-step constants with adamw_update's own expressions (powf and all),
 * and the device rounds each operation once, in the CPU's order (fmul_rn and
 * friends: no fused multiply-add; IEEE division and square root), so every
 * parameter and moment equals the CPU's bit for bit.
 * A grid-stride loop over the n elements; the weight decay comes from the
 * segment table, which each thread walks forward as its indices grow (they
 * only grow), so finding an element's segment costs O(1) on average. */
#include <math.h>

#include "kernels/cuda_common.h"
#include "kernels/kernels.h"

__global__ void adamw_kernel(float *param, __nv_bfloat16 *param_bf16, const float *grad, float *m, float *v,
                             const AdamWSegment *seg, int nseg, size_t n, const AdamWStep *step)
{
    const AdamWStep k = *step; /* read as the kernel runs: a replayed graph takes its step's constants */
    int s = 0;
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n;
         i += (size_t)blockDim.x * gridDim.x) {
        while (s < nseg && i >= seg[s].off + seg[s].n) s++;
        if (s == nseg) return; /* past the last segment */
        if (i < seg[s].off) continue; /* between segments */
        float g = grad[i];
        float mi = fadd_rn(m[i], fmul_rn(k.one_m_b1, fsub_rn(g, m[i])));
        float vi = fadd_rn(fmul_rn(k.b2, v[i]), fmul_rn(fmul_rn(k.one_m_b2, g), g));
        float denom = fadd_rn(fdiv_rn(fsqrt_rn(vi), k.bc2_sqrt), k.eps);
        float keep = seg[s].decay ? k.keep_decay : 1.0f;
        float pi = fsub_rn(fmul_rn(param[i], keep), fdiv_rn(fmul_rn(k.step_size, mi), denom));
        param[i] = pi;
        if (param_bf16) param_bf16[i] = from_f32<__nv_bfloat16>(pi);
        m[i] = mi;
        v[i] = vi;
    }
}

extern "C" {

void adamw_step_constants(AdamWStep *k, const AdamW *opt, int t, float lr)
{
    /* adamw_update's constants, by its expressions */
    float b1 = opt->beta1, b2 = opt->beta2;
    float bc1 = 1.0f - powf(b1, (float)t), bc2 = 1.0f - powf(b2, (float)t);
    *k = AdamWStep{b1, b2, 1.0f - b1, 1.0f - b2, opt->eps, lr / bc1, sqrtf(bc2), 1.0f - lr * opt->weight_decay};
}

int adamw_update_cuda(float *param, bf16 *param_bf16, const float *grad, float *m, float *v, const AdamWSegment *seg,
                      int nseg, size_t n, const AdamWStep *k, cudaStream_t stream)
{
    if (n == 0 || nseg <= 0) return 0;
    LAUNCH(adamw_kernel, grid_stride_blocks(n), 256, 0, stream, param, param_bf16, grad, m, v, seg, nseg, n, k);
    CUDA_CHECK(cudaGetLastError());
    return 0;
}

}
