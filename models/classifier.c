#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <jansson.h>

#include "src/core/atomic.h"
#include "models/checkpoint.h"
#include "models/classifier.h"
#include "src/core/err.h"
#include "src/core/jsonfile.h"
#include "src/core/outdir.h"

/* dir/config.json parsed (its path left in path), or NULL with err_set. */
static json_t *load_config(const char *dir, char *path, size_t size)
{
    snprintf(path, size, "%s/config.json", dir);
    return json_read_file(path, 0);
}

/* c->dir/config.json's genre_threshold into c->threshold (left alone when
 * absent), and every genre's threshold into c->thresholds: genre_thresholds'
 * when present (c->per_genre), else that one. */
static int read_thresholds(Classifier *c)
{
    char path[4200];
    json_t *cfg = load_config(c->dir, path, sizeof path);
    if (!cfg) return -1;
    json_t *v = json_object_get(cfg, "genre_threshold"), *per = json_object_get(cfg, "genre_thresholds");
    int rc = 0, L = c->labels.n_labels;
    if (v && !(json_is_number(v) && json_number_value(v) > 0 && json_number_value(v) < 1))
        rc = err_set("%s: genre_threshold must be a number in (0, 1)", path);
    else if (v)
        c->threshold = (float)json_number_value(v);
    c->thresholds = xmalloc((size_t)L * sizeof *c->thresholds);
    for (int k = 0; k < L; k++) c->thresholds[k] = c->threshold;
    if (rc == 0 && per && !json_is_object(per))
        rc = err_set("%s: genre_thresholds must be an object {genre: threshold}", path);
    const char *name;
    json_t *x;
    if (rc == 0 && per) json_object_foreach(per, name, x) {
        int k = labels_index(&c->labels, name);
        if (k < 0) rc = err_set("%s: genre_thresholds: \"%.200s\" is not one of the model's genres", path, name);
        else if (!(json_is_number(x) && json_number_value(x) > 0 && json_number_value(x) < 1))
            rc = err_set("%s: genre_thresholds: \"%.200s\" must be a number in (0, 1)", path, name);
        else c->thresholds[k] = (float)json_number_value(x);
        if (rc != 0) break;
    }
    for (int k = 0; rc == 0 && per && k < L; k++)
        if (!json_object_get(per, c->labels.names[k]))
            rc = err_set("%s: genre_thresholds: no threshold for \"%.200s\"", path, c->labels.names[k]);
    c->per_genre = per != NULL;
    json_decref(cfg);
    return rc;
}

int classifier_dir(const char *dir, char *out, size_t size)
{
    struct stat st;
    if (stat(dir, &st) != 0) return err_set("%s: cannot open: %s", dir, strerror(errno));
    char best[4200], kind[64];
    snprintf(best, sizeof best, "%s/best", dir);
    if (stat(best, &st) == 0 && S_ISDIR(st.st_mode)) {
        snprintf(out, size, "%s", best);
        return 0;
    }
    outdir_kind(dir, kind, sizeof kind);
    if (!strcmp(kind, "train"))
        return err_set("%s: a training run without best/ (it is saved at the run's first validation)", dir);
    snprintf(out, size, "%s", dir);
    return 0;
}

int classifier_open(Classifier *c, const char *dir)
{
    memset(c, 0, sizeof *c);
    if (classifier_dir(dir, c->dir, sizeof c->dir) != 0) return -1;
    int n = 0;
    char **names = checkpoint_labels(c->dir, &n);
    if (!names) return -1;
    c->labels.n_labels = n;
    c->labels.names = names;
    c->threshold = 0.5f;
    if (read_thresholds(c) != 0) {
        free(c->thresholds);
        labels_free(&c->labels);
        return -1;
    }
    if (checkpoint_load_head(&c->weights, c->dir, n) != 0) {
        free(c->thresholds);
        labels_free(&c->labels);
        return -1;
    }
    if (!(c->tok = tokenizer_load(c->dir))) {
        weights_free(&c->weights);
        free(c->thresholds);
        labels_free(&c->labels);
        return -1;
    }
    return 0;
}

void classifier_close(Classifier *c)
{
    tokenizer_free(c->tok);
    weights_free(&c->weights);
    free(c->thresholds);
    labels_free(&c->labels);
}

int classifier_scores(Backend *be, const Encoded *e, int batch_size, float *scores)
{
    return classifier_scores_share(be, e, batch_size, 0, 1, scores);
}

int classifier_scores_share(Backend *be, const Encoded *e, int batch_size, int part, int parts, float *scores)
{
    int L = backend_layout(be)->cfg.num_labels, rc = 0;
    EpochPlan plan;
    Batch b;
    epoch_plan_eval(&plan, e, batch_size);
    batch_alloc(&b, batch_size, e->max_len, e->n_labels);
    float *logits = xmalloc((size_t)batch_size * L * sizeof *logits);
    const ForwardArgs eval = {.cls_only = true}; /* scores read logits only */
    int per = (plan.n_batches + parts - 1) / parts, first = part * per;
    int end = first + per < plan.n_batches ? first + per : plan.n_batches;
    for (int k = first; k < end && rc == 0; k++) {
        batch_fill(&b, e, &plan, k);
        rc = backend_forward(be, b.ids, b.mask, b.B, b.T, &eval);
        if (rc == 0) rc = backend_logits(be, logits);
        for (int r = 0; r < b.B && rc == 0; r++)
            for (int j = 0; j < L && rc == 0; j++) {
                float x = logits[(size_t)r * L + j];
                /* Damaged weights give NaN, which would vanish from predictions. */
                if (!isfinite(x)) rc = err_set("text %d: the model's output for label %d is %s", b.index[r] + 1, j,
                                               isnan(x) ? "NaN" : "Inf");
                else scores[(size_t)b.index[r] * L + j] = 1.0f / (1.0f + expf(-x));
            }
    }
    free(logits);
    batch_free(&b);
    epoch_plan_free(&plan);
    return rc;
}

int classifier_set_thresholds(const char *dir, const LabelSet *labels, float threshold, const float *per_genre)
{
    char path[4200];
    json_t *cfg = load_config(dir, path, sizeof path);
    if (!cfg) return -1;
    json_object_set_new(cfg, "genre_threshold", json_real_of_float(threshold));
    if (per_genre)
        json_object_set_new(cfg, "genre_thresholds",
                            json_floats_by_name((const char *const *)labels->names, per_genre, labels->n_labels));
    else json_object_del(cfg, "genre_thresholds");
    /* 15 digits: the other reals as before, and 0.29 reads as 0.29. */
    int rc = json_write_file(path, cfg, JSON_INDENT(2) | JSON_SORT_KEYS | JSON_REAL_PRECISION(15));
    json_decref(cfg);
    return rc;
}

int classifier_write(const ModelWeights *m, const LabelSet *labels, const char *vocab, float threshold,
                     const float *per_genre, const char *dir)
{
    if (checkpoint_save(m, dir, (const char *const *)labels->names) != 0) return -1;
    if (classifier_set_thresholds(dir, labels, threshold, per_genre) != 0) return -1;
    char to[4200];
    snprintf(to, sizeof to, "%s/vocab.txt", dir);
    return atomic_copy_file(vocab, to);
}

int classifier_save(const ModelWeights *m, const LabelSet *labels, const char *vocab, float threshold,
                    const float *per_genre, const char *dir)
{
    char *tmp = atomic_dir_begin(dir);
    if (!tmp) return -1;
    if (classifier_write(m, labels, vocab, threshold, per_genre, tmp) != 0) {
        atomic_dir_abort(tmp);
        return -1;
    }
    return atomic_dir_commit(tmp, dir);
}
