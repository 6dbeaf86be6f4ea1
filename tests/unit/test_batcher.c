#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "src/data/batcher.h"

/* A hand-built Encoded set: movie i has length 2 + i % 37, label 0 for all,
 * label 1 (rare) for every tenth movie. */
static Encoded make_set(int n, uint8_t **y_out)
{
    Encoded e = {.n = n, .max_len = 40, .n_labels = 2, .pad_id = 0};
    uint8_t *y = calloc((size_t)n * 2, 1);
    e.tokens = calloc((size_t)n * 40, sizeof *e.tokens);
    e.lengths = malloc((size_t)n * sizeof *e.lengths);
    for (int i = 0; i < n; i++) {
        e.lengths[i] = 2 + i % 37;
        for (int t = 0; t < e.lengths[i]; t++) e.tokens[(size_t)i * 40 + t] = 1000 + i;
        y[i * 2] = 1;
        y[i * 2 + 1] = i % 10 == 0;
    }
    e.y = y;
    *y_out = y;
    return e;
}

Test(batcher, every_movie_once_and_reproducible)
{
    uint8_t *y;
    Encoded e = make_set(1001, &y);
    EpochPlan a, b, c;
    epoch_plan_train(&a, &e, 16, 42, 0, 8, NULL);
    epoch_plan_train(&b, &e, 16, 42, 0, 8, NULL);
    epoch_plan_train(&c, &e, 16, 42, 1, 8, NULL);
    cr_assert_eq(a.n_batches, 63);
    cr_expect_eq(a.batch_start[a.n_batches], 1001);
    int *seen = calloc(1001, sizeof *seen);
    for (int k = 0; k < a.n_items; k++) seen[a.items[k]]++;
    for (int i = 0; i < 1001; i++) cr_expect_eq(seen[i], 1, "movie %d seen %d times", i, seen[i]);
    cr_expect_eq(memcmp(a.items, b.items, 1001 * sizeof(int)), 0, "same seed and epoch");
    cr_expect_neq(memcmp(a.items, c.items, 1001 * sizeof(int)), 0, "another epoch");
    free(seen);
    epoch_plan_free(&a);
    epoch_plan_free(&b);
    epoch_plan_free(&c);
    encoded_free(&e);
    free(y);
}

static double mean_padding(const Encoded *e, const EpochPlan *p)
{
    long pad = 0;
    for (int k = 0; k < p->n_batches; k++) {
        int mx = 0;
        for (int j = p->batch_start[k]; j < p->batch_start[k + 1]; j++)
            mx = e->lengths[p->items[j]] > mx ? e->lengths[p->items[j]] : mx;
        for (int j = p->batch_start[k]; j < p->batch_start[k + 1]; j++) pad += mx - e->lengths[p->items[j]];
    }
    return (double)pad / p->n_items;
}

Test(batcher, length_windows_cut_padding)
{
    uint8_t *y;
    Encoded e = make_set(2000, &y);
    EpochPlan plain, sorted;
    epoch_plan_train(&plain, &e, 16, 7, 0, 1, NULL);
    epoch_plan_train(&sorted, &e, 16, 7, 0, 50, NULL);
    double a = mean_padding(&e, &plain), b = mean_padding(&e, &sorted);
    cr_expect(b < a / 4, "padding per movie: shuffled %.2f, windowed %.2f", a, b);
    epoch_plan_free(&plain);
    epoch_plan_free(&sorted);
    encoded_free(&e);
    free(y);
}

Test(batcher, oversampling_favours_rare_labels)
{
    uint8_t *y;
    Encoded e = make_set(2000, &y);
    double *w = malloc(2000 * sizeof *w);
    oversample_weights(w, &e, 1.0);
    cr_expect_float_eq(w[0], 10.0, 1e-12, "rare-label movie weighs most/count");
    cr_expect_float_eq(w[1], 1.0, 1e-12);
    EpochPlan p;
    epoch_plan_train(&p, &e, 16, 3, 0, 1, w);
    int rare = 0;
    for (int k = 0; k < p.n_items; k++) rare += p.items[k] % 10 == 0;
    /* Weight share of rare movies: 200*10 / (200*10 + 1800) = 0.53. */
    cr_expect(rare > 900 && rare < 1200, "rare draws %d of 2000", rare);
    epoch_plan_free(&p);
    free(w);
    encoded_free(&e);
    free(y);
}

Test(batcher, fill_pads_to_longest_in_batch)
{
    uint8_t *y;
    Encoded e = make_set(50, &y);
    EpochPlan p;
    epoch_plan_eval(&p, &e, 4);
    Batch b;
    batch_alloc(&b, 4, e.max_len, e.n_labels);
    batch_fill(&b, &e, &p, 0);
    cr_assert_eq(b.B, 4);
    /* Sorted by length: the four shortest are movies 0, 37 (length 2), 1, 38 (3). */
    cr_expect_eq(b.T, 3);
    cr_expect_eq(b.index[0], 0);
    cr_expect_eq(b.index[1], 37);
    batch_fill(&b, &e, &p, p.n_batches - 1);
    cr_expect_eq(b.B, 2, "the last batch holds the remainder");
    int i0 = b.index[0], i1 = b.index[1];
    cr_expect_eq(b.T, e.lengths[i0] > e.lengths[i1] ? e.lengths[i0] : e.lengths[i1]);
    for (int r = 0; r < b.B; r++)
        for (int t = 0; t < b.T; t++) {
            int in = t < e.lengths[b.index[r]];
            cr_expect_eq(b.mask[r * b.T + t], in);
            cr_expect_eq(b.ids[r * b.T + t], in ? 1000 + b.index[r] : 0);
        }
    cr_expect_float_eq(b.labels[1], b.index[0] % 10 == 0 ? 1.0f : 0.0f, 0);
    batch_free(&b);
    epoch_plan_free(&p);
    encoded_free(&e);
    free(y);
}
