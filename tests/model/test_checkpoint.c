/* Checkpoints: all-MiniLM-L6-v2 (a BERT checkpoint) against transformers'
 * hidden states, the saver's round trip, and clear errors for damage. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "models/backend.h"
#include "models/checkpoint.h"
#include "src/core/err.h"
#include "src/io/safetensors.h"
#include "tests/testutil.h"

#define TINY "tests/fixtures/tiny_distilbert"

static double max_abs_diff(const float *a, const float *b, size_t n)
{
    double e = 0;
    for (size_t i = 0; i < n; i++) e = fmax(e, fabs((double)a[i] - b[i]));
    return e;
}

Test(checkpoint, minilm_hidden_states_match_transformers)
{
    const char *dir = getenv("GENRE_MINILM");
    char path[4096];
    snprintf(path, sizeof path, "%s/model.safetensors", dir ? dir : "");
    if (!dir) SKIP_SETUP("GENRE_MINILM is not set (tests/run sets it; models/fetch-minilm fetches it)");
    if (access(path, R_OK)) SKIP_SETUP("GENRE_MINILM=%s has no model.safetensors (models/fetch-minilm)", dir);
    StFile ref;
    cr_assert_eq(st_open(&ref, "tests/fixtures/minilm_cls.safetensors"), 0, "%s", err_msg());
    const StTensor *ids = st_find(&ref, "ids"), *mask = st_find(&ref, "mask");
    cr_assert(ids && mask && ids->dtype == ST_I32 && ids->ndim == 2);
    int B = (int)ids->shape[0], T = (int)ids->shape[1];
    int32_t *id = malloc(ids->nbytes), *mk = malloc(mask->nbytes);
    memcpy(id, ids->data, ids->nbytes);
    memcpy(mk, mask->data, mask->nbytes);
    ModelWeights w;
    cr_assert_eq(checkpoint_load(&w, dir, 0, 0), 0, "%s", err_msg());
    int D = w.lay.cfg.dim;
    cr_assert_eq(D, 384);
    Backend *be = backend_open("cpu", &w);
    cr_assert(be, "%s", err_msg());
    weights_free(&w);
    const ForwardArgs eval = {.cls_only = false};
    float *h = malloc((size_t)B * T * D * sizeof(float));
    cr_assert_eq(backend_forward(be, id, mk, B, T, &eval), 0, "%s", err_msg());
    cr_assert_eq(backend_hidden(be, h), 0, "%s", err_msg());
    float *cls = malloc((size_t)B * D * sizeof(float)), *want = malloc((size_t)B * D * sizeof(float));
    for (int b = 0; b < B; b++) memcpy(cls + (size_t)b * D, h + (size_t)b * T * D, D * sizeof(float));
    cr_assert_eq(st_read_f32(&ref, st_find(&ref, "cls"), want, (size_t)B * D), 0);
    double e = max_abs_diff(cls, want, (size_t)B * D);
    cr_log_info("all-MiniLM-L6-v2 [CLS] hidden states: max error %.3g over %d texts", e, B);
    cr_expect_lt(e, 1e-4, "CLS error %g", e);
    free(cls);
    free(want);
    free(id);
    free(mk);
    free(h);
    backend_close(be);
    st_close(&ref);
}

Test(checkpoint, save_then_load_round_trips_exactly)
{
    ModelWeights a, b;
    cr_assert_eq(checkpoint_load(&a, TINY, 0, 0), 0, "%s", err_msg());
    char dir[] = "/tmp/genre-ckpt-XXXXXX";
    cr_assert(mkdtemp(dir));
    const char *labels[] = {"action", "comedy", "drama", "horror", "war"};
    cr_assert_eq(checkpoint_save(&a, dir, labels), 0, "%s", err_msg());
    cr_assert_eq(checkpoint_load(&b, dir, 0, 0), 0, "%s", err_msg());
    int n;
    char **names = checkpoint_labels(dir, &n);
    cr_assert_eq(n, 5);
    for (int i = 0; i < n; i++) {
        cr_expect_str_eq(names[i], labels[i]);
        free(names[i]);
    }
    free(names);
    cr_assert_eq(a.lay.n_params, b.lay.n_params);
    cr_expect_eq(memcmp(a.params, b.params, a.lay.n_params * sizeof(float)), 0);
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    cr_assert_eq(system(cmd), 0);
    weights_free(&a);
    weights_free(&b);
}

/* Writes dir with TINY's weights and a config.json where `from` is replaced. */
static void damaged_copy(const char *dir, const char *from, const char *to)
{
    ModelWeights m;
    cr_assert_eq(checkpoint_load(&m, TINY, 0, 0), 0, "%s", err_msg());
    cr_assert_eq(checkpoint_save(&m, dir, NULL), 0, "%s", err_msg());
    weights_free(&m);
    char path[4200], text[8192];
    snprintf(path, sizeof path, "%s/config.json", dir);
    FILE *f = fopen(path, "r");
    size_t n = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[n] = 0;
    char *at = strstr(text, from);
    cr_assert(at, "%s not in config", from);
    char out[8192];
    snprintf(out, sizeof out, "%.*s%s%s", (int)(at - text), text, to, at + strlen(from));
    f = fopen(path, "w");
    fputs(out, f);
    fclose(f);
}

Test(checkpoint, wrong_shapes_and_configs_are_clear_errors)
{
    char dir[] = "/tmp/genre-ckpt-XXXXXX";
    cr_assert(mkdtemp(dir));
    ModelWeights m;
    damaged_copy(dir, "\"hidden_dim\": 37", "\"hidden_dim\": 38");
    cr_assert_eq(checkpoint_load(&m, dir, 0, 0), -1);
    cr_expect(strstr(err_msg(), "model.safetensors: tensor distilbert.transformer.layer.0.ffn.lin1.weight has shape [37, 32], expected [38, 32]"),
              "%s", err_msg());
    damaged_copy(dir, "\"n_layers\": 2", "\"n_layers\": 3");
    cr_assert_eq(checkpoint_load(&m, dir, 0, 0), -1);
    cr_expect(strstr(err_msg(), "missing tensor distilbert.transformer.layer.2.attention.q_lin.weight"),
              "%s", err_msg());
    damaged_copy(dir, "\"model_type\": \"distilbert\"", "\"model_type\": \"gpt2\"");
    cr_assert_eq(checkpoint_load(&m, dir, 0, 0), -1);
    cr_expect(strstr(err_msg(), "config.json: model_type \"gpt2\" is not supported"), "%s", err_msg());
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    cr_assert_eq(system(cmd), 0);
}

Test(checkpoint, a_new_label_count_gets_a_fresh_head)
{
    ModelWeights m;
    cr_assert_eq(checkpoint_load(&m, TINY, 7, 42), 0, "%s", err_msg());
    cr_assert_eq(m.lay.cfg.num_labels, 7);
    const float *w = weights_tensor(&m, P_CLS_W, 0), *b = weights_tensor(&m, P_CLS_B, 0);
    size_t nw = layout_slot(&m.lay, P_CLS_W, 0)->n, nb = layout_slot(&m.lay, P_CLS_B, 0)->n;
    double sum = 0, sq = 0;
    for (size_t i = 0; i < nw; i++) sum += w[i], sq += (double)w[i] * w[i];
    double sd = sqrt(sq / nw - (sum / nw) * (sum / nw));
    cr_expect(sd > 0.015 && sd < 0.025, "head std %g, want about 0.02", sd);
    for (size_t i = 0; i < nb; i++) cr_expect_eq(b[i], 0.0f);
    weights_free(&m);
}
