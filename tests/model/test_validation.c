/* Loading checks what it loads: a model whose head disagrees with its
 * labels, damaged (non-finite) weights and impossible configurations are
 * errors naming the file, never a model that predicts garbage. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "models/backend.h"
#include "models/checkpoint.h"
#include "models/classifier.h"
#include "src/core/err.h"
#include "tests/testutil.h"

#define TINY "tests/fixtures/tiny_distilbert"

static char dir[64];

static void setup(void)
{
    snprintf(dir, sizeof dir, "/tmp/genre-valid-%d", (int)getpid());
}

static void cleanup(void)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
}

/* A classifier directory from TINY's weights (5 labels), with `edit`
 * applied to the weights before saving. */
static void write_classifier(void (*edit)(ModelWeights *))
{
    ModelWeights w;
    cr_assert_eq(checkpoint_load(&w, TINY, 0, 0), 0, "%s", err_msg());
    if (edit) edit(&w);
    char *names[] = {"A", "B", "C", "D", "E"};
    LabelSet labels = {.n_labels = 5, .names = names};
    char vocab[128];
    snprintf(vocab, sizeof vocab, "%s.vocab", dir);
    FILE *f = fopen(vocab, "w");
    fputs("[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nw\n", f);
    fclose(f);
    cr_assert_eq(classifier_save(&w, &labels, vocab, 0.5f, NULL, dir), 0, "%s", err_msg());
    unlink(vocab);
    weights_free(&w);
}

/* Replaces the first `from` in dir/config.json by `to`. */
static void edit_config(const char *from, const char *to)
{
    char path[128];
    snprintf(path, sizeof path, "%s/config.json", dir);
    char *text = slurp(path), *at = strstr(text, from);
    cr_assert(at, "%s not in config", from);
    FILE *f = fopen(path, "w");
    fprintf(f, "%.*s%s%s", (int)(at - text), text, to, at + strlen(from));
    fclose(f);
    free(text);
}

TestSuite(validation, .init = setup, .fini = cleanup);

Test(validation, a_head_that_disagrees_with_the_labels_is_refused)
{
    write_classifier(NULL);
    edit_config("\"4\": \"E\"", "\"4\": \"E\", \"5\": \"F\"");
    Classifier c;
    cr_assert_eq(classifier_open(&c, dir), -1, "a 5-row head opened for 6 genres");
    cr_expect(strstr(err_msg(), "model.safetensors: classifier.weight has 5 rows but 6 genres were expected"),
              "%s", err_msg());
}

static void poison(ModelWeights *w) { weights_tensor(w, P_FF1_W, 1)[7] = NAN; }

Test(validation, non_finite_weights_are_refused_naming_the_tensor)
{
    write_classifier(poison);
    Classifier c;
    cr_assert_eq(classifier_open(&c, dir), -1);
    cr_expect(strstr(err_msg(), "model.safetensors: tensor distilbert.transformer.layer.1.ffn.lin1.weight holds NaN "
                                "at element 7"), "%s", err_msg());
}

/* Finite weights whose logits overflow: scores would silently be 0 or 1. */
static void overflow(ModelWeights *w)
{
    float *b = weights_tensor(w, P_CLS_B, 0), *cw = weights_tensor(w, P_CLS_W, 0);
    b[2] = 3e38f;
    for (int i = 0; i < w->lay.cfg.dim; i++) cw[2 * w->lay.cfg.dim + i] = 3e38f;
}

Test(validation, a_non_finite_output_is_an_error)
{
    write_classifier(overflow);
    Classifier c;
    cr_assert_eq(classifier_open(&c, dir), 0, "%s", err_msg());
    Backend *be = backend_open("cpu", &c.weights);
    cr_assert(be, "%s", err_msg());
    int32_t tok[6] = {2, 5, 3, 2, 5, 3};
    int len[2] = {3, 3};
    uint8_t y[10] = {0};
    Encoded e = {.n = 2, .max_len = 3, .n_labels = 5, .tokens = tok, .lengths = len, .y = y, .pad_id = 0};
    float scores[10];
    cr_expect_eq(classifier_scores(be, &e, 2, scores), -1);
    cr_expect(strstr(err_msg(), "the model's output for label 2 is "), "%s", err_msg());
    backend_close(be);
    classifier_close(&c);
}

Test(validation, impossible_configs_are_refused)
{
    write_classifier(NULL);
    edit_config("\"dropout\": 0.0", "\"dropout\": 1.5");
    ModelWeights w;
    cr_assert_eq(checkpoint_load(&w, dir, 0, 0), -1);
    cr_expect(strstr(err_msg(), "config.json: model config: dropout 1.5 must be in [0, 1)"), "%s", err_msg());

    /* BERT configs carry their own LayerNorm eps. */
    FILE *f = fopen("/tmp/genre-valid-bert.json", "w");
    fputs("{\"model_type\": \"bert\", \"hidden_act\": \"gelu\", \"hidden_size\": 32, \"num_hidden_layers\": 2,"
          " \"num_attention_heads\": 2, \"intermediate_size\": 37, \"vocab_size\": 100,"
          " \"max_position_embeddings\": 16, \"layer_norm_eps\": -1e-12}\n", f);
    fclose(f);
    char cmd[256];
    snprintf(cmd, sizeof cmd, "mv /tmp/genre-valid-bert.json %s/config.json", dir);
    cr_assert_eq(system(cmd), 0);
    cr_assert_eq(checkpoint_load(&w, dir, 0, 0), -1);
    cr_expect(strstr(err_msg(), "config.json: model config: layer_norm_eps -1e-12 must be in (0, 1)"), "%s",
              err_msg());
}

/* Per-genre thresholds go to config.json and come back genre by genre;
 * saving one threshold again removes them. */
Test(validation, per_genre_thresholds_round_trip)
{
    write_classifier(NULL);
    char *names[] = {"A", "B", "C", "D", "E"};
    LabelSet labels = {.n_labels = 5, .names = names};
    const float per[] = {0.1f, 0.25f, 0.5f, 0.75f, 0.9f};
    cr_assert_eq(classifier_set_thresholds(dir, &labels, 0.35f, per), 0, "%s", err_msg());
    Classifier c;
    cr_assert_eq(classifier_open(&c, dir), 0, "%s", err_msg());
    cr_expect(c.per_genre);
    cr_expect_eq(c.threshold, 0.35f);
    for (int k = 0; k < 5; k++) cr_expect_eq(c.thresholds[k], per[k], "%s: %g", names[k], c.thresholds[k]);
    classifier_close(&c);
    cr_assert_eq(classifier_set_thresholds(dir, &labels, 0.4f, NULL), 0, "%s", err_msg());
    cr_assert_eq(classifier_open(&c, dir), 0, "%s", err_msg());
    cr_expect(!c.per_genre);
    for (int k = 0; k < 5; k++) cr_expect_eq(c.thresholds[k], 0.4f, "%s: %g", names[k], c.thresholds[k]);
    classifier_close(&c);
}

/* Each bad genre_thresholds is one line naming config.json and the entry. */
Test(validation, bad_per_genre_thresholds_are_refused_naming_the_entry)
{
    static const struct { const char *value, *message; } bad[] = {
        {"[0.5]", "config.json: genre_thresholds must be an object {genre: threshold}"},
        {"{\"A\": 0.1, \"B\": 0.2, \"C\": 0.3, \"D\": 0.4, \"E\": 0.5, \"F\": 0.6}",
         "config.json: genre_thresholds: \"F\" is not one of the model's genres"},
        {"{\"A\": 0.1, \"B\": 0.2, \"C\": 0.3, \"D\": 0.4}", "config.json: genre_thresholds: no threshold for \"E\""},
        {"{\"A\": 0.1, \"B\": 1.5, \"C\": 0.3, \"D\": 0.4, \"E\": 0.5}",
         "config.json: genre_thresholds: \"B\" must be a number in (0, 1)"},
        {"{\"A\": 0.1, \"B\": 0.2, \"C\": \"x\", \"D\": 0.4, \"E\": 0.5}",
         "config.json: genre_thresholds: \"C\" must be a number in (0, 1)"},
        {"{\"A\": 0, \"B\": 0.2, \"C\": 0.3, \"D\": 0.4, \"E\": 0.5}",
         "config.json: genre_thresholds: \"A\" must be a number in (0, 1)"},
    };
    for (size_t k = 0; k < sizeof bad / sizeof *bad; k++) {
        write_classifier(NULL);
        char with[512];
        snprintf(with, sizeof with, "\"genre_thresholds\": %s, \"genre_threshold\"", bad[k].value);
        edit_config("\"genre_threshold\"", with);
        Classifier c;
        cr_expect_eq(classifier_open(&c, dir), -1, "%s opened", bad[k].value);
        cr_expect(strstr(err_msg(), bad[k].message) && !strchr(err_msg(), '\n'), "%s: %s", bad[k].value, err_msg());
        char path[128];
        snprintf(path, sizeof path, "%s/config.json", dir);
        cr_expect(strncmp(err_msg(), path, strlen(path)) == 0, "not naming the file: %s", err_msg());
    }
}
