/* The small CPU ops the orchestration (models/distilbert.c) calls where it
 * used to loop inline, each the CPU side of a CUDA kernel (kernels/
 * elementwise.cu, dropout.cu, adamw.cu): their contracts on small cases,
 * and the layout's weight-decay table. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "models/distilbert_spec.h"
#include "src/ops/dropout.h"
#include "src/ops/linear.h"
#include "src/ops/residual.h"
#include "src/ops/rows.h"
#include "src/ops/softmax.h"
#include "src/optim/adamw.h"

Test(step_ops, rows_gather_and_scatter_add_pick_every_stride_th_row)
{
    float src[4 * 3 * 2], dst[4 * 2], back[4 * 3 * 2] = {0};
    for (int i = 0; i < 24; i++) src[i] = (float)i;
    rows_gather(dst, src, 4, 2, 3); /* rows 0, 3, 6, 9 of 12 rows of 2 */
    for (int r = 0; r < 4; r++)
        for (int c = 0; c < 2; c++) cr_expect_eq(dst[r * 2 + c], (float)(r * 6 + c));
    rows_scatter_add(back, dst, 4, 2, 3);
    rows_scatter_add(back, dst, 4, 2, 3); /* accumulates */
    for (int i = 0; i < 24; i++) cr_expect_eq(back[i], (i / 2) % 3 == 0 ? 2.0f * i : 0.0f, "[%d]", i);
}

Test(step_ops, residual_add_and_the_additive_mask)
{
    float y[3] = {1, 2, 3}, x[3] = {0.5f, -2, 4}, m[3];
    residual_add(y, x, 3);
    cr_expect(y[0] == 1.5f && y[1] == 0.0f && y[2] == 7.0f);
    int32_t mask[3] = {1, 0, 5};
    softmax_mask_additive(m, mask, 3);
    cr_expect(m[0] == 0.0f && m[1] == SOFTMAX_MASKED && m[2] == 0.0f);
    softmax_mask_additive(m, NULL, 3);
    cr_expect(m[0] == 0.0f && m[1] == 0.0f && m[2] == 0.0f);
}

/* Rows of a larger tensor get that tensor's masks: the [CLS] rows of a
 * B x T x C dropout are its rows b * T. */
Test(step_ops, dropout_rows_are_the_whole_tensors_rows)
{
    enum { B = 3, T = 5, C = 13 };
    float x[B * T * C], full[B * T * C], rows[B * C], d[B * C] = {0}, xr[B * C];
    for (int i = 0; i < B * T * C; i++) x[i] = 1.0f + i;
    dropout_forward(full, x, B * T * C, 0.5f, 42, 7);
    for (int b = 0; b < B; b++) memcpy(xr + b * C, x + b * T * C, sizeof(float) * C);
    dropout_forward_rows(rows, xr, B, C, 0, T * C, 0.5f, 42, 7);
    dropout_backward_rows(d, xr, B, C, 0, T * C, 0.5f, 42, 7);
    for (int b = 0; b < B; b++)
        for (int c = 0; c < C; c++) {
            cr_expect_eq(rows[b * C + c], full[b * T * C + c], "row %d col %d", b, c);
            cr_expect_eq(d[b * C + c], full[b * T * C + c], "row %d col %d (backward)", b, c);
        }
}

Test(step_ops, linear_bias_halves)
{
    float out[2 * 3] = {0}, b[3] = {1, 2, 3}, db[3] = {1, 1, 1};
    float dy[2 * 3] = {0.5f, 1, 2, 4, 8, 16};
    linear_bias_forward(out, b, 2, 3);
    for (int i = 0; i < 6; i++) cr_expect_eq(out[i], b[i % 3]);
    linear_bias_backward(db, dy, 2, 3);
    cr_expect(db[0] == 5.5f && db[1] == 10.0f && db[2] == 19.0f);
}

/* The table covers every parameter in order, each with its tensor's decay,
 * in at most P_COUNT segments; stepping by it equals stepping tensor by
 * tensor. */
Test(step_ops, decay_segments_cover_the_layout_with_each_tensors_decay)
{
    DistilBertConfig cfg = {.dim = 8, .n_layers = 3, .n_heads = 2, .hidden_dim = 16,
                            .vocab_size = 11, .max_position_embeddings = 6, .num_labels = 3,
                            .layer_norm_eps = 1e-12f};
    ModelLayout lay;
    cr_assert_eq(layout_init(&lay, &cfg), 0);
    AdamWSegment seg[P_COUNT];
    int n = layout_decay_segments(&lay, seg);
    cr_assert(n > 1 && n <= P_COUNT);
    size_t end = 0;
    for (int i = 0; i < n; i++) {
        cr_expect_eq(seg[i].off, end, "segment %d starts at %zu", i, seg[i].off);
        cr_expect(i == 0 || seg[i].decay != seg[i - 1].decay, "segments %d and %d could merge", i - 1, i);
        end = seg[i].off + seg[i].n;
    }
    cr_expect_eq(end, lay.n_params);
    for (int id = 0; id < P_COUNT; id++)
        for (int l = 0; l < layout_copies(&lay, id); l++) {
            const ParamSlot *s = layout_slot(&lay, id, l);
            int k = 0;
            while (k + 1 < n && seg[k + 1].off <= s->off) k++;
            cr_expect(s->off + s->n <= seg[k].off + seg[k].n, "%s splits", distilbert_params[id].name);
            cr_expect_eq(seg[k].decay, (int)distilbert_params[id].decay, "%s", distilbert_params[id].name);
        }
    size_t N = lay.n_params;
    float *p = malloc(N * 4), *g = malloc(N * 4), *m = calloc(N, 4), *v = calloc(N, 4);
    float *p2 = malloc(N * 4), *m2 = calloc(N, 4), *v2 = calloc(N, 4);
    for (size_t i = 0; i < N; i++) p[i] = p2[i] = sinf((float)i), g[i] = cosf((float)i) * 1e-2f;
    AdamW opt = {1e-3f, 0.9f, 0.999f, 1e-8f, 0.1f};
    adamw_update_segments(&opt, p, g, m, v, seg, n, 1, 1e-3f);
    for (int id = 0; id < P_COUNT; id++)
        for (int l = 0; l < layout_copies(&lay, id); l++) {
            const ParamSlot *s = layout_slot(&lay, id, l);
            adamw_update(&opt, p2 + s->off, g + s->off, m2 + s->off, v2 + s->off, s->n, 1, 1e-3f,
                         distilbert_params[id].decay);
        }
    cr_expect(memcmp(p, p2, N * 4) == 0 && memcmp(m, m2, N * 4) == 0 && memcmp(v, v2, N * 4) == 0);
    free(p), free(g), free(m), free(v), free(p2), free(m2), free(v2);
    layout_free(&lay);
}
