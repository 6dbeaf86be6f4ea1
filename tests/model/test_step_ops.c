/* The small CPU ops the orchestration (models/distilbert.c) calls where it
 * used to loop inline, each the CPU side of a CUDA kernel (kernels/
 * elementwise.cu, dropout.cu): their contracts on small cases. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "src/ops/dropout.h"
#include "src/ops/linear.h"
#include "src/ops/residual.h"
#include "src/ops/rows.h"
#include "src/ops/softmax.h"

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
