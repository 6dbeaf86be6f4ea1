/* Inverted dropout, forward and backward, as src/ops/dropout.h computes it,
 * bit for bit, through dropout_mask.h's mask (the CPU's threshold, scale and
 * Philox rounds, src/core/philox.h; single roundings on both sides); a
 * dropped element is +0 forward and adds +0 backward, as on the CPU. p <= 0
 * copies (forward) or adds (backward).
 * One thread per Philox block: its 8 elements, of which those inside the
 * row are touched (rows need not start or end on a block). Rows: element
 * (r, c) is element first + r * row_stride + c of the stream; the whole-
 * tensor and _at forms are one row. The bf16 variants compute in fp32 as
 * above and round each output once. */
#include "kernels/dropout_mask.h"

struct DropoutArgs {
    int rows, cols;
    uint64_t first, row_stride;
    DropoutMask m;
    bool accumulate; /* backward: dinp += (else =, as adding into zeros would) */
};

template <bool BACKWARD, class T>
__global__ void dropout_kernel(T *out, const T *inp, DropoutArgs a, const PhiloxKey *key, size_t units,
                               unsigned per_row)
{
    /* read as the kernel runs: a replayed graph draws its step's masks */
    uint64_t seed = a.m.apply ? key->seed : 0, rng_stream = a.m.apply ? key->stream : 0;
    for (size_t u = (size_t)blockIdx.x * blockDim.x + threadIdx.x; u < units;
         u += (size_t)blockDim.x * gridDim.x) {
        int r = (int)(u / per_row);
        uint64_t f = a.first + (uint64_t)r * a.row_stride, g = f / 8 + u % per_row;
        if (g * 8 >= f + a.cols) continue; /* past this row's last block */
        uint32_t w[4] = {0, 0, 0, 0};
        if (a.m.apply) philox_block(seed, rng_stream, g, w);
        for (int j = 0; j < 8; j++) {
            uint64_t e = g * 8 + j;
            if (e < f || e >= f + a.cols) continue;
            size_t i = (size_t)r * a.cols + (size_t)(e - f);
            float y = dropout_value(a.m, w, j, to_f32(inp[i]));
            out[i] = from_f32<T>(BACKWARD ? fadd_rn(a.accumulate ? to_f32(out[i]) : 0.0f, y) : y);
        }
    }
}

template <bool BACKWARD, class T>
static int dropout(T *out, bool accumulate, const T *inp, int rows, int cols, uint64_t first,
                   uint64_t row_stride, float p, const PhiloxKey *key,
                   cudaStream_t stream)
{
    if (rows <= 0 || cols <= 0) return 0;
    DropoutArgs a = {rows, cols, first, row_stride, dropout_mask(p), accumulate};
    unsigned per_row = (unsigned)(cols / 8 + 2); /* blocks a row of cols can touch */
    size_t units = (size_t)rows * per_row;
    /* parenthesized, or LAUNCH would split the template at its comma */
    LAUNCH((dropout_kernel<BACKWARD, T>), grid_stride_blocks(units), 256, 0, stream, out, inp, a,
           key, units, per_row);
    CUDA_CHECK(cudaGetLastError());
    return 0;
}

/* A run of n elements as rows of at most 2^30 (cols is an int). */
template <bool BACKWARD, class T>
static int dropout_run(T *out, bool accumulate, const T *inp, size_t n, uint64_t first, float p,
                       const PhiloxKey *key, cudaStream_t stream)
{
    const size_t R = (size_t)1 << 30;
    if (n <= R) return dropout<BACKWARD>(out, accumulate, inp, 1, (int)n, first, 0, p, key, stream);
    if (dropout<BACKWARD>(out, accumulate, inp, (int)(n / R), (int)R, first, R, p, key, stream))
        return -1;
    size_t done = n / R * R;
    return dropout<BACKWARD>(out + done, accumulate, inp + done, 1, (int)(n - done), first + done, 0, p, key, stream);
}

extern "C" {

int dropout_forward_cuda(float *out, const float *inp, size_t n, float p, const PhiloxKey *key, cudaStream_t stream)
{
    return dropout_run<false>(out, false, inp, n, 0, p, key, stream);
}

int dropout_backward_cuda(float *dinp, bool accumulate, const float *dout, size_t n, float p, const PhiloxKey *key,
                          cudaStream_t stream)
{
    return dropout_run<true>(dinp, accumulate, dout, n, 0, p, key, stream);
}

int dropout_forward_cuda_bf16(bf16 *out, const bf16 *inp, size_t n, float p, const PhiloxKey *key, cudaStream_t stream)
{
    return dropout_run<false>(out, false, inp, n, 0, p, key, stream);
}

int dropout_backward_cuda_bf16(bf16 *dinp, bool accumulate, const bf16 *dout, size_t n, float p,
                               const PhiloxKey *key, cudaStream_t stream)
{
    return dropout_run<true>(dinp, accumulate, dout, n, 0, p, key, stream);
}

int dropout_forward_at_cuda(float *out, const float *inp, size_t n, uint64_t first, float p,
                            const PhiloxKey *key, cudaStream_t stream)
{
    return dropout_run<false>(out, false, inp, n, first, p, key, stream);
}

int dropout_backward_at_cuda(float *dinp, bool accumulate, const float *dout, size_t n, uint64_t first, float p,
                             const PhiloxKey *key, cudaStream_t stream)
{
    return dropout_run<true>(dinp, accumulate, dout, n, first, p, key, stream);
}

int dropout_forward_rows_cuda(float *out, const float *inp, int rows, int cols, uint64_t first,
                              uint64_t row_stride, float p, const PhiloxKey *key,
                              cudaStream_t stream)
{
    return dropout<false>(out, false, inp, rows, cols, first, row_stride, p, key, stream);
}

int dropout_backward_rows_cuda(float *dinp, bool accumulate, const float *dout, int rows, int cols,
                               uint64_t first, uint64_t row_stride, float p, const PhiloxKey *key, cudaStream_t stream)
{
    return dropout<true>(dinp, accumulate, dout, rows, cols, first, row_stride, p, key, stream);
}

int dropout_forward_rows_cuda_bf16(bf16 *out, const bf16 *inp, int rows, int cols, uint64_t first,
                                   uint64_t row_stride, float p, const PhiloxKey *key,
                                   cudaStream_t stream)
{
    return dropout<false>(out, false, inp, rows, cols, first, row_stride, p, key, stream);
}

int dropout_backward_rows_cuda_bf16(bf16 *dinp, bool accumulate, const bf16 *dout, int rows, int cols,
                                    uint64_t first, uint64_t row_stride, float p, const PhiloxKey *key,
                                    cudaStream_t stream)
{
    return dropout<true>(dinp, accumulate, dout, rows, cols, first, row_stride, p, key, stream);
}

}
