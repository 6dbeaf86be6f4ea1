/* Every CUDA kernel against its CPU op (src/ops/) on many shapes. Built
 * twice from this one source: against the simulator (tests/cudasim, every
 * case run with the threads of each block in forward and in reverse order,
 * the two results required to be bitwise identical) and, by `make
 * test-gpu`, against the real kernels on a GPU.
 *
 * Shapes: rows 1, 3, 127, 1024 x widths 1, 31, 33, 384, 768, 3072, 24 in
 * all (under AddressSanitizer or compute-sanitizer, or with
 * GENRE_KERNELS_QUICK set, the 1024-row shapes keep only widths 1, 33 and
 * 768: 21). Softmax also runs with a mask whose rows
 * cycle through random (30% masked), all-masked, single-unmasked and
 * unmasked, shared by rows_per_mask rows. LayerNorm also runs with the
 * dropout and residual add fused in (layernorm_residual_forward, out of
 * place and in place, and its backward): bit for bit the unfused kernels,
 * and its stored sum bit for bit the CPU's dropout then residual_add
 * (rounded at each, in bf16).
 *
 * Tolerances. fp32: |got - ref| <= 1e-5 (|ref| + floor), floor = 0.1 of the
 * array's root mean square: relative where values are ordinary, absolute
 * near zero, where cancellation (LayerNorm and softmax gradients) leaves a
 * result far smaller than the terms summed and both sides carry fp32
 * rounding of those terms. bf16: the inputs are bf16 values on both sides
 * (the CPU op gets them widened to fp32), so the only added error is the one
 * rounding of the output to bf16: at most half a unit in the last of 8
 * significant bits, 2^-8 relative; the bound is 2^-8 + 1e-5 on the same
 * scale (fused attention's dq and dk add the rounding of the out they
 * read: see there). fp32 outputs of bf16 variants (statistics, parameter
 * gradients) keep the fp32 bound.
 *
 * The training step's kernels (embedding, dropout, elementwise, loss,
 * adamw, grad_norm; their own shapes, listed with each): bit for bit where
 * the math allows (embeddings forward and backward, dropout masks and
 * outputs, residual, ReLU, rows, the mask, AdamW, clipping by
 * the same norm); the mean loss 1e-6 relative and
 * dlogits 1e-6 on that scale (double inside, float out); the gradient norm
 * 1e-6 relative, and bit for bit its own when summed over shards. Their
 * bf16 variants (embedding, dropout, elementwise; AdamW's bf16 copy) run
 * beside them on bf16-valued inputs: bit for bit the CPU's result rounded
 * to bf16 (to_bf16, nearest even), and the fp32 outputs (the embedding
 * gradients bit for bit) as their fp32 twins'. (A linear layer's bias
 * gradient has no kernel: cuBLASLt's epilogue sums it, test_cublas.c.)
 *
 * The column sums (LayerNorm's parameter gradients, kernels/colsum.h) run
 * twice on one workspace zeroed once, from the same inputs: the second
 * launch must give the first's bits (each must leave its counters zero),
 * with a LayerNorm backward of another shape on the workspace between.
 * LayerNorm's bias gradient, a plain column sum of dout (no product a GPU
 * could fuse into an FMA), is also bit for bit colsum.h's order computed on
 * the host (colsum_order_bias), and runs on 65 x 32801 too, wider than one
 * launch's counters (kernels/layernorm_wide). */
#include <criterion/criterion.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/cuda_common.h"
#include "kernels/kernels.h"
#include "src/ops/attention.h"
#include "src/ops/dropout.h"
#include "src/ops/embedding.h"
#include "src/ops/gelu.h"
#include "src/ops/layernorm.h"
#include "src/ops/linear.h"
#include "src/ops/loss.h"
#include "src/ops/relu.h"
#include "src/ops/residual.h"
#include "src/ops/rows.h"
#include "src/ops/softmax.h"
#include "src/optim/adamw.h"
#include "tests/testutil.h"

#ifdef CUDASIM
#define ORDERS 2
#define WHERE "in the simulator"
static void set_order(int reverse) { cudasim_set_order(reverse); }
#else
#define ORDERS 1
#define WHERE "on the GPU"
static void set_order(int reverse) { (void)reverse; }
#endif

#ifdef __SANITIZE_ADDRESS__
#define SANITIZED 1
#else
#define SANITIZED 0
#endif

static const int ROWS[] = {1, 3, 127, 1024};
static const int WIDTHS[] = {1, 31, 33, 384, 768, 3072};
#define NROWS (int)(sizeof ROWS / sizeof ROWS[0])
#define NWIDTHS (int)(sizeof WIDTHS / sizeof WIDTHS[0])
static const double RTOL = 1e-5, RTOL_BF16 = 1.0 / 256 + 1e-5, FLOOR = 0.1;

static int quick_shapes(void)
{
    static int quick = -1;
    if (quick < 0) quick = SANITIZED || getenv("GENRE_KERNELS_QUICK") != NULL;
    return quick;
}

static int shape_used(int rows, int width)
{
    return !quick_shapes() || rows < 1024 || width == 1 || width == 33 || width == 768;
}

static int n_shapes(void)
{
    int n = 0;
    for (int r = 0; r < NROWS; r++)
        for (int w = 0; w < NWIDTHS; w++) n += shape_used(ROWS[r], WIDTHS[w]);
    return n;
}

/* ---- host data ---------------------------------------------------------- */

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static float uniform(float lo, float hi)
{
    rng = rng * 6364136223846793005ull + 1442695040888963407ull;
    return lo + (hi - lo) * (float)((rng >> 40) * (1.0 / 16777216.0));
}
static float *randoms(size_t n, float lo, float hi)
{
    float *p = malloc(n * sizeof *p);
    for (size_t i = 0; i < n; i++) p[i] = uniform(lo, hi);
    return p;
}
static float *copy_of(const float *a, size_t n)
{
    float *p = malloc(n * sizeof *p);
    memcpy(p, a, n * sizeof *p);
    return p;
}

/* bf16 on the host (tests/testutil.h's rounding), as the kernels' type. */
static bf16 to_bf16(float f) { return (bf16){bf16_bits(f)}; }
static float from_bf16(bf16 b) { return bf16_value(b.bits); }
static void round_to_bf16(float *a, size_t n)
{
    for (size_t i = 0; i < n; i++) a[i] = round_bf16(a[i]);
}

/* A CUDA runtime call that must succeed, and a launcher that must. */
static void cuda_must(cudaError_t e)
{
    cr_assert_eq(e, cudaSuccess, "CUDA error %d (%s)", (int)e, cudaGetErrorString(e));
}
static void launch_ok(int rc) { cr_assert_eq(rc, 0, "%s", err_msg()); }

/* ---- device data: fp32 or bf16 storage of float arrays ------------------ */

static void *upload(const float *h, size_t n, int bf)
{
    void *d;
    size_t bytes = n * (bf ? sizeof(bf16) : sizeof(float));
    cuda_must(cudaMalloc(&d, bytes ? bytes : 1));
    if (bf) {
        bf16 *tmp = malloc(n * sizeof *tmp + 1);
        for (size_t i = 0; i < n; i++) tmp[i] = to_bf16(h[i]);
        cuda_must(cudaMemcpy(d, tmp, bytes, cudaMemcpyHostToDevice));
        free(tmp);
    } else {
        cuda_must(cudaMemcpy(d, h, bytes, cudaMemcpyHostToDevice));
    }
    return d;
}
static float *download(const void *d, size_t n, int bf)
{
    cuda_must(cudaDeviceSynchronize());
    float *h = malloc(n * sizeof *h + 1);
    if (bf) {
        bf16 *tmp = malloc(n * sizeof *tmp + 1);
        cuda_must(cudaMemcpy(tmp, d, n * sizeof *tmp, cudaMemcpyDeviceToHost));
        for (size_t i = 0; i < n; i++) h[i] = from_bf16(tmp[i]);
        free(tmp);
    } else {
        cuda_must(cudaMemcpy(h, d, n * sizeof *h, cudaMemcpyDeviceToHost));
    }
    return h;
}

/* Raw device memory (a workspace, ints), and device arrays a case frees all
 * at once (track, then free_tracked at the end of each thread order). */
static void *dev_bytes(size_t bytes)
{
    void *d;
    cuda_must(cudaMalloc(&d, bytes ? bytes : 1));
    return d;
}
static void *upload_bytes(const void *h, size_t bytes)
{
    void *d = dev_bytes(bytes);
    if (bytes) cuda_must(cudaMemcpy(d, h, bytes, cudaMemcpyHostToDevice));
    return d;
}
static void *download_bytes(const void *d, size_t bytes)
{
    cuda_must(cudaDeviceSynchronize());
    void *h = malloc(bytes ? bytes : 1);
    if (bytes) cuda_must(cudaMemcpy(h, d, bytes, cudaMemcpyDeviceToHost));
    return h;
}
static void *tracked[32];
static int n_tracked;
static void *track(void *d)
{
    cr_assert_lt(n_tracked, 32);
    return tracked[n_tracked++] = d;
}
static void free_tracked(void)
{
    while (n_tracked) cuda_must(cudaFree(tracked[--n_tracked]));
}
/* A dropout kernel's Philox key, as the kernels take it: in device memory (tracked). */
static const PhiloxKey *dev_key(uint64_t seed, uint64_t stream)
{
    PhiloxKey k = {seed, stream};
    return track(upload_bytes(&k, sizeof k));
}
static float *dev_copy(const float *h, size_t n) { return track(upload(h, n, 0)); }

/* ---- checks ---------------------------------------------------------------- */

/* Kernel cases checked so far: each case function counts, after its last
 * check, the launchers it verified, so a case that returns before checking
 * (or a shape the loops skip) leaves the count short of the plan. */
static int cases_checked;

static void check_close(const char *what, const float *got, const float *ref, size_t n,
                        double rtol, const char *shape)
{
    double ss = 0.0;
    for (size_t i = 0; i < n; i++) ss += (double)ref[i] * ref[i];
    double floor = FLOOR * sqrt(ss / (n ? n : 1));
    for (size_t i = 0; i < n; i++) {
        double err = fabs((double)got[i] - ref[i]), tol = rtol * (fabs(ref[i]) + floor);
        cr_assert(err <= tol || (isnan(got[i]) && isnan(ref[i])),
                  "%s %s: [%zu] = %.9g, CPU %.9g (error %.3g > %.3g)", what, shape, i, got[i],
                  ref[i], err, tol);
    }
}

/* got bit for bit equal to ref (NaN payloads included), which `whose` names in the message. */
static void check_bits(const char *what, const float *got, const float *ref, size_t n, const char *shape,
                       const char *whose)
{
    for (size_t i = 0; i < n; i++)
        cr_assert(memcmp(&got[i], &ref[i], sizeof(float)) == 0, "%s %s: [%zu] = %.9g, %s %.9g (not the same bits)",
                  what, shape, i, got[i], whose, ref[i]);
}

/* Bit for bit the CPU's. */
static void check_same(const char *what, const float *got, const float *ref, size_t n, const char *shape)
{
    check_bits(what, got, ref, n, shape, "CPU");
}

/* Runs of one case in the two thread orders must give the same bits. */
static void check_orders(const char *what, float *const runs[ORDERS], size_t n, const char *shape)
{
    for (int o = 1; o < ORDERS; o++)
        cr_assert(memcmp(runs[0], runs[o], n * sizeof(float)) == 0,
                  "%s %s: forward and reverse thread order disagree (a missing barrier?)", what,
                  shape);
}

/* The column sums (colsum.h) launched again on the same workspace, zeroed
 * once before the first: their counters must have been left zero, so the
 * second launch, from the same inputs, gives the first's bits. */
static void check_again(const char *what, const float *again, const float *first, size_t n, const char *shape)
{
    check_bits(what, again, first, n, shape,
               "launched again on the same workspace (counters left nonzero, or a race?), first launch");
}

/* Bit for bit the sums of colsum_order_bias (below). */
static void check_order_bits(const char *what, const float *got, const float *ref, size_t n, const char *shape)
{
    check_bits(what, got, ref, n, shape, "colsum.h's order on the host (summed in another order?)");
}

/* db += the column sums of dy in kernels/colsum.h's order: chunks of 64
 * rows (doubled past 65535 chunks), in each the 8 lanes' rows r0 + y,
 * r0 + y + 8, ... summed in order from 0, the lane sums added in lane
 * order, the chunk sums added in chunk order from 0, then added to db.
 * The bias terms are dy itself (no product a GPU could fuse into an FMA),
 * so the device's sums are these bits exactly: a change of order the
 * tolerance against the CPU's row-by-row sum would let pass (the chunks
 * summed in another order, say) shows here. */
static void colsum_order_bias(float *db, const float *dy, int rows, int width)
{
    int chunk = 64;
    while ((rows + chunk - 1) / chunk > 65535) chunk *= 2;
    for (int c = 0; c < width; c++) {
        float sum = 0.0f;
        for (int r0 = 0; r0 < rows; r0 += chunk) {
            int r1 = rows - r0 < chunk ? rows : r0 + chunk;
            float lane[8], part;
            for (int y = 0; y < 8; y++) {
                lane[y] = 0.0f;
                for (int r = r0 + y; r < r1; r += 8) lane[y] += dy[(size_t)r * width + c];
            }
            part = lane[0];
            for (int y = 1; y < 8; y++) part += lane[y];
            sum += part;
        }
        db[c] += sum;
    }
}

/* LayerNorm's bias gradient alone, on the device: d_db += the column sums
 * of d_dy (rows x width, bf16 if bf), by layernorm_backward_cuda[_bf16] on
 * the column-sum workspace d_work. Its other inputs are chosen (dy itself
 * as the input, mean 0, rstd 1, weight 1) and its input and weight
 * gradients go to scratch: the bias gradient is dy's column sums whatever
 * they are. */
static void layernorm_dbias(float *d_db, const void *d_dy, int rows, int width, int bf, void *d_work)
{
    size_t n = (size_t)rows * width, most = rows > width ? (size_t)rows : (size_t)width;
    float *zeros = calloc(most, sizeof *zeros), *ones = malloc(most * sizeof *ones);
    for (size_t i = 0; i < most; i++) ones[i] = 1.0f;
    float *d_mean = upload(zeros, rows, 0), *d_rstd = upload(ones, rows, 0), *d_w = upload(ones, width, 0);
    float *d_dw = upload(zeros, width, 0);
    void *d_dx = dev_bytes(n * (bf ? sizeof(bf16) : sizeof(float)));
    launch_ok(bf ? layernorm_backward_cuda_bf16(d_dx, false, d_dw, d_db, d_dy, d_dy, d_w, d_mean, d_rstd, rows,
                                                width, d_work, 0)
                 : layernorm_backward_cuda(d_dx, false, d_dw, d_db, d_dy, d_dy, d_w, d_mean, d_rstd, rows, width,
                                           d_work, 0));
    void *all[] = {d_mean, d_rstd, d_w, d_dw, d_dx};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) cuda_must(cudaFree(all[i]));
    free(zeros), free(ones);
}

/* A sum to within fp32 rounding of its terms: |got - ref| <= 1e-5 sum |term|. */
static void check_sum(const char *what, float got, float ref, const float *terms, size_t n, const char *shape)
{
    double abs = 0;
    for (size_t i = 0; i < n; i++) abs += fabs(terms[i]);
    cr_assert(fabs((double)got - ref) <= 1e-5 * abs, "%s %s: %.9g, CPU %.9g (of terms summing to %.3g in magnitude)",
              what, shape, got, ref, abs);
}

static void free_runs(float *runs[ORDERS])
{
    for (int o = 0; o < ORDERS; o++) free(runs[o]);
}

/* Backward launchers store the input gradient (accumulate false) on half the
 * shapes: the CPU's reference then adds into zeros, the device's buffer
 * starts as NaN, so a read of it shows. */
static bool storing(int rows, int width) { return (rows + width) % 2 == 1; }
static void poison(void *d, size_t bytes) { cuda_must(cudaMemset(d, 0xff, bytes)); }

/* ---- LayerNorm ------------------------------------------------------------ */

static void layernorm_case(int rows, int dim, int bf)
{
    char shape[64];
    bool add = !storing(rows, dim);
    snprintf(shape, sizeof shape, "%s %dx%d%s", bf ? "bf16" : "fp32", rows, dim, add ? "" : " storing");
    size_t n = (size_t)rows * dim;
    double rtol = bf ? RTOL_BF16 : RTOL;
    float *x = randoms(n, -3, 5), *w = randoms(dim, 0.5f, 1.5f), *b = randoms(dim, -1, 1);
    float *dy = randoms(n, -1, 1), *dx0 = randoms(n, -1, 1);
    float *dw0 = randoms(dim, -1, 1), *db0 = randoms(dim, -1, 1);
    if (!add) memset(dx0, 0, n * sizeof *dx0);
    if (bf) {
        round_to_bf16(x, n);
        round_to_bf16(dy, n);
        round_to_bf16(dx0, n);
    }
    float *out = malloc(n * sizeof *out), *mean = malloc(rows * sizeof *mean);
    float *rstd = malloc(rows * sizeof *rstd);
    float *dx = copy_of(dx0, n), *dw = copy_of(dw0, dim), *db = copy_of(db0, dim), *db_order = copy_of(db0, dim);
    layernorm_forward(out, mean, rstd, x, w, b, rows, dim, 1e-12f);
    layernorm_backward(dx, dw, db, dy, x, w, mean, rstd, rows, dim);
    colsum_order_bias(db_order, dy, rows, dim);

    /* The CPU's column sum of dy's first values as one column (src/ops/linear.h's bias backward). */
    size_t n_col = n < 4096 ? n : 4096;
    float col = 0.0f;
    linear_bias_backward(&col, dy, (int)n_col, 1);

    float *g_out[ORDERS], *g_mean[ORDERS], *g_rstd[ORDERS], *g_dx[ORDERS], *g_dw[ORDERS],
        *g_db[ORDERS], *g_col[ORDERS];
    for (int o = 0; o < ORDERS; o++) {
        set_order(o);
        void *d_x = upload(x, n, bf), *d_out = upload(x, n, bf), *d_dy = upload(dy, n, bf);
        void *d_dx = upload(dx0, n, bf);
        float *d_w = upload(w, dim, 0), *d_b = upload(b, dim, 0), *d_dw = upload(dw0, dim, 0);
        float *d_db = upload(db0, dim, 0), *d_mean = upload(mean, rows, 0);
        float *d_rstd = upload(rstd, rows, 0), *d_smean = upload(mean, rows, 0);
        float *d_srstd = upload(rstd, rows, 0);
        size_t work = layernorm_backward_workspace_size(rows, dim);
        size_t col_work = layernorm_backward_workspace_size((int)n_col, 1);
        if (col_work > work) work = col_work;
        void *d_work = dev_bytes(work);
        cuda_must(cudaMemset(d_work, 0, work)); /* the column sums' counters, once */
        if (!add) poison(d_dx, n * (bf ? sizeof(bf16) : sizeof(float)));
        if (bf) {
            launch_ok(layernorm_forward_cuda_bf16(d_out, d_mean, d_rstd, d_x, d_w, d_b, rows, dim, 1e-12f, 0));
            launch_ok(layernorm_backward_cuda_bf16(d_dx, add, d_dw, d_db, d_dy, d_x, d_w, d_smean, d_srstd, rows,
                                                   dim, d_work, 0));
        } else {
            launch_ok(layernorm_forward_cuda(d_out, d_mean, d_rstd, d_x, d_w, d_b, rows, dim, 1e-12f, 0));
            launch_ok(layernorm_backward_cuda(d_dx, add, d_dw, d_db, d_dy, d_x, d_w, d_smean, d_srstd, rows, dim,
                                              d_work, 0));
        }
        g_out[o] = download(d_out, n, bf);
        g_mean[o] = download(d_mean, rows, 0);
        g_rstd[o] = download(d_rstd, rows, 0);
        g_dx[o] = download(d_dx, n, bf);
        g_dw[o] = download(d_dw, dim, 0);
        g_db[o] = download(d_db, dim, 0);
        /* The workspace again, after a column sum of another shape on it
         * (a LayerNorm backward of dy's first values as one column), from
         * the same gradients. */
        float zero = 0.0f, *d_col = upload(&zero, 1, 0);
        layernorm_dbias(d_col, d_dy, (int)n_col, 1, bf, d_work);
        g_col[o] = download(d_col, 1, 0);
        cuda_must(cudaFree(d_dx)), cuda_must(cudaFree(d_dw)), cuda_must(cudaFree(d_db));
        d_dx = upload(dx0, n, bf), d_dw = upload(dw0, dim, 0), d_db = upload(db0, dim, 0);
        if (!add) poison(d_dx, n * (bf ? sizeof(bf16) : sizeof(float)));
        launch_ok(bf ? layernorm_backward_cuda_bf16(d_dx, add, d_dw, d_db, d_dy, d_x, d_w, d_smean, d_srstd, rows,
                                                    dim, d_work, 0)
                     : layernorm_backward_cuda(d_dx, add, d_dw, d_db, d_dy, d_x, d_w, d_smean, d_srstd, rows, dim,
                                               d_work, 0));
        float *again[3] = {download(d_dx, n, bf), download(d_dw, dim, 0), download(d_db, dim, 0)};
        check_again("layernorm dinp", again[0], g_dx[o], n, shape);
        check_again("layernorm dweight", again[1], g_dw[o], dim, shape);
        check_again("layernorm dbias", again[2], g_db[o], dim, shape);
        for (int k = 0; k < 3; k++) free(again[k]);
        void *all[] = {d_x, d_out, d_dy, d_dx, d_w, d_b, d_dw, d_db, d_mean, d_rstd, d_smean, d_srstd,
                       d_work, d_col};
        for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) cuda_must(cudaFree(all[i]));
    }
    check_orders("layernorm out", g_out, n, shape);
    check_orders("layernorm mean", g_mean, rows, shape);
    check_orders("layernorm rstd", g_rstd, rows, shape);
    check_orders("layernorm dinp", g_dx, n, shape);
    check_orders("layernorm dweight", g_dw, dim, shape);
    check_orders("layernorm dbias", g_db, dim, shape);
    check_close("layernorm out", g_out[0], out, n, rtol, shape);
    check_close("layernorm mean", g_mean[0], mean, rows, RTOL, shape);
    check_close("layernorm rstd", g_rstd[0], rstd, rows, RTOL, shape);
    check_close("layernorm dinp", g_dx[0], dx, n, rtol, shape);
    check_close("layernorm dweight", g_dw[0], dw, dim, RTOL, shape);
    check_close("layernorm dbias", g_db[0], db, dim, RTOL, shape);
    check_order_bits("layernorm dbias", g_db[0], db_order, dim, shape);
    check_orders("a column sum between the LayerNorm backwards", g_col, 1, shape);
    check_sum("a column sum between the LayerNorm backwards", g_col[0][0], col, dy, n_col, shape);
    free_runs(g_out), free_runs(g_mean), free_runs(g_rstd), free_runs(g_dx), free_runs(g_dw);
    free_runs(g_db), free_runs(g_col);
    free(x), free(w), free(b), free(dy), free(dx0), free(dw0), free(db0), free(out), free(mean);
    free(rstd), free(dx), free(dw), free(db), free(db_order);
    cases_checked += 2;
}

/* LayerNorm's parameter gradients wider than one launch's counters
 * (colsum.h: COLSUM_SLABS slabs of 32 columns): 32768 + 33 columns take two
 * launches, the second on the counters the first left. Its bias gradient
 * (layernorm_dbias) twice on one workspace, as layernorm_case, in both
 * orders, against the CPU's column sum and bit for bit colsum.h's order. */
static void layernorm_wide_case(int rows, int width, int bf)
{
    char shape[64];
    snprintf(shape, sizeof shape, "%s %dx%d", bf ? "bf16" : "fp32", rows, width);
    size_t n = (size_t)rows * width;
    float *dy = randoms(n, -1, 1), *db0 = randoms(width, -1, 1);
    if (bf) round_to_bf16(dy, n);
    float *db = copy_of(db0, width), *db_order = copy_of(db0, width);
    linear_bias_backward(db, dy, rows, width); /* the CPU's column sum */
    colsum_order_bias(db_order, dy, rows, width);
    float *got[ORDERS];
    for (int o = 0; o < ORDERS; o++) {
        set_order(o);
        void *d_dy = track(upload(dy, n, bf));
        float *d_db = dev_copy(db0, width);
        size_t work = layernorm_backward_workspace_size(rows, width);
        void *d_work = track(dev_bytes(work));
        cuda_must(cudaMemset(d_work, 0, work)); /* the column sums' counters, once */
        for (int again = 0; again < 2; again++) {
            if (again) cuda_must(cudaMemcpy(d_db, db0, width * sizeof(float), cudaMemcpyHostToDevice));
            layernorm_dbias(d_db, d_dy, rows, width, bf, d_work);
            float *h = download(d_db, width, 0);
            if (!again) {
                got[o] = h;
            } else {
                check_again("layernorm dbias", h, got[o], width, shape);
                free(h);
            }
        }
        free_tracked();
    }
    check_orders("layernorm dbias", got, width, shape);
    check_close("layernorm dbias", got[0], db, width, 2 * RTOL, shape);
    check_order_bits("layernorm dbias", got[0], db_order, width, shape);
    free_runs(got);
    free(dy), free(db0), free(db), free(db_order);
    cases_checked += 1;
}

static int layernorm_wide_all(int run)
{
    int cases = 0;
    for (int bf = 0; bf < 2; bf++) {
        if (run) layernorm_wide_case(65, 32 * 1024 + 33, bf);
        cases += 1;
    }
    return cases;
}

/* The residual add fused into the forward: res = dropout(y) + x (y the
 * sublayer's output, x the block's input) stored, then LayerNorm(res); and
 * its backward. The dropout by shape, cycling over the table: none (a NULL
 * site), p 0.1 over the whole tensor, p 0.1 on rows placed in the stream as
 * the [CLS] rows are (first 9, rows 3 dim + 5 apart: no row on a Philox
 * block's start). Forward bit for bit the unfused kernels: the dropout
 * kernel, residual_add_cuda then layernorm_forward_cuda (bf16: the host's
 * dropout and fp32 sum, each rounded once, then
 * layernorm_forward_cuda_bf16), both into a NaN-poisoned res and in place
 * (res == y); res bit for bit the CPU's dropout then residual_add (bf16:
 * rounded at each), y untouched when not in place, and out, mean and rstd
 * against the CPU's to the forward's tolerances. Backward bit for bit
 * layernorm_backward_cuda then the dropout's backward kernel, into poisoned
 * dres and dinp, the parameter gradients accumulated from random values. */
static void layernorm_residual_case(int rows, int dim, int bf)
{
    int ri = 0, wi = 0;
    while (ROWS[ri] != rows) ri++;
    while (WIDTHS[wi] != dim) wi++;
    int mode = (ri + wi) % 3; /* 0 none, 1 whole tensor, 2 rows */
    static const char *modes[3] = {"no dropout", "dropout", "dropout on rows"};
    char shape[96];
    snprintf(shape, sizeof shape, "%s %dx%d %s", bf ? "bf16" : "fp32", rows, dim, modes[mode]);
    size_t n = (size_t)rows * dim, es = bf ? sizeof(bf16) : sizeof(float);
    float p = mode ? 0.1f : 0.0f;
    uint64_t first = mode == 2 ? 9 : 0, stride = mode == 2 ? 3 * (uint64_t)dim + 5 : (uint64_t)dim;
    uint64_t seed = 0x5eed0000u + (uint64_t)(rows * 7 + dim), stream = 3;
    float *y = randoms(n, -3, 5), *x = randoms(n, -2, 2), *w = randoms(dim, 0.5f, 1.5f);
    float *b = randoms(dim, -1, 1), *dout = randoms(n, -1, 1);
    float *dw0 = randoms(dim, -1, 1), *db0 = randoms(dim, -1, 1);
    if (bf) {
        round_to_bf16(y, n);
        round_to_bf16(x, n);
        round_to_bf16(dout, n);
    }
    float *res = copy_of(y, n), *out = malloc(n * sizeof *out), *mean = malloc(rows * sizeof *mean);
    float *rstd = malloc(rows * sizeof *rstd);
    dropout_forward_rows(res, y, rows, dim, first, stride, p, seed, stream);
    if (bf) round_to_bf16(res, n); /* the dropout kernel's store */
    residual_add(res, x, n);
    if (bf) round_to_bf16(res, n); /* one fp32 addition, rounded once */
    layernorm_forward(out, mean, rstd, res, w, b, rows, dim, 1e-12f);

    /* Per order: the unfused reference, the fused launcher out of place and
     * in place; each {out, mean, rstd, res}, and y after the out-of-place
     * run; then the backwards' {dres, dinp, dweight, dbias}, unfused and fused. */
    enum { REF, APART, INPLACE, RUNS };
    float *g[RUNS][4][ORDERS], *g_y[ORDERS], *gb[2][4][ORDERS];
    for (int o = 0; o < ORDERS; o++) {
        set_order(o);
        void *d_x = track(upload(x, n, bf)), *d_w = dev_copy(w, dim), *d_b = dev_copy(b, dim);
        void *d_y = track(upload(y, n, bf));
        DropoutSite site = {p, dev_key(seed, stream), first, stride};
        const DropoutSite *drop = mode ? &site : NULL;
        void *d_out[RUNS], *d_res[RUNS];
        float *d_mean[RUNS], *d_rstd[RUNS];
        for (int k = 0; k < RUNS; k++) {
            d_out[k] = track(dev_bytes(n * es));
            d_mean[k] = track(dev_bytes(rows * sizeof(float)));
            d_rstd[k] = track(dev_bytes(rows * sizeof(float)));
            poison(d_out[k], n * es);
            poison(d_mean[k], rows * sizeof(float));
            poison(d_rstd[k], rows * sizeof(float));
        }
        d_res[APART] = track(dev_bytes(n * es));
        poison(d_res[APART], n * es);
        d_res[INPLACE] = track(upload(y, n, bf));
        if (bf) {
            d_res[REF] = track(upload(res, n, 1)); /* rounded on the host */
            launch_ok(layernorm_forward_cuda_bf16(d_out[REF], d_mean[REF], d_rstd[REF], d_res[REF], d_w, d_b,
                                                  rows, dim, 1e-12f, 0));
            launch_ok(layernorm_residual_forward_cuda_bf16(d_out[APART], d_res[APART], d_mean[APART],
                                                           d_rstd[APART], d_y, d_x, d_w, d_b, rows, dim,
                                                           1e-12f, drop, 0));
            launch_ok(layernorm_residual_forward_cuda_bf16(d_out[INPLACE], d_res[INPLACE], d_mean[INPLACE],
                                                           d_rstd[INPLACE], d_res[INPLACE], d_x, d_w, d_b,
                                                           rows, dim, 1e-12f, drop, 0));
        } else {
            d_res[REF] = track(dev_bytes(n * es));
            launch_ok(dropout_forward_rows_cuda(d_res[REF], d_y, rows, dim, first, stride, p, site.key, 0));
            launch_ok(residual_add_cuda(d_res[REF], d_x, n, 0));
            launch_ok(layernorm_forward_cuda(d_out[REF], d_mean[REF], d_rstd[REF], d_res[REF], d_w, d_b, rows,
                                             dim, 1e-12f, 0));
            launch_ok(layernorm_residual_forward_cuda(d_out[APART], d_res[APART], d_mean[APART],
                                                      d_rstd[APART], d_y, d_x, d_w, d_b, rows, dim, 1e-12f,
                                                      drop, 0));
            launch_ok(layernorm_residual_forward_cuda(d_out[INPLACE], d_res[INPLACE], d_mean[INPLACE],
                                                      d_rstd[INPLACE], d_res[INPLACE], d_x, d_w, d_b, rows,
                                                      dim, 1e-12f, drop, 0));
        }
        /* The backwards, from the fused forward's res and statistics. */
        size_t work = layernorm_backward_workspace_size(rows, dim);
        void *d_work = track(dev_bytes(work)), *d_dout = track(upload(dout, n, bf));
        cuda_must(cudaMemset(d_work, 0, work));
        void *d_dres[2], *d_dinp[2];
        float *d_dw[2], *d_db[2];
        for (int k = 0; k < 2; k++) {
            d_dres[k] = track(dev_bytes(n * es));
            d_dinp[k] = track(dev_bytes(n * es));
            poison(d_dres[k], n * es);
            poison(d_dinp[k], n * es);
            d_dw[k] = dev_copy(dw0, dim);
            d_db[k] = dev_copy(db0, dim);
        }
        if (bf) {
            launch_ok(layernorm_backward_cuda_bf16(d_dres[0], false, d_dw[0], d_db[0], d_dout, d_res[APART], d_w,
                                                   d_mean[APART], d_rstd[APART], rows, dim, d_work, 0));
            launch_ok(dropout_backward_rows_cuda_bf16(d_dinp[0], false, d_dres[0], rows, dim, first, stride, p,
                                                      site.key, 0));
            launch_ok(layernorm_residual_backward_cuda_bf16(d_dres[1], d_dinp[1], d_dw[1], d_db[1], d_dout,
                                                            d_res[APART], d_w, d_mean[APART], d_rstd[APART], rows,
                                                            dim, drop, d_work, 0));
        } else {
            launch_ok(layernorm_backward_cuda(d_dres[0], false, d_dw[0], d_db[0], d_dout, d_res[APART], d_w,
                                              d_mean[APART], d_rstd[APART], rows, dim, d_work, 0));
            launch_ok(dropout_backward_rows_cuda(d_dinp[0], false, d_dres[0], rows, dim, first, stride, p,
                                                 site.key, 0));
            launch_ok(layernorm_residual_backward_cuda(d_dres[1], d_dinp[1], d_dw[1], d_db[1], d_dout,
                                                       d_res[APART], d_w, d_mean[APART], d_rstd[APART], rows, dim,
                                                       drop, d_work, 0));
        }
        for (int k = 0; k < RUNS; k++) {
            g[k][0][o] = download(d_out[k], n, bf);
            g[k][1][o] = download(d_mean[k], rows, 0);
            g[k][2][o] = download(d_rstd[k], rows, 0);
            g[k][3][o] = download(d_res[k], n, bf);
        }
        for (int k = 0; k < 2; k++) {
            gb[k][0][o] = download(d_dres[k], n, bf);
            gb[k][1][o] = download(d_dinp[k], n, bf);
            gb[k][2][o] = download(d_dw[k], dim, 0);
            gb[k][3][o] = download(d_db[k], dim, 0);
        }
        g_y[o] = download(d_y, n, bf);
        free_tracked();
    }
    static const char *run[RUNS] = {"unfused", "fused", "fused in place"};
    static const char *part[4] = {"out", "mean", "rstd", "res"};
    static const char *bpart[4] = {"dres", "dinp", "dweight", "dbias"};
    size_t len[4] = {n, (size_t)rows, (size_t)rows, n}, blen[4] = {n, n, (size_t)dim, (size_t)dim};
    for (int k = 0; k < RUNS; k++)
        for (int q = 0; q < 4; q++) {
            char what[64];
            snprintf(what, sizeof what, "layernorm_residual %s %s", run[k], part[q]);
            check_orders(what, g[k][q], len[q], shape);
            if (k != REF) check_same(what, g[k][q][0], g[REF][q][0], len[q], shape);
        }
    for (int q = 0; q < 4; q++) {
        char what[64];
        snprintf(what, sizeof what, "layernorm_residual backward %s", bpart[q]);
        check_orders(what, gb[0][q], blen[q], shape);
        check_orders(what, gb[1][q], blen[q], shape);
        check_same(what, gb[1][q][0], gb[0][q][0], blen[q], shape);
    }
    check_orders("layernorm_residual inp", g_y, n, shape);
    check_same("layernorm_residual inp (not in place)", g_y[0], y, n, shape);
    check_same("layernorm_residual res", g[APART][3][0], res, n, shape);
    check_close("layernorm_residual out", g[APART][0][0], out, n, bf ? RTOL_BF16 : RTOL, shape);
    check_close("layernorm_residual mean", g[APART][1][0], mean, rows, RTOL, shape);
    check_close("layernorm_residual rstd", g[APART][2][0], rstd, rows, RTOL, shape);
    for (int k = 0; k < RUNS; k++)
        for (int q = 0; q < 4; q++) free_runs(g[k][q]);
    for (int k = 0; k < 2; k++)
        for (int q = 0; q < 4; q++) free_runs(gb[k][q]);
    free_runs(g_y);
    free(y), free(x), free(w), free(b), free(dout), free(dw0), free(db0), free(res), free(out), free(mean);
    free(rstd);
    cases_checked += 3; /* the fused forward out of place and in place, the fused backward */
}

/* ---- GELU ------------------------------------------------------------------ */

static void gelu_case(int rows, int width, int bf)
{
    char shape[64];
    bool add = !storing(rows, width);
    snprintf(shape, sizeof shape, "%s %dx%d%s", bf ? "bf16" : "fp32", rows, width, add ? "" : " storing");
    size_t n = (size_t)rows * width;
    double rtol = bf ? RTOL_BF16 : RTOL;
    float *x = randoms(n, -6, 6), *dy = randoms(n, -1, 1), *dx0 = randoms(n, -1, 1);
    if (!add) memset(dx0, 0, n * sizeof *dx0);
    if (bf) {
        round_to_bf16(x, n);
        round_to_bf16(dy, n);
        round_to_bf16(dx0, n);
    }
    float *out = malloc(n * sizeof *out), *dx = copy_of(dx0, n);
    gelu_forward(out, x, n);
    gelu_backward(dx, dy, x, n);
    float *g_out[ORDERS], *g_dx[ORDERS];
    for (int o = 0; o < ORDERS; o++) {
        set_order(o);
        void *d_x = upload(x, n, bf), *d_out = upload(x, n, bf), *d_dy = upload(dy, n, bf);
        void *d_dx = upload(dx0, n, bf);
        if (!add) poison(d_dx, n * (bf ? sizeof(bf16) : sizeof(float)));
        if (bf) {
            launch_ok(gelu_forward_cuda_bf16(d_out, d_x, n, 0));
            launch_ok(gelu_backward_cuda_bf16(d_dx, add, d_dy, d_x, n, 0));
        } else {
            launch_ok(gelu_forward_cuda(d_out, d_x, n, 0));
            launch_ok(gelu_backward_cuda(d_dx, add, d_dy, d_x, n, 0));
        }
        g_out[o] = download(d_out, n, bf);
        g_dx[o] = download(d_dx, n, bf);
        cuda_must(cudaFree(d_x)), cuda_must(cudaFree(d_out)), cuda_must(cudaFree(d_dy));
        cuda_must(cudaFree(d_dx));
    }
    check_orders("gelu out", g_out, n, shape);
    check_orders("gelu dinp", g_dx, n, shape);
    check_close("gelu out", g_out[0], out, n, rtol, shape);
    check_close("gelu dinp", g_dx[0], dx, n, rtol, shape);
    free_runs(g_out), free_runs(g_dx);
    free(x), free(dy), free(dx0), free(out), free(dx);
    cases_checked += 2;
}

/* ---- softmax --------------------------------------------------------------- */

/* Mask row k: random 30% masked, all masked, one unmasked, none masked. */
static float *make_mask(int mrows, int cols)
{
    float *m = malloc((size_t)mrows * cols * sizeof *m);
    for (int k = 0; k < mrows; k++) {
        for (int j = 0; j < cols; j++) {
            float v = 0.0f;
            switch (k % 4) {
            case 0: v = uniform(0, 1) < 0.3f ? SOFTMAX_MASKED : 0.0f; break;
            case 1: v = SOFTMAX_MASKED; break;
            case 2: v = j == (k * 7) % cols ? 0.0f : SOFTMAX_MASKED; break;
            }
            m[(size_t)k * cols + j] = v;
        }
    }
    return m;
}

static void softmax_case(int rows, int cols, int bf, int masked)
{
    char shape[80];
    int rows_per_mask = rows == 1024 ? 128 : rows == 3 ? 1 : rows;
    snprintf(shape, sizeof shape, "%s %dx%d %s", bf ? "bf16" : "fp32", rows, cols,
             masked ? "masked" : "unmasked");
    size_t n = (size_t)rows * cols;
    double rtol = bf ? RTOL_BF16 : RTOL;
    const float scale = 0.125f;
    float *x = randoms(n, -40, 40), *dy = randoms(n, -1, 1), *dx0 = randoms(n, -1, 1);
    float *mask = masked ? make_mask(rows / rows_per_mask, cols) : NULL;
    if (bf) {
        round_to_bf16(x, n);
        round_to_bf16(dy, n);
        round_to_bf16(dx0, n);
    }
    float *out = malloc(n * sizeof *out), *dx = copy_of(dx0, n);
    softmax_forward(out, x, mask, scale, rows, cols, rows_per_mask);
    /* The backward's saved output is what the kernel under test stored. */
    float *y = copy_of(out, n);
    if (bf) round_to_bf16(y, n);
    softmax_backward(dx, dy, y, scale, rows, cols);

    float *g_out[ORDERS], *g_dx[ORDERS];
    for (int o = 0; o < ORDERS; o++) {
        set_order(o);
        void *d_x = upload(x, n, bf), *d_out = upload(x, n, bf), *d_y = upload(y, n, bf);
        void *d_dy = upload(dy, n, bf), *d_dx = upload(dx0, n, bf);
        float *d_mask = mask ? upload(mask, (size_t)(rows / rows_per_mask) * cols, 0) : NULL;
        if (bf) {
            launch_ok(softmax_forward_cuda_bf16(d_out, d_x, d_mask, scale, rows, cols, rows_per_mask, 0));
            launch_ok(softmax_backward_cuda_bf16(d_dx, d_dy, d_y, scale, rows, cols, 0));
        } else {
            launch_ok(softmax_forward_cuda(d_out, d_x, d_mask, scale, rows, cols, rows_per_mask, 0));
            launch_ok(softmax_backward_cuda(d_dx, d_dy, d_y, scale, rows, cols, 0));
        }
        g_out[o] = download(d_out, n, bf);
        g_dx[o] = download(d_dx, n, bf);
        cuda_must(cudaFree(d_x)), cuda_must(cudaFree(d_out)), cuda_must(cudaFree(d_y));
        cuda_must(cudaFree(d_dy)), cuda_must(cudaFree(d_dx));
        if (d_mask) cuda_must(cudaFree(d_mask));
    }
    check_orders("softmax out", g_out, n, shape);
    check_orders("softmax dinp", g_dx, n, shape);
    check_close("softmax out", g_out[0], out, n, rtol, shape);
    check_close("softmax dinp", g_dx[0], dx, n, rtol, shape);
    free_runs(g_out), free_runs(g_dx);
    free(x), free(dy), free(dx0), free(mask), free(out), free(dx), free(y);
    cases_checked += masked ? 1 : 2; /* the masked run counts for its forward */
}

/* ---- the training step's kernels ------------------------------------------
 * Each family below runs its own shapes (ragged ones among them) and counts
 * its cases, one per launcher call checked; `run` 0 only counts (for the
 * report). Exact ops are checked bit for bit (check_same); the others state
 * their tolerance where they check. Every launch runs in both thread orders,
 * which must agree bit for bit. */

/* One case's results over the thread orders: out[o] is order o's download. */
typedef struct {
    float *out[ORDERS];
} Runs;
static void runs_free(Runs *r, int k)
{
    for (int i = 0; i < k; i++) free_runs(r[i].out);
}

/* ---- embeddings: bit for bit, repeated ids included ---- */

/* bf: bf16 out and dout; out is the CPU's rounded, and the fp32 table
 * gradients of the bf16-valued dout are the CPU's bit for bit (the same
 * sums in the same order). */
static void embedding_case(int B, int T, int C, int bf)
{
    char shape[64];
    snprintf(shape, sizeof shape, "%s B=%d T=%d C=%d", bf ? "bf16" : "fp32", B, T, C);
    int V = 37, P = T + 3, n = B * T;
    int32_t *ids = malloc(n * sizeof *ids);
    for (int i = 0; i < n; i++) /* [CLS] first, a third padding (id 0), the rest random */
        ids[i] = i % T == 0 ? 2 : uniform(0, 1) < 0.3f ? 0 : (int32_t)uniform(0, (float)V - 0.5f);
    size_t nout = (size_t)n * C;
    float *wte = randoms((size_t)V * C, -1, 1), *wpe = randoms((size_t)P * C, -1, 1);
    float *dy = randoms(nout, -1, 1), *dwte0 = randoms((size_t)V * C, -1, 1);
    float *dwpe0 = randoms((size_t)P * C, -1, 1), *out = malloc(nout * sizeof *out);
    float *dwte = copy_of(dwte0, (size_t)V * C), *dwpe = copy_of(dwpe0, (size_t)P * C);
    if (bf) round_to_bf16(dy, nout);
    embedding_forward(out, ids, wte, wpe, B, T, C);
    embedding_backward(dwte, dwpe, dy, ids, B, T, C);
    if (bf) round_to_bf16(out, nout);
    int32_t *plan = malloc(embedding_plan_len(n) * sizeof *plan);
    embedding_backward_plan(plan, ids, n);
    Runs r[3];
    for (int o = 0; o < ORDERS; o++) {
        set_order(o);
        int32_t *d_ids = track(upload_bytes(ids, n * sizeof *ids));
        int32_t *d_plan = track(upload_bytes(plan, embedding_plan_len(n) * sizeof *plan));
        void *d_out = track(dev_bytes(nout * (bf ? sizeof(bf16) : sizeof(float))));
        void *d_dy = track(upload(dy, nout, bf));
        float *d_wte = dev_copy(wte, (size_t)V * C), *d_wpe = dev_copy(wpe, (size_t)P * C);
        float *d_dwte = dev_copy(dwte0, (size_t)V * C), *d_dwpe = dev_copy(dwpe0, (size_t)P * C);
        if (bf) {
            launch_ok(embedding_forward_cuda_bf16(d_out, d_ids, d_wte, d_wpe, B, T, C, 0));
            launch_ok(embedding_backward_cuda_bf16(d_dwte, d_dwpe, d_dy, d_ids, d_plan, B, T, C, 0));
        } else {
            launch_ok(embedding_forward_cuda(d_out, d_ids, d_wte, d_wpe, B, T, C, 0));
            launch_ok(embedding_backward_cuda(d_dwte, d_dwpe, d_dy, d_ids, d_plan, B, T, C, 0));
        }
        r[0].out[o] = download(d_out, nout, bf);
        r[1].out[o] = download(d_dwte, (size_t)V * C, 0);
        r[2].out[o] = download(d_dwpe, (size_t)P * C, 0);
        free_tracked();
    }
    check_orders("embedding out", r[0].out, nout, shape);
    check_orders("embedding dwte", r[1].out, (size_t)V * C, shape);
    check_orders("embedding dwpe", r[2].out, (size_t)P * C, shape);
    check_same("embedding out", r[0].out[0], out, nout, shape);
    check_same("embedding dwte", r[1].out[0], dwte, (size_t)V * C, shape);
    check_same("embedding dwpe", r[2].out[0], dwpe, (size_t)P * C, shape);
    runs_free(r, 3);
    free(ids), free(wte), free(wpe), free(dy), free(dwte0), free(dwpe0), free(out), free(dwte);
    free(dwpe), free(plan);
    cases_checked += 2;
}

static int embedding_all(int run)
{
    static const int Bs[] = {1, 3, 8}, Ts[] = {1, 7, 128}, Cs[] = {1, 33, 768};
    int cases = 0;
    for (int bf = 0; bf < 2; bf++)
        for (int b = 0; b < 3; b++)
            for (int t = 0; t < 3; t++)
                for (int c = 0; c < 3; c++) {
                    if (run) embedding_case(Bs[b], Ts[t], Cs[c], bf);
                    cases += 2;
                }
    return cases;
}

/* ---- dropout: the CPU's masks and outputs bit for bit ---- */

/* rows x cols elements, element (r, c) at first + r * stride of the stream;
 * rows 0 means the whole-tensor or _at form over cols elements (bf16 has
 * no _at form: first 0). bf: bf16 values in and out, the CPU's outputs on
 * them rounded. */
static void dropout_case(int rows, int cols, uint64_t first, uint64_t stride, float p,
                         uint64_t seed, uint64_t stream, int bf)
{
    char shape[128];
    bool add = !storing(rows, cols + (int)(first % 2));
    snprintf(shape, sizeof shape, "%s rows=%d cols=%d first=%llu stride=%llu p=%g%s", bf ? "bf16" : "fp32",
             rows, cols, (unsigned long long)first, (unsigned long long)stride, p, add ? "" : " storing");
    cr_assert(!bf || rows || !first, "no bf16 _at launcher");
    size_t n = (size_t)(rows ? rows : 1) * cols;
    float *x = randoms(n, -2, 2), *dy = randoms(n, -2, 2), *d0 = randoms(n, -1, 1);
    if (!add) memset(d0, 0, n * sizeof *d0);
    if (bf) {
        round_to_bf16(x, n);
        round_to_bf16(dy, n);
        round_to_bf16(d0, n);
    }
    float *out = malloc(n * sizeof *out), *d = copy_of(d0, n);
    if (add && n > 2) d0[1] = -0.0f, d[1] = -0.0f; /* a dropped element adds +0: -0 becomes +0 */
    if (rows) {
        dropout_forward_rows(out, x, rows, cols, first, stride, p, seed, stream);
        dropout_backward_rows(d, dy, rows, cols, first, stride, p, seed, stream);
    } else {
        dropout_forward_at(out, x, n, first, p, seed, stream);
        dropout_backward_at(d, dy, n, first, p, seed, stream);
    }
    if (bf) {
        round_to_bf16(out, n);
        round_to_bf16(d, n);
    }
    size_t elt = bf ? sizeof(bf16) : sizeof(float);
    Runs r[2];
    for (int o = 0; o < ORDERS; o++) {
        set_order(o);
        void *d_x = track(upload(x, n, bf)), *d_dy = track(upload(dy, n, bf));
        void *d_d = track(upload(d0, n, bf)), *d_out = track(dev_bytes(n * elt));
        if (!add) poison(d_d, n * elt);
        const PhiloxKey *d_key = dev_key(seed, stream);
        if (rows && bf) {
            launch_ok(dropout_forward_rows_cuda_bf16(d_out, d_x, rows, cols, first, stride, p, d_key, 0));
            launch_ok(dropout_backward_rows_cuda_bf16(d_d, add, d_dy, rows, cols, first, stride, p, d_key, 0));
        } else if (rows) {
            launch_ok(dropout_forward_rows_cuda(d_out, d_x, rows, cols, first, stride, p, d_key, 0));
            launch_ok(dropout_backward_rows_cuda(d_d, add, d_dy, rows, cols, first, stride, p, d_key, 0));
        } else if (bf) {
            launch_ok(dropout_forward_cuda_bf16(d_out, d_x, n, p, d_key, 0));
            launch_ok(dropout_backward_cuda_bf16(d_d, add, d_dy, n, p, d_key, 0));
        } else if (first == 0) {
            launch_ok(dropout_forward_cuda(d_out, d_x, n, p, d_key, 0));
            launch_ok(dropout_backward_cuda(d_d, add, d_dy, n, p, d_key, 0));
        } else {
            launch_ok(dropout_forward_at_cuda(d_out, d_x, n, first, p, d_key, 0));
            launch_ok(dropout_backward_at_cuda(d_d, add, d_dy, n, first, p, d_key, 0));
        }
        r[0].out[o] = download(d_out, n, bf);
        r[1].out[o] = download(d_d, n, bf);
        free_tracked();
    }
    check_orders("dropout out", r[0].out, n, shape);
    check_orders("dropout dinp", r[1].out, n, shape);
    check_same("dropout out", r[0].out[0], out, n, shape);
    check_same("dropout dinp", r[1].out[0], d, n, shape);
    runs_free(r, 2);
    free(x), free(dy), free(d0), free(out), free(d);
    cases_checked += 2;
}

static int dropout_all(int run)
{
    static const float Ps[] = {0.0f, 0.1f, 0.5f, 0.9f};
    static const int Ns[] = {1, 7, 9, 17, 100, 4097, 100003};
    static const uint64_t Firsts[] = {0, 3, 13, (1ull << 35) + 5}; /* the last: a 64-bit counter */
    static const int Rows[] = {1, 3, 32}, Cols[] = {1, 7, 33, 768};
    int cases = 0, k = 0;
    for (int bf = 0; bf < 2; bf++) {
        for (int p = 0; p < 4; p++)
            for (int i = 0; i < 7; i++)
                for (int f = 0; f < 4; f++, k++) {
                    if (bf && Firsts[f]) continue; /* no bf16 _at form */
                    if (run)
                        dropout_case(0, Ns[i], Firsts[f], 0, Ps[p], 0x9e3779b97f4a7c15ull ^ (uint64_t)k,
                                     ((uint64_t)k << 20) | 3, bf);
                    cases += 2;
                }
        /* the [CLS] rows: T = 128 apart, or 1 apart past the row; bf16 also
         * at p = 0, its copy and add */
        for (int rp = 0; rp < 1 + bf; rp++)
            for (int r = 0; r < 3; r++)
                for (int c = 0; c < 4; c++)
                    for (int s = 0; s < 2; s++)
                        for (int f = 0; f < 2; f++, k++) {
                            uint64_t stride = s ? 128ull * Cols[c] : (uint64_t)Cols[c] + 1;
                            if (run)
                                dropout_case(Rows[r], Cols[c], f ? 9 : 0, stride, rp ? 0.0f : 0.1f, 1234 + k, k,
                                             bf);
                            cases += 2;
                        }
    }
    return cases;
}

/* ---- elementwise: residual, ReLU, rows, mask; bf16 conversion ---- */

/* bf: the bf16 launchers on bf16-valued inputs, the CPU's outputs on them
 * rounded; in place of the mask (fp32 only),
 * convert_bf16_cuda on fp32 values and its edges (ties, overflow, NaN). */
static void elementwise_case(int rows, int width, int bf)
{
    char shape[64];
    snprintf(shape, sizeof shape, "%s %dx%d", bf ? "bf16" : "fp32", rows, width);
    size_t n = (size_t)rows * width;
    const int stride = 3; /* rows r * 3 of a 3 x rows x width tensor */
    size_t wide = n * stride;
    float *y0 = randoms(n, -2, 2), *x = randoms(n, -2, 2), *dy = randoms(n, -1, 1);
    float *d0 = randoms(n, -1, 1), *src = randoms(wide, -1, 1), *big0 = randoms(wide, -1, 1);
    float *conv = bf ? randoms(n, -3, 3) : NULL, *conv_ref = NULL;
    x[0] = 0.0f; /* ReLU's edges: 0, -0 and NaN give 0 and no gradient */
    if (n > 1) x[1] = -0.0f;
    if (n > 2) x[2] = NAN;
    /* ties to even, down (1 + 2^-8) and up (1 + 3 2^-8), overflow, the
     * infinities, NaN, a subnormal */
    static const float EDGES[] = {1.00390625f, 1.01171875f, 3.4028235e38f, -INFINITY, INFINITY, NAN, 1e-40f};
    if (bf) {
        for (size_t e = 0; e < sizeof EDGES / sizeof *EDGES && e < n; e++) conv[n - 1 - e] = EDGES[e];
        conv_ref = copy_of(conv, n);
        round_to_bf16(conv_ref, n);
        float *all[] = {y0, x, dy, d0};
        for (int k = 0; k < 4; k++) round_to_bf16(all[k], n);
        round_to_bf16(src, wide);
        round_to_bf16(big0, wide);
    }
    int32_t *mask = malloc(n * sizeof *mask);
    for (size_t i = 0; i < n; i++) mask[i] = uniform(0, 1) < 0.3f ? 0 : i % 2 ? 1 : 7;
    bool add = !storing(rows, width); /* ReLU's backward */
    float *res = copy_of(y0, n), *relu = malloc(n * sizeof *relu), *drelu = copy_of(d0, n);
    if (!add) memset(drelu, 0, n * sizeof *drelu);
    float *gath = malloc(n * sizeof *gath), *scat = copy_of(big0, wide);
    float *madd = malloc(n * sizeof *madd), *mnone = malloc(n * sizeof *mnone);
    residual_add(res, x, n);
    relu_forward(relu, x, n);
    relu_backward(drelu, dy, x, n);
    rows_gather(gath, src, rows, width, stride);
    rows_scatter_add(scat, x, rows, width, stride);
    softmax_mask_additive(madd, mask, n);
    softmax_mask_additive(mnone, NULL, n);
    if (bf) {
        float *all[] = {relu, drelu, gath};
        for (int k = 0; k < 3; k++) round_to_bf16(all[k], n);
        round_to_bf16(scat, wide);
    }
    size_t elt = bf ? sizeof(bf16) : sizeof(float);
    Runs r[7];
    for (int o = 0; o < ORDERS; o++) {
        set_order(o);
        void *d_res = track(upload(y0, n, bf)), *d_x = track(upload(x, n, bf)), *d_dy = track(upload(dy, n, bf));
        void *d_relu = track(dev_bytes(n * elt)), *d_drelu = track(upload(d0, n, bf));
        if (!add) poison(d_drelu, n * elt);
        void *d_src = track(upload(src, wide, bf)), *d_gath = track(dev_bytes(n * elt));
        void *d_scat = track(upload(big0, wide, bf)), *d_madd = track(dev_bytes(n * sizeof(float)));
        float *d_mnone = track(dev_bytes(n * sizeof(float)));
        int32_t *d_mask = track(upload_bytes(mask, n * sizeof *mask));
        if (bf) {
            float *d_conv = dev_copy(conv, n);
            launch_ok(relu_forward_cuda_bf16(d_relu, d_x, n, 0));
            launch_ok(relu_backward_cuda_bf16(d_drelu, add, d_dy, d_x, n, 0));
            launch_ok(rows_gather_cuda_bf16(d_gath, d_src, rows, width, stride, 0));
            launch_ok(rows_scatter_add_cuda_bf16(d_scat, d_x, rows, width, stride, 0));
            launch_ok(convert_bf16_cuda(d_madd, d_conv, n, 0)); /* into the mask's buffer */
        } else {
            launch_ok(residual_add_cuda(d_res, d_x, n, 0));
            launch_ok(relu_forward_cuda(d_relu, d_x, n, 0));
            launch_ok(relu_backward_cuda(d_drelu, add, d_dy, d_x, n, 0));
            launch_ok(rows_gather_cuda(d_gath, d_src, rows, width, stride, 0));
            launch_ok(rows_scatter_add_cuda(d_scat, d_x, rows, width, stride, 0));
            launch_ok(softmax_mask_additive_cuda(d_madd, d_mask, n, 0));
            launch_ok(softmax_mask_additive_cuda(d_mnone, NULL, n, 0));
        }
        void *got[7] = {d_res, d_relu, d_drelu, d_gath, d_scat, d_madd, d_mnone};
        size_t len[7] = {bf ? 0 : n, n, n, n, wide, n, bf ? 0 : n};
        for (int k = 0; k < 7; k++) r[k].out[o] = download(got[k], len[k], bf);
        free_tracked();
    }
    static const char *what[7] = {"residual_add", "relu_forward", "relu_backward", "rows_gather",
                                  "rows_scatter_add", "mask_additive", "mask_additive (NULL)"};
    const float *ref[7] = {res, relu, drelu, gath, scat, bf ? conv_ref : madd, mnone};
    size_t len[7] = {bf ? 0 : n, n, n, n, wide, n, bf ? 0 : n};
    for (int k = 0; k < 7; k++) {
        const char *name = bf && k == 5 ? "convert_bf16" : what[k];
        check_orders(name, r[k].out, len[k], shape);
        check_same(name, r[k].out[0], ref[k], len[k], shape);
    }
    runs_free(r, 7);
    free(y0), free(x), free(dy), free(d0), free(src), free(big0), free(conv);
    free(mask), free(res), free(relu), free(drelu), free(gath), free(scat), free(madd);
    free(mnone), free(conv_ref);
    cases_checked += bf ? 5 : 7; /* bf16: no residual add (LayerNorm fuses it) nor mask */
}

static int elementwise_all(int run)
{
    int cases = 0;
    for (int bf = 0; bf < 2; bf++)
        for (int r = 0; r < NROWS; r++)
            for (int w = 0; w < NWIDTHS; w++)
                if (shape_used(ROWS[r], WIDTHS[w])) {
                    if (run) elementwise_case(ROWS[r], WIDTHS[w], bf);
                    cases += bf ? 5 : 7;
                }
    return cases;
}

/* ---- losses: the mean to 1e-6 relative, dlogits to 1e-6 ---- */

static double worst_loss_err, worst_dlogit_err; /* measured, for the report line */

static void loss_case(const Loss *kind, const char *name, int B, int L)
{
    char shape[96];
    snprintf(shape, sizeof shape, "%s %dx%d", name, B, L);
    size_t n = (size_t)B * L;
    float *x = randoms(n, -8, 8), *y = malloc(n * sizeof *y), *w = randoms(L, 0.2f, 3);
    for (size_t i = 0; i < n; i++) {
        float u = uniform(0, 1);
        y[i] = u < 0.4f ? 1.0f : u < 0.9f ? 0.0f : 0.3f; /* soft targets too */
        if (i % 11 == 5) x[i] = i % 2 ? 60.0f : -1e4f;   /* saturated logits */
    }
    Loss ls = *kind;
    ls.weights = w;
    if (kind->class_weights) ls.class_weights = w; /* the same random weights as class weights */
    float *g = malloc(n * sizeof *g);
    float ref = loss_forward(&ls, g, x, y, B, L, 0.5f);
    float got_mean[ORDERS], got_nograd[ORDERS];
    Runs r[1];
    for (int o = 0; o < ORDERS; o++) {
        set_order(o);
        float *d_x = dev_copy(x, n), *d_y = dev_copy(y, n), *d_w = dev_copy(w, L);
        float *d_g = track(dev_bytes(n * sizeof(float))), *d_mean = track(dev_bytes(2 * sizeof(float)));
        void *d_work = track(dev_bytes(loss_workspace_size(B, L)));
        Loss dls = *kind;
        dls.weights = d_w;
        if (kind->class_weights) dls.class_weights = d_w;
        launch_ok(loss_forward_cuda(&dls, d_mean, d_g, d_x, d_y, B, L, 0.5f, d_work, 0));
        launch_ok(loss_forward_cuda(&dls, d_mean + 1, NULL, d_x, d_y, B, L, 0.5f, d_work, 0));
        r[0].out[o] = download(d_g, n, 0);
        float *m = download(d_mean, 2, 0);
        got_mean[o] = m[0], got_nograd[o] = m[1];
        free(m);
        free_tracked();
    }
    check_orders("loss dlogits", r[0].out, n, shape);
    for (int o = 1; o < ORDERS; o++)
        cr_assert(memcmp(&got_mean[o], &got_mean[0], sizeof(float)) == 0,
                  "loss %s: thread orders disagree", shape);
    double err = fabs((double)got_mean[0] - ref) / fmax(fabs(ref), 1e-30);
    cr_assert(err <= 1e-6, "loss %s: %.9g, CPU %.9g (relative error %.3g > 1e-6)", shape,
              got_mean[0], ref, err);
    cr_assert(got_nograd[0] == got_mean[0], "loss %s: without dlogits %.9g, with %.9g", shape,
              got_nograd[0], got_mean[0]);
    check_close("loss dlogits", r[0].out[0], g, n, 1e-6, shape);
    worst_loss_err = fmax(worst_loss_err, err);
    for (size_t i = 0; i < n; i++)
        worst_dlogit_err = fmax(worst_dlogit_err, fabs((double)r[0].out[0][i] - g[i]) /
                                                      fmax(fabs(g[i]), 1e-30));
    runs_free(r, 1);
    free(x), free(y), free(w), free(g);
    cases_checked += 2;
}

/* Marks a case whose class weights loss_case fills in (with its random w). */
static const float CLASS_WEIGHTED[1];

static int loss_all(int run)
{
    static const struct { const char *name; Loss loss; } kinds[] = {
        {"bce", {.kind = LOSS_BCE}},
        {"bce_logw pos_weight", {.kind = LOSS_BCE_LOGW, .as_pos_weight = true}},
        {"bce_logw weight", {.kind = LOSS_BCE_LOGW, .as_pos_weight = false}},
        {"focal 0.375 2", {.kind = LOSS_FOCAL, .alpha = 0.375f, .gamma = 2.0f}},
        {"focal none 0", {.kind = LOSS_FOCAL, .alpha = -1.0f, .gamma = 0.0f}},
        {"focal 0.25 1.5", {.kind = LOSS_FOCAL, .alpha = 0.25f, .gamma = 1.5f}},
        {"asl 0 4 0.05", {.kind = LOSS_ASL, .gamma_pos = 0.0f, .gamma_neg = 4.0f, .clip = 0.05f}},
        {"asl 1 2.5 0", {.kind = LOSS_ASL, .gamma_pos = 1.0f, .gamma_neg = 2.5f, .clip = 0.0f}},
        {"bce class-balanced", {.kind = LOSS_BCE, .class_weights = CLASS_WEIGHTED}},
        {"focal class-balanced", {.kind = LOSS_FOCAL, .alpha = 0.375f, .gamma = 2.0f, .class_weights = CLASS_WEIGHTED}},
        {"asl class-balanced", {.kind = LOSS_ASL, .gamma_neg = 4.0f, .clip = 0.05f, .class_weights = CLASS_WEIGHTED}},
    };
    static const int shapes[][2] = {{1, 1}, {3, 7}, {32, 20}, {127, 33}};
    int cases = 0;
    for (size_t k = 0; k < sizeof kinds / sizeof *kinds; k++)
        for (int s = 0; s < 4; s++) {
            if (run) loss_case(&kinds[k].loss, kinds[k].name, shapes[s][0], shapes[s][1]);
            cases += 2;
        }
    if (run) {
        printf("kernels: losses: largest relative error of the mean %.3g, of dlogits %.3g %s\n",
               worst_loss_err, worst_dlogit_err, WHERE);
        fflush(stdout);
    }
    return cases;
}

/* ---- AdamW: every parameter in one launch, bit for bit ---- */

/* bf: also the bf16 copy of the parameters, each the updated one rounded
 * (outside the segments: the copy of the old one, untouched). */
static void adamw_case(int t, float lr, int bf)
{
    char shape[64];
    snprintf(shape, sizeof shape, "t=%d lr=%g%s", t, lr, bf ? " param_bf16" : "");
    /* segments as a model's, ragged, one gap, and 4 trailing values in none */
    static const size_t sizes[] = {1, 7, 768, 65537, 3, 300001};
    AdamWSegment seg[6];
    size_t n = 0;
    for (int i = 0; i < 6; i++) {
        n += i == 4 ? 5 : 0;
        seg[i] = (AdamWSegment){n, sizes[i], i % 2 == 0};
        n += sizes[i];
    }
    n += 4;
    AdamW opt = {lr, 0.9f, 0.999f, 1e-8f, 0.01f};
    float *p = randoms(n, -1, 1), *g = randoms(n, -1e-2f, 1e-2f), *m = randoms(n, -1e-3f, 1e-3f);
    float *v = randoms(n, 0, 1e-5f);
    float *p_ref = copy_of(p, n), *m_ref = copy_of(m, n), *v_ref = copy_of(v, n);
    adamw_update_segments(&opt, p_ref, g, m_ref, v_ref, seg, 6, t, lr);
    float *pb_ref = copy_of(p_ref, n);
    round_to_bf16(pb_ref, n);
    Runs r[4];
    for (int o = 0; o < ORDERS; o++) {
        set_order(o);
        float *d_p = dev_copy(p, n), *d_g = dev_copy(g, n), *d_m = dev_copy(m, n);
        float *d_v = dev_copy(v, n);
        AdamWSegment *d_seg = track(upload_bytes(seg, sizeof seg));
        bf16 *d_pb = bf ? track(upload(p, n, 1)) : NULL;
        AdamWStep k;
        adamw_step_constants(&k, &opt, t, lr);
        AdamWStep *d_k = track(upload_bytes(&k, sizeof k));
        launch_ok(adamw_update_cuda(d_p, d_pb, d_g, d_m, d_v, d_seg, 6, n, d_k, 0));
        r[0].out[o] = download(d_p, n, 0);
        r[1].out[o] = download(d_m, n, 0);
        r[2].out[o] = download(d_v, n, 0);
        r[3].out[o] = bf ? download(d_pb, n, 1) : NULL;
        free_tracked();
    }
    check_orders("adamw param", r[0].out, n, shape);
    check_orders("adamw m", r[1].out, n, shape);
    check_orders("adamw v", r[2].out, n, shape);
    check_same("adamw param", r[0].out[0], p_ref, n, shape);
    check_same("adamw m", r[1].out[0], m_ref, n, shape);
    check_same("adamw v", r[2].out[0], v_ref, n, shape);
    if (bf) {
        check_orders("adamw param_bf16", r[3].out, n, shape);
        check_same("adamw param_bf16", r[3].out[0], pb_ref, n, shape);
    }
    runs_free(r, 4);
    free(p), free(g), free(m), free(v), free(p_ref), free(m_ref), free(v_ref), free(pb_ref);
    cases_checked += 1;
}

static int adamw_all(int run)
{
    static const int ts[] = {1, 2, 1000};
    static const float lrs[] = {5e-5f, 3e-3f};
    int cases = 0;
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 2; j++) {
            if (run) adamw_case(ts[i], lrs[j], (i + j) % 2); /* half with the bf16 copy */
            cases++;
        }
    return cases;
}

/* ---- the gradient norm, clipping, the finite check ---- */

static double worst_norm_err;

/* ZeRO-1's norm (models/backend_cuda.c): the values cut into shards of
 * two chunks, the last zero-padded, each shard's chunk sums written in
 * rank order, the norm of them all. */
static float split_norm(const float *g, size_t n)
{
    size_t shard = 2 * ADAMW_NORM_CHUNK, ranks = (n + shard - 1) / shard;
    float *padded = calloc(ranks * shard, sizeof *padded);
    memcpy(padded, g, n * sizeof *g);
    float *d_g = dev_copy(padded, ranks * shard), *d_norm = track(dev_bytes(sizeof(float)));
    double *d_part = track(dev_bytes(ranks * 2 * sizeof(double)));
    for (size_t r = 0; r < ranks; r++)
        launch_ok(grad_sum_squares_chunks_cuda(d_part + 2 * r, d_g + r * shard, shard, 0));
    launch_ok(grad_norm_of_chunks_cuda(d_norm, d_part, ranks * 2, 0));
    float *h = download(d_norm, 1, 0), norm = h[0];
    free(h);
    free(padded);
    return norm;
}

/* bad: 0 finite, 1 a NaN, 2 an infinity among the values */
static void norm_case(size_t n, double clip_ratio, int bad)
{
    char shape[64];
    snprintf(shape, sizeof shape, "n=%zu clip %g%s", n, clip_ratio,
             bad == 1 ? " NaN" : bad == 2 ? " Inf" : "");
    float *g = randoms(n, -1e-2f, 1e-2f);
    if (bad) g[n / 3] = bad == 1 ? NAN : -INFINITY;
    double ss = 0;
    for (size_t i = 0; i < n; i++) ss += (double)g[i] * g[i];
    float max_norm = (float)(sqrt(ss) * clip_ratio);
    float *clipped = copy_of(g, n);
    float ref = clip_grad_norm(clipped, n, max_norm);
    float got[ORDERS], split[ORDERS];
    int flags[ORDERS][2];
    Runs r[1];
    for (int o = 0; o < ORDERS; o++) {
        set_order(o);
        split[o] = split_norm(g, n);
        float *d_g = dev_copy(g, n), *d_norm = track(dev_bytes(sizeof(float)));
        void *d_work = track(dev_bytes(grad_norm_workspace_size(n)));
        int init[2] = {0, 1}, *d_flag = track(upload_bytes(init, sizeof init));
        launch_ok(finite_check_cuda(d_flag, d_g, n, 0));     /* from 0 */
        launch_ok(finite_check_cuda(d_flag + 1, d_g, n, 0)); /* 1 stays 1 */
        launch_ok(clip_grad_norm_cuda(d_g, d_norm, n, max_norm, d_work, 0));
        r[0].out[o] = download(d_g, n, 0);
        float *h = download(d_norm, 1, 0);
        got[o] = h[0];
        free(h);
        int *f = download_bytes(d_flag, sizeof init);
        flags[o][0] = f[0], flags[o][1] = f[1];
        free(f);
        free_tracked();
    }
    check_orders("clip_grad_norm grad", r[0].out, n, shape);
    for (int o = 1; o < ORDERS; o++)
        cr_assert(memcmp(&got[o], &got[0], sizeof(float)) == 0, "norm %s: orders disagree", shape);
    for (int o = 0; o < ORDERS; o++)
        cr_assert(memcmp(&split[o], &got[o], sizeof(float)) == 0, "norm %s: over shards %.9g, whole %.9g", shape,
                  split[o], got[o]);
    cr_assert_eq(flags[0][0], bad != 0, "finite check %s: flag %d", shape, flags[0][0]);
    cr_assert_eq(flags[0][1], 1, "finite check %s: a set flag was cleared", shape);
    if (bad) {
        cr_assert(!isfinite(got[0]) && (bad == 1) == (isnan(got[0]) != 0), "norm %s: %g", shape,
                  got[0]);
    } else {
        double err = fabs((double)got[0] - ref) / ref;
        worst_norm_err = fmax(worst_norm_err, err);
        cr_assert(err <= 1e-6, "norm %s: %.9g, CPU %.9g (relative error %.3g > 1e-6)", shape,
                  got[0], ref, err);
        /* the same norm clips bit for bit; one a rounding apart, to 1e-6 */
        if (got[0] == ref)
            check_same("clip_grad_norm grad", r[0].out[0], clipped, n, shape);
        else
            check_close("clip_grad_norm grad", r[0].out[0], clipped, n, 1e-6, shape);
    }
    runs_free(r, 1);
    free(g), free(clipped);
    cases_checked += 6;
}

static int norm_all(int run)
{
    static const size_t ns[] = {1, 1000, ADAMW_NORM_CHUNK, ADAMW_NORM_CHUNK + 1, 300001};
    int cases = 0;
    for (int i = 0; i < 5; i++)
        for (int c = 0; c < 2; c++) { /* clipping (norm 2x the limit) or not (0.5x) */
            if (run) norm_case(ns[i], c ? 0.5 : 2.0, 0);
            cases += 6; /* two finite checks, the norm, the clip, the norm's two stages over shards */
        }
    for (int bad = 1; bad <= 2; bad++) {
        if (run) norm_case(ADAMW_NORM_CHUNK + 1, 0.5, bad);
        cases += 6;
    }
    if (run) {
        printf("kernels: gradient norm: largest relative error %.3g %s\n", worst_norm_err, WHERE);
        fflush(stdout);
    }
    return cases;
}

/* ---- fused attention: against the CPU's unfused op, 1e-5; bf16 below ----
 * bf16: the same cases, q, k, v, dout and the gradients' starting values
 * rounded to bf16 on both sides, the CPU's fp32 op on those values the
 * reference. out and dv are one rounding from the fp32 result: 2^-8 + 1e-5
 * on check_close's scale, as the other bf16 kernels. dq and dk also carry
 * the rounding of out, which the backward reads for D (d_rounding_bounds):
 * that bound is added to each element's. And each bf16 result must be the
 * fp32 launchers' on the same values, rounded once (attention_twin). */

static double worst_attention_err; /* measured, for the report lines */
static double worst_bf16_err[4], worst_bf16_peak[4], worst_bf16_use; /* out, dq, dk, dv */

/* The largest error on check_close's scale (relative, floor 0.1 of the rms). */
static double scaled_err(const float *got, const float *ref, size_t n)
{
    double ss = 0.0, worst = 0.0;
    for (size_t i = 0; i < n; i++) ss += (double)ref[i] * ref[i];
    double floor = FLOOR * sqrt(ss / (n ? n : 1));
    for (size_t i = 0; i < n; i++) worst = fmax(worst, fabs((double)got[i] - ref[i]) / (fabs(ref[i]) + floor));
    return worst;
}
/* The largest error relative to the largest |ref|. */
static double peak_err(const float *got, const float *ref, size_t n)
{
    double m = 0.0, worst = 0.0;
    for (size_t i = 0; i < n; i++) m = fmax(m, fabs(ref[i]));
    for (size_t i = 0; i < n; i++) worst = fmax(worst, fabs((double)got[i] - ref[i]));
    return worst / m;
}

/* The bf16 backward's D = rowsum(dout * out) reads the stored, rounded out,
 * each element off by at most 2^-8 of itself, so D_i by at most e_i = 2^-8
 * sum_d |dout_id out_id|; through dS = P (Z dP~ - D) that moves dq_id by at
 * most scale e_i sum_j P_ij |k_jd| and dk_jd by scale sum_i P_ij e_i |q_id|
 * (P the CPU's att). Those bounds, into eq (B x rows x C) and ek (B x T x C). */
static void d_rounding_bounds(double *eq, double *ek, const float *att, const float *dout, const float *out,
                              const float *q, const float *k, int B, int T, int H, int hs, int rows)
{
    int C = H * hs;
    double scale = 1.0 / sqrt((double)hs);
    memset(eq, 0, (size_t)B * rows * C * sizeof *eq);
    memset(ek, 0, (size_t)B * T * C * sizeof *ek);
    for (int b = 0; b < B; b++)
        for (int h = 0; h < H; h++)
            for (int i = 0; i < rows; i++) {
                size_t qi = ((size_t)b * rows + i) * C + (size_t)h * hs;
                const float *P = att + (((size_t)b * H + h) * rows + i) * T;
                double e = 0.0;
                for (int d = 0; d < hs; d++) e += fabs((double)dout[qi + d] * out[qi + d]);
                e *= scale / 256;
                for (int j = 0; j < T; j++) {
                    size_t kj = ((size_t)b * T + j) * C + (size_t)h * hs;
                    for (int d = 0; d < hs; d++) {
                        eq[qi + d] += e * P[j] * fabs(k[kj + d]);
                        ek[kj + d] += e * P[j] * fabs(q[qi + d]);
                    }
                }
            }
}

/* The tensor-core kernels (attention_fused_tensor_cores) round P and Z P
 * (the forward's and dv's products) and dS (dq's and dk's) to bf16 before
 * multiplying, each term then off by at most 2^-8 of itself: out_id by
 * 2^-8 sum_j |attd_ij v_jd|, dv_jd by 2^-8 sum_i |attd_ij dout_id|, dq_id by
 * 2^-8 scale sum_j |dS_ij k_jd|, dk_jd by 2^-8 scale sum_i |dS_ij q_id|,
 * dS = attd (dout . v) - att D the CPU's. Added to eo, eq, ek, ev. */
static void tensor_core_bounds(double *eo, double *eq, double *ek, double *ev, const float *att, const float *attd,
                               const float *q, const float *k, const float *v, const float *dout,
                               const float *out, int B, int T, int H, int hs)
{
    int C = H * hs;
    double scale = 1.0 / sqrt((double)hs), u = 1.0 / 256;
    for (int b = 0; b < B; b++)
        for (int h = 0; h < H; h++)
            for (int i = 0; i < T; i++) {
                size_t qi = ((size_t)b * T + i) * C + (size_t)h * hs, row = (((size_t)b * H + h) * T + i) * T;
                double D = 0.0;
                for (int d = 0; d < hs; d++) D += (double)dout[qi + d] * out[qi + d];
                for (int j = 0; j < T; j++) {
                    size_t kj = ((size_t)b * T + j) * C + (size_t)h * hs;
                    double dp = 0.0;
                    for (int d = 0; d < hs; d++) dp += (double)dout[qi + d] * v[kj + d];
                    double zp = fabs(attd[row + j]), ds = fabs(attd[row + j] * dp - att[row + j] * D);
                    for (int d = 0; d < hs; d++) {
                        eo[qi + d] += u * zp * fabs(v[kj + d]);
                        ev[kj + d] += u * zp * fabs(dout[qi + d]);
                        eq[qi + d] += u * scale * ds * fabs(k[kj + d]);
                        ek[kj + d] += u * scale * ds * fabs(q[qi + d]);
                    }
                }
            }
}

/* check_close with extra[i] added to element i's tolerance; the largest
 * error / tolerance into worst_bf16_use. */
static void check_close_plus(const char *what, const float *got, const float *ref, const double *extra, size_t n,
                             double rtol, const char *shape)
{
    double ss = 0.0;
    for (size_t i = 0; i < n; i++) ss += (double)ref[i] * ref[i];
    double floor = FLOOR * sqrt(ss / (n ? n : 1));
    for (size_t i = 0; i < n; i++) {
        double err = fabs((double)got[i] - ref[i]), tol = rtol * (fabs(ref[i]) + floor) + extra[i];
        worst_bf16_use = fmax(worst_bf16_use, err / tol);
        cr_assert(err <= tol, "%s %s: [%zu] = %.9g, CPU %.9g (error %.3g > %.3g)", what, shape, i, got[i], ref[i],
                  err, tol);
    }
}

/* The bf16 launchers compute in fp32 what the fp32 ones (their twins) do
 * and round each store once: the twins on the same bf16 values (q, k, v,
 * dout, the gradients' starting values; the backward's out the bf16 run's
 * own) give lse and the other outputs before their rounding. In the
 * simulator both instances run the same fp32 operations, so the rounded
 * twin is the bf16 result bit for bit, lse too: a second rounding, a term
 * dropped or a wrong load shows however small. On a GPU nvcc may contract
 * each instance's multiply-adds its own way: lse within 1e-5, and the others
 * within one bf16 unit, 2^-7, where a rounding boundary falls between the
 * two (+ 1e-5, on check_close's scale). */
static void attention_twin(const Runs *r, const float *q, const float *k, const float *v, const float *dout,
                           const float *dq0, const float *dk0, const float *dv0, const float *mask, int B, int T,
                           int H, int hs, int rows, float p, bool add, uint64_t seed, uint64_t stream,
                           const char *shape)
{
    int C = H * hs;
    size_t nq = (size_t)B * rows * C, nkv = (size_t)B * T * C, nrow = (size_t)B * H * rows;
    float *d_q = dev_copy(q, nq), *d_k = dev_copy(k, nkv), *d_v = dev_copy(v, nkv), *d_dout = dev_copy(dout, nq);
    float *d_dq = dev_copy(dq0, nq), *d_dk = dev_copy(dk0, nkv), *d_dv = dev_copy(dv0, nkv);
    float *d_mask = dev_copy(mask, (size_t)B * T), *d_out = track(dev_bytes(nq * sizeof(float)));
    float *d_lse = track(dev_bytes(nrow * sizeof(float))), *d_dsum = track(dev_bytes(nrow * sizeof(float)));
    const PhiloxKey *d_key = dev_key(seed, stream);
    launch_ok(attention_fused_forward_cuda(d_out, d_lse, d_q, d_k, d_v, d_mask, B, T, H, hs, rows, p, d_key, 0));
    float *twin[5];
    twin[0] = download(d_out, nq, 0);
    twin[4] = download(d_lse, nrow, 0);
    cuda_must(cudaMemcpy(d_out, r[0].out[0], nq * sizeof(float), cudaMemcpyHostToDevice));
    if (!add) {
        poison(d_dq, nq * sizeof(float));
        poison(d_dk, nkv * sizeof(float));
        poison(d_dv, nkv * sizeof(float));
    }
    launch_ok(attention_fused_backward_cuda(d_dq, d_dk, d_dv, add, d_dsum, d_dout, d_out, d_q, d_k, d_v, d_lse,
                                            d_mask, B, T, H, hs, rows, p, d_key, 0));
    twin[1] = download(d_dq, nq, 0);
    twin[2] = download(d_dk, nkv, 0);
    twin[3] = download(d_dv, nkv, 0);
    free_tracked();
    /* the messages' "CPU" value is the twin's */
    static const char *what[5] = {"attention out (twin)", "attention dq (twin)", "attention dk (twin)",
                                  "attention dv (twin)", "attention lse (twin)"};
    size_t n[5] = {nq, nq, nkv, nkv, nrow};
    for (int t = 0; t < 5; t++) {
        if (t < 4) round_to_bf16(twin[t], n[t]);
#ifdef CUDASIM
        check_same(what[t], r[t].out[0], twin[t], n[t], shape);
#else
        check_close(what[t], r[t].out[0], twin[t], n[t], t < 4 ? 1.0 / 128 + 1e-5 : RTOL, shape);
#endif
        free(twin[t]);
    }
}

/* add: the backward adds into random gradients, else stores over NaN. bf:
 * q, k, v, dout and the gradients' starting values rounded to bf16 on both
 * sides, the bf16 launchers against the CPU's fp32 op on those values. */
static void attention_case(int B, int T, int H, int hs, int rows, float p, int padded, bool add, int bf)
{
    char shape[128];
    snprintf(shape, sizeof shape, "%s B=%d T=%d H=%d hs=%d rows=%d p=%g%s%s", bf ? "bf16" : "fp32", B, T, H, hs,
             rows, p, padded ? " padded" : "", add ? " adding" : " storing");
    int C = H * hs;
    size_t nq = (size_t)B * rows * C, nkv = (size_t)B * T * C, natt = (size_t)B * H * rows * T;
    uint64_t seed = 0x5eed + (uint64_t)T, stream = 77 + (uint64_t)hs;
    float *q = randoms(nq, -1, 1), *k = randoms(nkv, -1, 1), *v = randoms(nkv, -1, 1);
    float *dout = randoms(nq, -1, 1), *dq0 = randoms(nq, -1, 1), *dk0 = randoms(nkv, -1, 1);
    float *dv0 = randoms(nkv, -1, 1);
    if (!add) {
        memset(dq0, 0, nq * sizeof *dq0);
        memset(dk0, 0, nkv * sizeof *dk0);
        memset(dv0, 0, nkv * sizeof *dv0);
    }
    if (bf) {
        round_to_bf16(q, nq), round_to_bf16(k, nkv), round_to_bf16(v, nkv), round_to_bf16(dout, nq);
        round_to_bf16(dq0, nq), round_to_bf16(dk0, nkv), round_to_bf16(dv0, nkv);
    }
    int32_t *imask = malloc((size_t)B * T * sizeof *imask);
    for (int b = 0; b < B; b++) /* sequence b keeps its first T - 5b tokens (at least one) */
        for (int t = 0; t < T; t++) imask[b * T + t] = !padded || t == 0 || t < T - 5 * b;
    float *mask = malloc((size_t)B * T * sizeof *mask);
    softmax_mask_additive(mask, imask, (size_t)B * T);
    float *out = malloc(nq * sizeof *out), *preatt = malloc(natt * sizeof *preatt);
    float *att = malloc(natt * sizeof *att), *attd = malloc(natt * sizeof *attd);
    float *s1 = malloc(natt * sizeof *s1), *s2 = malloc(natt * sizeof *s2);
    float *dq = copy_of(dq0, nq), *dk = copy_of(dk0, nkv), *dv = copy_of(dv0, nkv);
    if (rows == 1) {
        attention_first_forward(out, preatt, att, attd, q, k, v, mask, B, T, H, hs, p, seed, stream);
        attention_first_backward(dq, dk, dv, s1, s2, dout, q, k, v, att, attd, B, T, H, hs, p);
    } else {
        attention_forward(out, preatt, att, attd, q, k, v, mask, B, T, H, hs, p, seed, stream);
        attention_backward(dq, dk, dv, s1, s2, dout, q, k, v, att, attd, B, T, H, hs, p);
    }
    Runs r[5]; /* out, dq, dk, dv, lse */
    size_t nrow = (size_t)B * H * rows, esize = bf ? sizeof(bf16) : sizeof(float);
    for (int o = 0; o < ORDERS; o++) {
        set_order(o);
        void *d_q = track(upload(q, nq, bf)), *d_k = track(upload(k, nkv, bf)), *d_v = track(upload(v, nkv, bf));
        void *d_dout = track(upload(dout, nq, bf)), *d_dq = track(upload(dq0, nq, bf));
        void *d_dk = track(upload(dk0, nkv, bf)), *d_dv = track(upload(dv0, nkv, bf));
        float *d_mask = dev_copy(mask, (size_t)B * T);
        if (!add) { /* NaN, so that a gradient read before it is stored shows */
            poison(d_dq, nq * esize);
            poison(d_dk, nkv * esize);
            poison(d_dv, nkv * esize);
        }
        void *d_out = track(dev_bytes(nq * esize));
        float *d_lse = track(dev_bytes(nrow * sizeof(float))), *d_dsum = track(dev_bytes(nrow * sizeof(float)));
        const PhiloxKey *d_key = dev_key(seed, stream);
        if (bf) {
            launch_ok(attention_fused_forward_cuda_bf16(d_out, d_lse, d_q, d_k, d_v, d_mask, B, T, H, hs, rows, p,
                                                        d_key, 0));
            launch_ok(attention_fused_backward_cuda_bf16(d_dq, d_dk, d_dv, add, d_dsum, d_dout, d_out, d_q, d_k,
                                                         d_v, d_lse, d_mask, B, T, H, hs, rows, p, d_key, 0));
        } else {
            launch_ok(attention_fused_forward_cuda(d_out, d_lse, d_q, d_k, d_v, d_mask, B, T, H, hs, rows, p, d_key, 0));
            launch_ok(attention_fused_backward_cuda(d_dq, d_dk, d_dv, add, d_dsum, d_dout, d_out, d_q, d_k, d_v,
                                                    d_lse, d_mask, B, T, H, hs, rows, p, d_key, 0));
        }
        r[0].out[o] = download(d_out, nq, bf);
        r[1].out[o] = download(d_dq, nq, bf);
        r[2].out[o] = download(d_dk, nkv, bf);
        r[3].out[o] = download(d_dv, nkv, bf);
        r[4].out[o] = download(d_lse, nrow, 0);
        free_tracked();
    }
    check_orders("attention out", r[0].out, nq, shape);
    check_orders("attention dq", r[1].out, nq, shape);
    check_orders("attention dk", r[2].out, nkv, shape);
    check_orders("attention dv", r[3].out, nkv, shape);
    check_orders("attention lse", r[4].out, nrow, shape);
    if (bf) {
        double *eq = malloc(nq * sizeof *eq), *ek = malloc(nkv * sizeof *ek);
        double *eo = calloc(nq, sizeof *eo), *ev = calloc(nkv, sizeof *ev);
        bool tc = attention_fused_tensor_cores(hs, rows, T);
        d_rounding_bounds(eq, ek, att, dout, out, q, k, B, T, H, hs, rows);
        if (tc) tensor_core_bounds(eo, eq, ek, ev, att, p > 0 ? attd : att, q, k, v, dout, out, B, T, H, hs);
        check_close_plus("attention out", r[0].out[0], out, eo, nq, RTOL_BF16, shape);
        check_close_plus("attention dq", r[1].out[0], dq, eq, nq, RTOL_BF16, shape);
        check_close_plus("attention dk", r[2].out[0], dk, ek, nkv, RTOL_BF16, shape);
        check_close_plus("attention dv", r[3].out[0], dv, ev, nkv, RTOL_BF16, shape);
        free(eq), free(ek), free(eo), free(ev);
        /* the tensor-core kernels' extra roundings leave them no fp32 twin */
        if (!tc) attention_twin(r, q, k, v, dout, dq0, dk0, dv0, mask, B, T, H, hs, rows, p, add, seed, stream, shape);
        const float *refs[4] = {out, dq, dk, dv};
        size_t ns[4] = {nq, nq, nkv, nkv};
        for (int t = 0; t < 4; t++) {
            worst_bf16_err[t] = fmax(worst_bf16_err[t], scaled_err(r[t].out[0], refs[t], ns[t]));
            worst_bf16_peak[t] = fmax(worst_bf16_peak[t], peak_err(r[t].out[0], refs[t], ns[t]));
        }
    } else {
        check_close("attention out", r[0].out[0], out, nq, RTOL, shape);
        check_close("attention dq", r[1].out[0], dq, nq, RTOL, shape);
        check_close("attention dk", r[2].out[0], dk, nkv, RTOL, shape);
        check_close("attention dv", r[3].out[0], dv, nkv, RTOL, shape);
        worst_attention_err = fmax(worst_attention_err, scaled_err(r[0].out[0], out, nq));
        worst_attention_err = fmax(worst_attention_err, scaled_err(r[1].out[0], dq, nq));
        worst_attention_err = fmax(worst_attention_err, scaled_err(r[2].out[0], dk, nkv));
        worst_attention_err = fmax(worst_attention_err, scaled_err(r[3].out[0], dv, nkv));
    }
    runs_free(r, 5);
    free(q), free(k), free(v), free(dout), free(dq0), free(dk0), free(dv0), free(imask), free(mask);
    free(out), free(preatt), free(att), free(attd), free(s1), free(s2), free(dq), free(dk), free(dv);
    cases_checked += 2;
}

static int attention_all(int run)
{
    /* B, T, H, hs, rows (0: T, the full op; 1: the [CLS] row), p, padded: every
     * built head size, T below, at and past the 64-row tiles; each in fp32,
     * then each in bf16. */
    static const struct {
        int B, T, H, hs, rows;
        float p;
        int padded;
    } CASES[] = {{2, 1, 2, 8, 0, 0.0f, 0},   {2, 9, 4, 8, 0, 0.1f, 1},    {2, 65, 3, 16, 0, 0.1f, 1},
                 {1, 64, 2, 32, 0, 0.0f, 0}, {2, 130, 2, 32, 0, 0.2f, 1}, {3, 33, 2, 64, 0, 0.1f, 1},
                 {3, 70, 2, 32, 1, 0.1f, 1}, {2, 9, 4, 8, 1, 0.0f, 1},    {2, 129, 1, 64, 1, 0.5f, 1}};
    int cases = 0;
    for (int bf = 0; bf < 2; bf++)
        for (size_t i = 0; i < sizeof CASES / sizeof *CASES; i++) {
            if (run)
                attention_case(CASES[i].B, CASES[i].T, CASES[i].H, CASES[i].hs, CASES[i].rows ? 1 : CASES[i].T,
                               CASES[i].p, CASES[i].padded, i % 2 == 0, bf);
            cases += 2;
        }
    if (run) {
        printf("kernels: fused attention: largest error %.3g of the 1e-5 bound %s\n", worst_attention_err, WHERE);
        printf("kernels: fused attention bf16: largest error out %.3g, dq %.3g, dk %.3g, dv %.3g (of the 2^-8 +"
               " 1e-5 bound; dq and dk with out's rounding added, the tensor-core shapes with their bf16 P, Z P and"
               " dS roundings added; at most %.2f of it); of max|ref|: %.3g, %.3g,"
               " %.3g, %.3g %s\n",
               worst_bf16_err[0], worst_bf16_err[1], worst_bf16_err[2], worst_bf16_err[3], worst_bf16_use,
               worst_bf16_peak[0], worst_bf16_peak[1], worst_bf16_peak[2], worst_bf16_peak[3], WHERE);
        fflush(stdout);
    }
    return cases;
}

/* ---- the tests ------------------------------------------------------------ */

/* Kernel cases per test: each shape's forward and backward launcher (and,
 * for softmax, the forward once more with a mask). */
static const struct {
    const char *test;
    int (*all)(int run);
} STEP_TESTS[] = {{"embedding", embedding_all}, {"dropout", dropout_all},
                  {"elementwise", elementwise_all}, {"loss", loss_all},
                  {"adamw", adamw_all}, {"grad_norm", norm_all}, {"attention", attention_all},
                  {"layernorm_wide", layernorm_wide_all}};
#define NSTEP (int)(sizeof STEP_TESTS / sizeof STEP_TESTS[0])

static int planned_cases(const char *test)
{
    for (int i = 0; i < NSTEP; i++)
        if (strcmp(test, STEP_TESTS[i].test) == 0) return STEP_TESTS[i].all(0);
    bool three = strncmp(test, "softmax", 7) == 0 || strncmp(test, "layernorm_residual", 18) == 0;
    return n_shapes() * (three ? 3 : 2);
}

/* The cases the case functions checked (cases_checked) must be the plan's:
 * each launcher of each case the loops list. */
static void expect_planned(const char *test, int cases)
{
    cr_assert_eq(cases, planned_cases(test), "%s: %d kernel cases checked, %d planned", test, cases,
                 planned_cases(test));
    printf("kernels: %s: %d kernel cases passed %s\n", test, cases, WHERE);
    fflush(stdout);
}

static void run_step_test(int i)
{
    cases_checked = 0;
    STEP_TESTS[i].all(1);
    expect_planned(STEP_TESTS[i].test, cases_checked);
}

/* The shape tests also run every shape of the table, which holds the 24
 * shapes of the header comment and the README (21 when quick). */
static void expect_planned_shapes(const char *test, int cases)
{
    cr_assert_eq(n_shapes(), quick_shapes() ? 21 : 24, "the shape table no longer has the documented count");
    expect_planned(test, cases);
}
static void run_all(const char *test, void (*one)(int, int, int), int bf)
{
    cases_checked = 0;
    for (int r = 0; r < NROWS; r++)
        for (int w = 0; w < NWIDTHS; w++)
            if (shape_used(ROWS[r], WIDTHS[w])) one(ROWS[r], WIDTHS[w], bf);
    expect_planned_shapes(test, cases_checked);
}

static void softmax_both(int rows, int cols, int bf)
{
    softmax_case(rows, cols, bf, 0);
    softmax_case(rows, cols, bf, 1);
}

static void run_softmax(const char *test, int bf)
{
    cases_checked = 0;
    for (int r = 0; r < NROWS; r++)
        for (int w = 0; w < NWIDTHS; w++)
            if (shape_used(ROWS[r], WIDTHS[w])) softmax_both(ROWS[r], WIDTHS[w], bf);
    expect_planned_shapes(test, cases_checked);
}

Test(kernels, layernorm_fp32, .timeout = 600) { run_all("layernorm_fp32", layernorm_case, 0); }
Test(kernels, layernorm_bf16, .timeout = 600) { run_all("layernorm_bf16", layernorm_case, 1); }
Test(kernels, layernorm_residual_fp32, .timeout = 600)
{
    run_all("layernorm_residual_fp32", layernorm_residual_case, 0);
}
Test(kernels, layernorm_residual_bf16, .timeout = 600)
{
    run_all("layernorm_residual_bf16", layernorm_residual_case, 1);
}
Test(kernels, gelu_fp32, .timeout = 600) { run_all("gelu_fp32", gelu_case, 0); }
Test(kernels, gelu_bf16, .timeout = 600) { run_all("gelu_bf16", gelu_case, 1); }
Test(kernels, softmax_fp32, .timeout = 600) { run_softmax("softmax_fp32", 0); }
Test(kernels, softmax_bf16, .timeout = 600) { run_softmax("softmax_bf16", 1); }
Test(kernels, embedding, .timeout = 600) { run_step_test(0); }
Test(kernels, dropout, .timeout = 600) { run_step_test(1); }
Test(kernels, elementwise, .timeout = 600) { run_step_test(2); }
Test(kernels, loss, .timeout = 600) { run_step_test(3); }
Test(kernels, adamw, .timeout = 600) { run_step_test(4); }
Test(kernels, grad_norm, .timeout = 600) { run_step_test(5); }
Test(kernels, attention, .timeout = 600) { run_step_test(6); }
Test(kernels, layernorm_wide, .timeout = 600) { run_step_test(7); }

/* The total, counted only over tests that passed. */
ReportHook(POST_ALL)(struct criterion_global_stats *stats)
{
    int total = 0;
    for (struct criterion_suite_stats *s = stats->suites; s; s = s->next)
        for (struct criterion_test_stats *t = s->tests; t; t = t->next)
            if (strcmp(t->test->category, "kernels") == 0 && t->test_status == CR_STATUS_PASSED)
                total += planned_cases(t->test->name);
    printf("kernels: %d kernel cases ran %s%s\n", total, WHERE,
           ORDERS == 2 ? ", each in forward and reverse thread order" : "");
    fflush(stdout);
}
