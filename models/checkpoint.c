#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "src/core/atomic.h"
#include "models/checkpoint.h"
#include "src/core/err.h"
#include "src/core/jsonfile.h"
#include "src/io/safetensors.h"

typedef enum { ARCH_DISTILBERT, ARCH_BERT } Arch;

static int json_int(json_t *cfg, const char *path, const char *key, int *out)
{
    json_t *v = json_object_get(cfg, key);
    if (!json_is_integer(v)) return err_set("%s: \"%s\" missing or not an integer", path, key);
    *out = (int)json_integer_value(v);
    return 0;
}

/* A float setting, or its default when absent. */
static float json_float(json_t *cfg, const char *key, float def)
{
    json_t *v = json_object_get(cfg, key);
    return json_is_number(v) ? (float)json_number_value(v) : def;
}

static int read_config(const char *dir, DistilBertConfig *c, Arch *arch, int *labels)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/config.json", dir);
    json_t *cfg = json_read_file(path, 0);
    if (!cfg) return -1;
    int rc = -1;
    const char *type = json_string_value(json_object_get(cfg, "model_type"));
    memset(c, 0, sizeof *c);
    c->initializer_range = json_float(cfg, "initializer_range", 0.02f);
    c->seq_classif_dropout = json_float(cfg, "seq_classif_dropout", 0.2f);
    json_t *id2label = json_object_get(cfg, "id2label");
    *labels = json_is_object(id2label) ? (int)json_object_size(id2label) : 0;
    if (type && !strcmp(type, "distilbert")) {
        *arch = ARCH_DISTILBERT;
        const char *act = json_string_value(json_object_get(cfg, "activation"));
        if (act && strcmp(act, "gelu")) {
            err_set("%s: activation \"%s\" is not supported (only gelu)", path, act);
            goto out;
        }
        if (json_is_true(json_object_get(cfg, "sinusoidal_pos_embds"))) {
            err_set("%s: sinusoidal_pos_embds is not supported", path);
            goto out;
        }
        if (json_int(cfg, path, "dim", &c->dim) || json_int(cfg, path, "n_layers", &c->n_layers) ||
            json_int(cfg, path, "n_heads", &c->n_heads) ||
            json_int(cfg, path, "hidden_dim", &c->hidden_dim) ||
            json_int(cfg, path, "vocab_size", &c->vocab_size) ||
            json_int(cfg, path, "max_position_embeddings", &c->max_position_embeddings))
            goto out;
        c->layer_norm_eps = 1e-12f;
        c->dropout = json_float(cfg, "dropout", 0.1f);
        c->attention_dropout = json_float(cfg, "attention_dropout", 0.1f);
    } else if (type && !strcmp(type, "bert")) {
        *arch = ARCH_BERT;
        const char *act = json_string_value(json_object_get(cfg, "hidden_act"));
        if (!act || strcmp(act, "gelu")) {
            err_set("%s: hidden_act \"%s\" is not supported (only gelu)", path, act ? act : "");
            goto out;
        }
        const char *pos = json_string_value(json_object_get(cfg, "position_embedding_type"));
        if (pos && strcmp(pos, "absolute")) {
            err_set("%s: position_embedding_type \"%s\" is not supported", path, pos);
            goto out;
        }
        if (json_int(cfg, path, "hidden_size", &c->dim) ||
            json_int(cfg, path, "num_hidden_layers", &c->n_layers) ||
            json_int(cfg, path, "num_attention_heads", &c->n_heads) ||
            json_int(cfg, path, "intermediate_size", &c->hidden_dim) ||
            json_int(cfg, path, "vocab_size", &c->vocab_size) ||
            json_int(cfg, path, "max_position_embeddings", &c->max_position_embeddings))
            goto out;
        c->layer_norm_eps = json_float(cfg, "layer_norm_eps", 1e-12f);
        c->dropout = json_float(cfg, "hidden_dropout_prob", 0.1f);
        c->attention_dropout = json_float(cfg, "attention_probs_dropout_prob", 0.1f);
    } else {
        err_set("%s: model_type \"%s\" is not supported (distilbert or bert)", path,
                type ? type : "");
        goto out;
    }
    rc = 0;
out:
    json_decref(cfg);
    return rc;
}

/* The tensor under `name`, or under `prefix` + name. */
static const StTensor *find(const StFile *f, const char *prefix, const char *name)
{
    const StTensor *t = st_find(f, name);
    if (t) return t;
    char full[512];
    snprintf(full, sizeof full, "%s%s", prefix, name);
    return st_find(f, full);
}

static int load_tensor(const StFile *f, const StTensor *t, const ParamSlot *v, float *dst)
{
    int ok = t->ndim >= 1 && t->ndim <= 2 && t->shape[0] == v->shape[0] &&
             (t->ndim == 2 ? t->shape[1] == v->shape[1] : v->shape[1] == 1);
    if (!ok) {
        if (v->shape[1] == 1)
            return err_set("%s: tensor %s has %d dims (first %lld), expected [%lld]", f->path,
                           t->name, t->ndim, t->ndim ? (long long)t->shape[0] : 0LL,
                           (long long)v->shape[0]);
        return err_set("%s: tensor %s has shape [%lld, %lld], expected [%lld, %lld]", f->path,
                       t->name, (long long)t->shape[0],
                       t->ndim > 1 ? (long long)t->shape[1] : -1LL, (long long)v->shape[0],
                       (long long)v->shape[1]);
    }
    return st_read_f32(f, t, dst, v->n);
}

static bool is_head(ParamId id) { return id >= P_PRE_W; }

/* The label count of the checkpoint's head, 0 when it has none. */
static int head_labels(const StFile *f)
{
    const StTensor *t = st_find(f, "classifier.weight");
    return t && t->ndim == 2 ? (int)t->shape[0] : 0;
}

/* The first non-finite parameter, as an error naming its tensor. */
static int check_finite(const ModelWeights *m, const char *path)
{
    for (int id = 0; id < P_COUNT; id++)
        for (int l = 0; l < layout_copies(&m->lay, id); l++) {
            const ParamSlot *s = layout_slot(&m->lay, id, l);
            const float *x = m->params + s->off;
            for (size_t i = 0; i < s->n; i++)
                if (!isfinite(x[i])) {
                    char name[256];
                    snprintf(name, sizeof name, distilbert_params[id].hf_name, l);
                    return err_set("%s: tensor %s holds %s at element %zu: the weights are damaged", path, name,
                                   isnan(x[i]) ? "NaN" : "Inf", i);
                }
        }
    return 0;
}

/* checkpoint_load and checkpoint_load_head: with require_head, a head of
 * num_labels rows must be in the file. */
static int load(ModelWeights *m, const char *dir, int num_labels, uint64_t head_seed, bool require_head)
{
    DistilBertConfig cfg;
    Arch arch = ARCH_DISTILBERT;
    int cfg_labels = 0;
    if (read_config(dir, &cfg, &arch, &cfg_labels)) return -1;
    char path[4096];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    StFile f;
    if (st_open(&f, path)) return -1;
    int in_file = head_labels(&f);
    cfg.num_labels = num_labels > 0 ? num_labels : in_file > 0 ? in_file : cfg_labels > 0 ? cfg_labels : 1;
    bool load_head = arch == ARCH_DISTILBERT && in_file == cfg.num_labels;
    if (require_head && !load_head) {
        st_close(&f);
        if (in_file == 0) return err_set("%s: no classification head (classifier.weight)", path);
        return err_set("%s: classifier.weight has %d rows but %d genres were expected (config.json's id2label)",
                       path, in_file, cfg.num_labels);
    }
    if (weights_init(m, &cfg)) {
        err_set("%s/config.json: %s", dir, err_msg());
        st_close(&f);
        return -1;
    }
    const char *prefix = arch == ARCH_BERT ? "bert." : "distilbert.";
    for (int id = 0; id < P_COUNT; id++) {
        const ParamDef *d = &distilbert_params[id];
        if (is_head(id) && !load_head) continue;
        const char *pattern = arch == ARCH_BERT ? d->bert_name : d->hf_name;
        /* DistilBERT names carry the prefix in the table; accept them without. */
        if (arch == ARCH_DISTILBERT && !strncmp(pattern, prefix, strlen(prefix)))
            pattern += strlen(prefix);
        for (int l = 0; l < (d->per_layer ? cfg.n_layers : 1); l++) {
            char name[256];
            snprintf(name, sizeof name, pattern, l);
            const StTensor *t = is_head(id) ? st_find(&f, name) : find(&f, prefix, name);
            if (!t) {
                err_set("%s: missing tensor %s%s", path, is_head(id) ? "" : prefix, name);
                goto fail;
            }
            if (load_tensor(&f, t, layout_slot(&m->lay, id, l), weights_tensor(m, id, l))) goto fail;
        }
    }
    if (arch == ARCH_BERT) {
        const StTensor *t = find(&f, prefix, "embeddings.token_type_embeddings.weight");
        if (t) {
            if (t->ndim != 2 || t->shape[1] != cfg.dim || t->shape[0] < 1) {
                err_set("%s: tensor %s has the wrong shape (expected [types, %d])", path,
                        t->name, cfg.dim);
                goto fail;
            }
            float *types = xmalloc(t->numel * sizeof(float));
            if (st_read_f32(&f, t, types, t->numel)) {
                free(types);
                goto fail;
            }
            float *wpe = weights_tensor(m, P_WPE, 0);
            for (int p = 0; p < cfg.max_position_embeddings; p++)
                for (int i = 0; i < cfg.dim; i++) wpe[(size_t)p * cfg.dim + i] += types[i];
            free(types);
        }
    }
    if (!load_head) weights_init_head(m, head_seed);
    st_close(&f);
    if (check_finite(m, path) != 0) {
        weights_free(m);
        return -1;
    }
    return 0;
fail:
    st_close(&f);
    weights_free(m);
    return -1;
}

int checkpoint_load(ModelWeights *w, const char *dir, int num_labels, uint64_t head_seed)
{
    return load(w, dir, num_labels, head_seed, false);
}

int checkpoint_load_head(ModelWeights *w, const char *dir, int num_labels)
{
    return load(w, dir, num_labels, 0, true);
}

char **checkpoint_labels(const char *dir, int *n)
{
    *n = 0;
    char path[4096];
    snprintf(path, sizeof path, "%s/config.json", dir);
    json_t *cfg = json_read_file(path, 0);
    if (!cfg) return NULL;
    json_t *id2label = json_object_get(cfg, "id2label");
    char **names = NULL;
    int count = json_is_object(id2label) ? (int)json_object_size(id2label) : 0;
    if (count > 0) {
        names = xcalloc(count, sizeof *names);
        for (int i = 0; i < count; i++) {
            char key[32];
            snprintf(key, sizeof key, "%d", i);
            const char *s = json_string_value(json_object_get(id2label, key));
            if (!s) {
                for (int j = 0; j < i; j++) free(names[j]);
                free(names);
                names = NULL;
                count = 0;
                break;
            }
            names[i] = xstrdup(s);
        }
    }
    json_decref(cfg);
    *n = count;
    if (!names) err_set("%s: no id2label: not a fine-tuned genre classifier", path);
    return names;
}

static json_t *save_config(const DistilBertConfig *c, const char *const *labels)
{
    json_t *j = json_object();
    json_object_set_new(j, "model_type", json_string("distilbert"));
    json_object_set_new(j, "architectures",
                        json_pack("[s]", "DistilBertForSequenceClassification"));
    json_object_set_new(j, "activation", json_string("gelu"));
    json_object_set_new(j, "dim", json_integer(c->dim));
    json_object_set_new(j, "n_layers", json_integer(c->n_layers));
    json_object_set_new(j, "n_heads", json_integer(c->n_heads));
    json_object_set_new(j, "hidden_dim", json_integer(c->hidden_dim));
    json_object_set_new(j, "vocab_size", json_integer(c->vocab_size));
    json_object_set_new(j, "max_position_embeddings", json_integer(c->max_position_embeddings));
    json_object_set_new(j, "dropout", json_real(c->dropout));
    json_object_set_new(j, "attention_dropout", json_real(c->attention_dropout));
    json_object_set_new(j, "seq_classif_dropout", json_real(c->seq_classif_dropout));
    json_object_set_new(j, "initializer_range", json_real(c->initializer_range));
    json_object_set_new(j, "sinusoidal_pos_embds", json_false());
    json_object_set_new(j, "pad_token_id", json_integer(0));
    json_object_set_new(j, "problem_type", json_string("multi_label_classification"));
    json_object_set_new(j, "dtype", json_string("float32"));
    if (labels) {
        json_t *id2label = json_object(), *label2id = json_object();
        for (int i = 0; i < c->num_labels; i++) {
            char key[32];
            snprintf(key, sizeof key, "%d", i);
            json_object_set_new(id2label, key, json_string(labels[i]));
            json_object_set_new(label2id, labels[i], json_integer(i));
        }
        json_object_set_new(j, "id2label", id2label);
        json_object_set_new(j, "label2id", label2id);
    } else {
        /* transformers takes the label count from id2label. */
        json_t *id2label = json_object();
        for (int i = 0; i < c->num_labels; i++) {
            char key[32], val[48];
            snprintf(key, sizeof key, "%d", i);
            snprintf(val, sizeof val, "LABEL_%d", i);
            json_object_set_new(id2label, key, json_string(val));
        }
        json_object_set_new(j, "id2label", id2label);
    }
    return j;
}

/* Visits every tensor of the model under its HuggingFace DistilBERT name,
 * with its offset in the flat parameter layout. */
typedef int (*TensorFn)(void *ctx, const char *name, const ParamDef *d, const ParamSlot *v);

static int each_tensor(const ModelLayout *lay, TensorFn fn, void *ctx)
{
    for (int id = 0; id < P_COUNT; id++) {
        const ParamDef *d = &distilbert_params[id];
        for (int l = 0; l < layout_copies(lay, id); l++) {
            char name[256];
            snprintf(name, sizeof name, d->hf_name, l);
            if (fn(ctx, name, d, layout_slot(lay, id, l))) return -1;
        }
    }
    return 0;
}

/* A writer of tensors whose names it owns until the save. */
typedef struct {
    const float *params, *moments[2];
    StWriter *w;
    char **names;
    size_t n_names;
} SaveTensors;

static void add_named(SaveTensors *s, const char *name, const ParamDef *d, const ParamSlot *v,
                      const float *data)
{
    s->names[s->n_names] = xstrdup(name);
    st_writer_add(s->w, s->names[s->n_names++], ST_F32, d->ndim, v->shape, data);
}

static void free_save(SaveTensors *s)
{
    st_writer_free(s->w);
    for (size_t i = 0; i < s->n_names; i++) free(s->names[i]);
    free(s->names);
}

static int add_param(void *ctx, const char *name, const ParamDef *d, const ParamSlot *v)
{
    SaveTensors *s = ctx;
    add_named(s, name, d, v, s->params + v->off);
    return 0;
}

int checkpoint_save(const ModelWeights *m, const char *dir, const char *const *labels)
{
    /* DistilBERT's config has no LayerNorm eps: transformers always uses 1e-12. */
    if (m->lay.cfg.layer_norm_eps != 1e-12f)
        return err_set("%s: cannot save as DistilBERT: LayerNorm eps %g is not DistilBERT's 1e-12",
                       dir, m->lay.cfg.layer_norm_eps);
    if (make_dirs(dir)) return -1;
    char path[4096];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    SaveTensors s = {m->params, {NULL, NULL}, st_writer_new(),
                     xcalloc((size_t)P_COUNT * m->lay.cfg.n_layers, sizeof(char *)), 0};
    each_tensor(&m->lay, add_param, &s);
    st_writer_meta(s.w, "format", "pt");
    int rc = st_writer_save(s.w, path);
    free_save(&s);
    if (rc) return -1;
    json_t *cfg = save_config(&m->lay.cfg, labels);
    snprintf(path, sizeof path, "%s/config.json", dir);
    rc = json_write_file(path, cfg, JSON_INDENT(2) | JSON_SORT_KEYS);
    json_decref(cfg);
    return rc;
}

static int add_moments(void *ctx, const char *name, const ParamDef *d, const ParamSlot *v)
{
    SaveTensors *s = ctx;
    const char *kinds[2] = {"exp_avg", "exp_avg_sq"};
    const float *data[2] = {s->moments[0] + v->off, s->moments[1] + v->off};
    for (int k = 0; k < 2; k++) {
        char full[300];
        snprintf(full, sizeof full, "%s.%s", kinds[k], name);
        add_named(s, full, d, v, data[k]);
    }
    return 0;
}

int checkpoint_save_optimizer(const ModelLayout *lay, const AdamWState *opt, const char *dir)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/optimizer.safetensors", dir);
    if (opt->t < 1) return err_set("%s: no optimizer step taken yet", path);
    if (opt->n != lay->n_params)
        return err_set("%s: optimizer state of %zu values for %zu parameters", path, opt->n, lay->n_params);
    if (make_dirs(dir)) return -1;
    SaveTensors s = {NULL, {opt->m, opt->v}, st_writer_new(),
                     xcalloc((size_t)2 * P_COUNT * lay->cfg.n_layers, sizeof(char *)), 0};
    each_tensor(lay, add_moments, &s);
    char t[32];
    snprintf(t, sizeof t, "%d", opt->t);
    st_writer_meta(s.w, "step", t);
    int rc = st_writer_save(s.w, path);
    free_save(&s);
    return rc;
}

typedef struct {
    AdamWState *opt;
    const StFile *f;
} LoadMoments;

static int read_moments(void *ctx, const char *name, const ParamDef *d, const ParamSlot *v)
{
    (void)d;
    LoadMoments *s = ctx;
    const char *kinds[2] = {"exp_avg", "exp_avg_sq"};
    float *data[2] = {s->opt->m + v->off, s->opt->v + v->off};
    for (int k = 0; k < 2; k++) {
        char full[300];
        snprintf(full, sizeof full, "%s.%s", kinds[k], name);
        const StTensor *t = st_find(s->f, full);
        if (!t) return err_set("%s: missing tensor %s", s->f->path, full);
        if (t->numel != v->n)
            return err_set("%s: tensor %s has %zu values, the model's %s has %zu", s->f->path, full,
                           t->numel, name, v->n);
        if (st_read_f32(s->f, t, data[k], v->n)) return -1;
    }
    return 0;
}

int checkpoint_load_optimizer(const ModelLayout *lay, AdamWState *opt, const char *dir)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/optimizer.safetensors", dir);
    StFile f;
    if (st_open(&f, path)) return -1;
    const char *t = st_meta(&f, "step");
    char *end = NULL;
    long step = t ? strtol(t, &end, 10) : 0;
    if (!t || *end || step < 1 || step > 1L << 30) {
        err_set("%s: metadata \"step\" missing or not a positive integer", path);
        st_close(&f);
        return -1;
    }
    if (opt->n != lay->n_params) {
        err_set("%s: optimizer state of %zu values for %zu parameters", path, opt->n, lay->n_params);
        st_close(&f);
        return -1;
    }
    LoadMoments s = {opt, &f};
    int rc = each_tensor(lay, read_moments, &s);
    if (rc == 0) opt->t = (int)step;
    st_close(&f);
    return rc;
}
