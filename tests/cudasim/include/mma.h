/* cudasim's <mma.h>: the warp matrix functions (nvcuda::wmma) for kernels
 * compiled by the host compiler. NVIDIA's <mma.h> declares them only for
 * nvcc (#if defined(__CUDACC__)), so this header declares the subset the
 * simulator implements, with NVIDIA's names and signatures: fragment,
 * fill_fragment, load_matrix_sync, store_matrix_sync and mma_sync for
 * m16n16k16 with __nv_bfloat16 matrix_a and matrix_b (row_major or
 * col_major) and a float accumulator. Anything else fails to compile.
 *
 * The documented contract, enforced (a violation fails the launch, naming
 * the thread):
 *  - load_matrix_sync, store_matrix_sync and mma_sync are warp-collective:
 *    all 32 lanes of a full warp call the same one with the same pointer,
 *    ldm and layout (checked at each call);
 *  - mptr is 256-bit (32-byte) aligned and ldm, in elements, a multiple of
 *    16 bytes (8 bf16, 4 float);
 *  - memory: NVIDIA documents no ordering between the warp matrix
 *    functions and other lanes' plain accesses, so each needs a __syncwarp
 *    between them, as a GPU does. Here a lane's load reads, and its store
 *    writes, its elements as it arrives at the warp's meeting in forward
 *    lane order and as it leaves it in reverse order: a missing __syncwarp
 *    before a load (plain writes it needs) or a store (plain reads of what
 *    it overwrites) shows in forward order, after either in reverse order,
 *    as the two orders disagreeing or poison read;
 *  - the mapping of matrix elements to a fragment's x[] is unspecified:
 *    here it is a scramble of the 256 elements over lanes and slots, a
 *    different one for matrix_a, matrix_b and the accumulator, matching no
 *    GPU's, so code that assumes a mapping gets wrong numbers. Element-wise
 *    work on x[] that treats every element alike (fill, scale, convert) is
 *    portable and works.
 * mma_sync computes D = A B + C in fp32, each element's 16 products (exact
 * for bf16) added to C in k order; a GPU's tensor cores add them in an
 * order and with internal precision NVIDIA does not document, so results
 * agree to fp32 rounding, not bit for bit. d may be c. Each call counts
 * 2 x 16 x 16 x 16 FLOPs for the work counter (bench/step_plan). */
#ifndef GENRE_CUDASIM_MMA_H
#define GENRE_CUDASIM_MMA_H

#include <cstdint>
#include <cstring>
#include <type_traits>

#include <cuda_bf16.h>

namespace nvcuda {
namespace wmma {

struct matrix_a;
struct matrix_b;
struct accumulator;
struct row_major;
struct col_major;
enum layout_t { mem_row_major, mem_col_major };

template <class Use, int m, int n, int k, class T, class Layout = void> class fragment {
    static_assert(m == 16 && n == 16 && k == 16, "cudasim: only wmma's m16n16k16 is simulated");
    static_assert((std::is_same<Use, accumulator>::value && std::is_same<T, float>::value &&
                   std::is_same<Layout, void>::value) ||
                      (!std::is_same<Use, accumulator>::value && std::is_same<T, __nv_bfloat16>::value &&
                       (std::is_same<Layout, row_major>::value || std::is_same<Layout, col_major>::value)),
                  "cudasim: only bf16 matrix_a/matrix_b (row_major or col_major) and float accumulators are simulated");

public:
    typedef T element_type;
    typedef T storage_element_type;
    enum { num_elements = 8 }; /* 256 elements over 32 lanes, as a GPU's bf16 and float fragments */
    T x[num_elements];
};

} /* namespace wmma */
} /* namespace nvcuda */

namespace cudasim {
namespace wmma_impl {

enum Use { USE_A, USE_B, USE_ACC };

/* Element (lane, slot) of a fragment is element perm(lane * 8 + slot) of the
 * 16 x 16 matrix in row-major order: an affine scramble mod 256 (odd
 * multipliers: bijections), one per use. */
inline int element_of(Use use, int lane, int slot)
{
    static const int mul[3] = {97, 61, 173}, add[3] = {13, 7, 29};
    return ((lane * 8 + slot) * mul[use] + add[use]) & 255;
}

template <class U> constexpr Use use_of()
{
    return std::is_same<U, nvcuda::wmma::matrix_a>::value   ? USE_A
           : std::is_same<U, nvcuda::wmma::matrix_b>::value ? USE_B
                                                             : USE_ACC;
}

inline int lane_id() { return (int)((threadIdx.x + blockDim.x * (threadIdx.y + blockDim.y * threadIdx.z)) & 31); }

/* The collective call's arguments, the same in every lane. */
struct Call {
    const char *what;
    const void *ptr;
    unsigned ldm;
    int layout; /* 0 row major, 1 column major */
};

/* The documented alignment: mptr 256-bit aligned, ldm a multiple of 16 bytes. */
inline void check_operand(const char *what, const void *ptr, unsigned ldm, size_t elem)
{
    if ((uintptr_t)ptr % 32)
        kernel_fail("%s: pointer %p is not 256-bit aligned (NVIDIA: mptr must be a 256-bit aligned pointer)", what,
                    ptr);
    if ((ldm * elem) % 16) kernel_fail("%s: ldm %u is not a multiple of 16 bytes (%zu-byte elements)", what, ldm, elem);
}

/* The warp meets; every lane must have passed the same arguments. */
inline void agree(const char *what, const void *ptr, unsigned ldm, int layout)
{
    Call me;
    std::memset(&me, 0, sizeof me);
    me.what = what, me.ptr = ptr, me.ldm = ldm, me.layout = layout;
    const Call *all = (const Call *)warp_exchange(&me, sizeof me);
    for (int l = 0; l < 32; l++)
        if (all[l].what != me.what || all[l].ptr != me.ptr || all[l].ldm != me.ldm || all[l].layout != me.layout)
            kernel_fail("%s: lane %d calls it with (%p, ldm %u, %s), lane %d with (%p, ldm %u, %s): wmma operations "
                        "are warp-collective, every lane passing the same arguments",
                        what, lane_id(), me.ptr, me.ldm, me.layout ? "col" : "row", l, all[l].ptr, all[l].ldm,
                        all[l].layout ? "col" : "row");
}

inline float value_of(float v) { return v; }
inline float value_of(__nv_bfloat16 v) { return __bfloat162float(v); }

} /* namespace wmma_impl */
} /* namespace cudasim */

namespace nvcuda {
namespace wmma {

template <class Use, int m, int n, int k, class T, class Layout>
inline void fill_fragment(fragment<Use, m, n, k, T, Layout> &a, const T &v)
{
    for (int i = 0; i < a.num_elements; i++) a.x[i] = v;
}

/* matrix_a and matrix_b: the layout is the fragment's. */
template <class Use, class T, class Layout>
inline void load_matrix_sync(fragment<Use, 16, 16, 16, T, Layout> &a, const T *mptr, unsigned ldm)
{
    using namespace cudasim::wmma_impl;
    static_assert(!std::is_same<Use, accumulator>::value, "cudasim: an accumulator load takes a layout_t");
    bool col = std::is_same<Layout, col_major>::value;
    check_operand("wmma::load_matrix_sync", mptr, ldm, sizeof(T));
    bool late = cudasim::lanes_reversed();
    if (late) agree("wmma::load_matrix_sync", mptr, ldm, col);
    int lane = lane_id();
    for (int i = 0; i < 8; i++) {
        int e = element_of(use_of<Use>(), lane, i), r = e / 16, c = e % 16;
        a.x[i] = col ? mptr[(size_t)c * ldm + r] : mptr[(size_t)r * ldm + c];
    }
    if (!late) agree("wmma::load_matrix_sync", mptr, ldm, col);
}

inline void load_matrix_sync(fragment<accumulator, 16, 16, 16, float> &a, const float *mptr, unsigned ldm,
                             layout_t layout)
{
    using namespace cudasim::wmma_impl;
    bool col = layout == mem_col_major;
    check_operand("wmma::load_matrix_sync", mptr, ldm, sizeof(float));
    bool late = cudasim::lanes_reversed();
    if (late) agree("wmma::load_matrix_sync", mptr, ldm, col);
    int lane = lane_id();
    for (int i = 0; i < 8; i++) {
        int e = element_of(USE_ACC, lane, i), r = e / 16, c = e % 16;
        a.x[i] = col ? mptr[(size_t)c * ldm + r] : mptr[(size_t)r * ldm + c];
    }
    if (!late) agree("wmma::load_matrix_sync", mptr, ldm, col);
}

inline void store_matrix_sync(float *mptr, const fragment<accumulator, 16, 16, 16, float> &a, unsigned ldm,
                              layout_t layout)
{
    using namespace cudasim::wmma_impl;
    bool col = layout == mem_col_major;
    check_operand("wmma::store_matrix_sync", mptr, ldm, sizeof(float));
    bool late = cudasim::lanes_reversed();
    if (late) agree("wmma::store_matrix_sync", mptr, ldm, col);
    int lane = lane_id();
    for (int i = 0; i < 8; i++) {
        int e = element_of(USE_ACC, lane, i), r = e / 16, c = e % 16;
        (col ? mptr[(size_t)c * ldm + r] : mptr[(size_t)r * ldm + c]) = a.x[i];
    }
    if (!late) agree("wmma::store_matrix_sync", mptr, ldm, col);
}

template <class LA, class LB>
inline void mma_sync(fragment<accumulator, 16, 16, 16, float> &d,
                     const fragment<matrix_a, 16, 16, 16, __nv_bfloat16, LA> &a,
                     const fragment<matrix_b, 16, 16, 16, __nv_bfloat16, LB> &b,
                     const fragment<accumulator, 16, 16, 16, float> &c, bool satf = false)
{
    using namespace cudasim::wmma_impl;
    struct Mine {
        __nv_bfloat16 a[8], b[8];
        float c[8];
    } mine;
    std::memcpy(mine.a, a.x, sizeof mine.a);
    std::memcpy(mine.b, b.x, sizeof mine.b);
    std::memcpy(mine.c, c.x, sizeof mine.c);
    const Mine *all = (const Mine *)cudasim::warp_exchange(&mine, sizeof mine);
    float A[256], B[256], C[256];
    for (int l = 0; l < 32; l++)
        for (int i = 0; i < 8; i++) {
            A[element_of(USE_A, l, i)] = value_of(all[l].a[i]);
            B[element_of(USE_B, l, i)] = value_of(all[l].b[i]);
            C[element_of(USE_ACC, l, i)] = all[l].c[i];
        }
    int lane = lane_id();
    if (lane == 0) cudasim::count_tensor_flops(2.0 * 16 * 16 * 16);
    for (int i = 0; i < 8; i++) {
        int e = element_of(USE_ACC, lane, i), r = e / 16, col = e % 16;
        float acc = C[e];
        for (int kk = 0; kk < 16; kk++) acc += A[r * 16 + kk] * B[kk * 16 + col];
        d.x[i] = satf ? (acc != acc ? 0.0f : acc < 0.0f ? 0.0f : acc > 1.0f ? 1.0f : acc) : acc;
    }
}

} /* namespace wmma */
} /* namespace nvcuda */

#endif
