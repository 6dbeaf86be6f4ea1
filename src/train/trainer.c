#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "models/backend.h"
#include "models/checkpoint.h"
#include "models/classifier.h"
#include "src/core/atomic.h"
#include "src/core/err.h"
#include "src/core/hash.h"
#include "src/core/interrupt.h"
#include "src/core/jsonfile.h"
#include "src/core/outdir.h"
#include "src/core/progress.h"
#include "src/data/batcher.h"
#include "src/data/filter.h"
#include "src/eval/metrics.h"
#include "src/eval/predictions.h"
#include "src/eval/report.h"
#include "src/eval/tbevents.h"
#include "src/eval/trainlog.h"
#include "src/train/schedule.h"
#include "src/train/state.h"
#include "src/train/trainer.h"

typedef struct {
    Encoded enc;
    Dataset data;
} Part;

/* A run in progress: its settings and paths, the data, the model on its
 * backend with host buffers for checkpoints, and where it stands. */
typedef struct {
    const TrainSettings *s;
    const char *out;  /* where the run is written: the run directory, or with
                         --force over an earlier output, a sibling swapped in
                         at the end (see run_dir) */
    const char *dest; /* the run directory the user named */
    char out_buf[4096]; /* rank > 0: rank 0's out */
    char *replacing;  /* the sibling, when replacing dest (rank 0) */
    int replaces;     /* whether the run replaces dest: on every rank */
    char last_dir[4200], best_dir[4200], log_path[4200], tb_dir[4200], vocab[4300];
    TrainState st;
    Tokenizer *tok;
    LabelSet labels;
    Part train, val, test;
    int L;
    ModelWeights w;   /* host copy of the parameters, for checkpoints */
    AdamWState opt;   /* host copy of the optimizer state, likewise */
    Backend *be;
    Precision prec;            /* what the settings resolved to on this backend */
    Comm *comm;
    int rank, world;
    bool dist;        /* the data-parallel path: world > 1, or s->dist_alone */
    bool lead;        /* rank 0: writes the run directory */
    int per_step;     /* micro-batches per optimizer step over all ranks */
    int stop_signal;  /* an interrupt some rank received, agreed at the last step */
    AdamW adamw;
    Loss loss;
    float *logw;
    float *class_w;            /* NULL unless s->class_balanced */
    double *sample_weights; /* oversampling; NULL: every movie once */
    long total, warmup;
    FILE *log;
    TbWriter tb;      /* tb.f NULL: tensorboard=false */
    Progress prog;
    Batch b;
    float *val_scores;
    uint8_t *val_pred;
    float *thresholds; /* each genre's decision threshold: s->threshold until finish tunes them */
    double t_start;
    char data_note[1024]; /* what the data settings removed, for the start of the run */
} Run;

static int read_part(Part *p, LabelSet *ls, const char *dir, const char *name)
{
    LabelSet own;
    if (dataset_load_part(&p->data, &own, dir, name) != 0) return -1;
    if (ls->n_labels == 0) {
        *ls = own;
    } else {
        int same = own.n_labels == ls->n_labels;
        labels_free(&own);
        if (!same) return err_set("%s: labels.txt changed while reading", dir);
    }
    return 0;
}

static int encode_part(Part *p, const Tokenizer *tok, const char *dir, const char *name, long limit, int max_len)
{
    if (limit > 0 && limit < p->data.n) dataset_truncate(&p->data, (int)limit);
    if (p->data.n == 0) return err_set("%s/%s.jsonl: no movies (or none left by the data settings)", dir, name);
    if (encoded_build(&p->enc, tok, &p->data, max_len) != 0)
        return err_set("%s/%s.jsonl: %s", dir, name, err_msg());
    return 0;
}

/* drop_labels on every part: the genres' columns go, then the movies left
 * without a genre (counted into no_label). */
static int drop_labels(Run *r, int no_label[3])
{
    const TrainSettings *s = r->s;
    int L = r->labels.n_labels, n = 0, *cols = xmalloc((size_t)L * sizeof *cols);
    uint8_t *drop = xcalloc((size_t)L, 1);
    for (int i = 0; i < s->n_drop_labels; i++) {
        int c = labels_index(&r->labels, s->drop_labels[i]);
        if (c < 0) {
            free(cols);
            free(drop);
            return err_set("drop_labels: '%s' is not a genre of %s/labels.txt", s->drop_labels[i], s->data);
        }
        drop[c] = 1;
    }
    for (int c = 0; c < L; c++)
        if (!drop[c]) cols[n++] = c;
    free(drop);
    if (n == 0) {
        free(cols);
        return err_set("drop_labels: removes every genre of %s/labels.txt", s->data);
    }
    Part *parts[] = {&r->train, &r->val, &r->test};
    for (int k = 0; k < 3; k++) {
        dataset_keep_labels(&parts[k]->data, cols, n);
        no_label[k] = dataset_drop_unlabelled(&parts[k]->data);
    }
    labels_keep(&r->labels, cols, n);
    free(cols);
    return 0;
}

/* min_words, max_words, max_nonword_share on train: each dropped movie
 * counted under the first it fails. */
static void filter_train(Run *r, int counts[3])
{
    const TrainSettings *s = r->s;
    Dataset *d = &r->train.data;
    uint8_t *keep = xmalloc((size_t)d->n + 1);
    for (int i = 0; i < d->n; i++) {
        int words = text_words(d->texts[i]), why = -1;
        if (words < s->min_words) why = 0;
        else if (s->max_words && words > s->max_words) why = 1;
        else if (s->max_nonword_share < 1 && text_nonword_share(d->texts[i]) > s->max_nonword_share) why = 2;
        keep[i] = why < 0;
        if (why >= 0) counts[why]++;
    }
    dataset_keep(d, keep);
    free(keep);
}

/* The data settings (trainer.h) on the three parts as read; what they did
 * into data.json and r->data_note. */
static int shape_data(Run *r)
{
    const TrainSettings *s = r->s;
    Part *parts[] = {&r->train, &r->val, &r->test};
    const char *names[] = {"train", "val", "test"};
    int read[3], no_label[3] = {0}, filtered[3] = {0}, n_common = 0;
    char **common = NULL;
    for (int k = 0; k < 3; k++) read[k] = parts[k]->data.n;
    if (s->n_drop_labels && drop_labels(r, no_label) != 0) return -1;
    filter_train(r, filtered);
    if (s->strip_common_words) {
        n_common = common_words(&r->train.data, s->strip_common_words, &common);
        if (n_common < 0) return err_set("%s/train.jsonl: %s", s->data, err_msg());
        for (int k = 0; k < 3; k++)
            for (int i = 0; i < parts[k]->data.n; i++) {
                char *t = strip_words(parts[k]->data.texts[i], common, n_common);
                free(parts[k]->data.texts[i]);
                parts[k]->data.texts[i] = t;
            }
    }
    json_t *o = json_object(), *dropped = json_array(), *words = json_array();
    for (int i = 0; i < s->n_drop_labels; i++) json_array_append_new(dropped, json_string(s->drop_labels[i]));
    json_object_set_new(o, "drop_labels", dropped);
    json_object_set_new(o, "labels", json_integer(r->labels.n_labels));
    for (int k = 0; k < 3; k++) {
        json_t *p = json_pack("{s:i, s:i}", "read", read[k], "no_label", no_label[k]);
        if (k == 0) {
            json_object_set_new(p, "min_words", json_integer(filtered[0]));
            json_object_set_new(p, "max_words", json_integer(filtered[1]));
            json_object_set_new(p, "max_nonword_share", json_integer(filtered[2]));
        }
        json_object_set_new(p, "kept", json_integer(parts[k]->data.n));
        json_object_set_new(o, names[k], p);
    }
    for (int i = 0; i < n_common; i++) json_array_append_new(words, json_string(common[i]));
    json_object_set_new(o, "common_words", words);
    char path[4200];
    snprintf(path, sizeof path, "%s/data.json", r->out);
    int rc = r->lead ? json_write_file(path, o, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : 0;
    json_decref(o);
    int n = 0;
    if (s->n_drop_labels)
        n += snprintf(r->data_note + n, sizeof r->data_note - (size_t)n,
                      "drop_labels left train/val/test without a genre: %d/%d/%d movies dropped; ", no_label[0],
                      no_label[1], no_label[2]);
    if (filtered[0] + filtered[1] + filtered[2] && n < (int)sizeof r->data_note)
        n += snprintf(r->data_note + n, sizeof r->data_note - (size_t)n,
                      "train: %d below min_words, %d above max_words, %d above max_nonword_share dropped; ",
                      filtered[0], filtered[1], filtered[2]);
    if (n_common && n < (int)sizeof r->data_note)
        n += snprintf(r->data_note + n, sizeof r->data_note - (size_t)n, "%d common words stripped (%s, ...); ",
                      n_common, common[0]);
    if (n >= 2 && n < (int)sizeof r->data_note) r->data_note[n - 2] = '\0';
    for (int i = 0; i < n_common; i++) free(common[i]);
    free(common);
    return rc;
}

/* The loss with its class weights from the training set's label counts. */
static void setup_loss(Run *r)
{
    const TrainSettings *s = r->s;
    long *counts = xcalloc((size_t)r->L, sizeof *counts);
    for (int i = 0; i < r->train.data.n; i++)
        for (int c = 0; c < r->L; c++) counts[c] += r->train.data.y[(size_t)i * r->L + c];
    r->logw = xmalloc((size_t)r->L * sizeof *r->logw);
    loss_logw_weights(r->logw, counts, r->train.data.n, r->L);
    if (s->class_balanced) {
        r->class_w = xmalloc((size_t)r->L * sizeof *r->class_w);
        loss_class_balanced_weights(r->class_w, counts, r->L, s->cb_beta);
    }
    free(counts);
    r->loss = (Loss){.kind = s->loss, .weights = r->logw, .as_pos_weight = s->logw_as_pos_weight,
                     .alpha = s->alpha, .gamma = s->gamma, .gamma_pos = s->gamma_pos,
                     .gamma_neg = s->gamma_neg, .clip = s->clip, .class_weights = r->class_w};
}

/* The model on its backend: the pretrained encoder (with a fresh head) for
 * a new run, the last checkpoint and its AdamW state for a resumed one. */

/* The settings' precision and graphs on the opened backend: tf32 is fp32
 * with TF32 GEMMs; auto what the backend does best (bf16 on a GPU that has
 * it); graphs where the device has them. */
static int set_precision(Run *r)
{
    const TrainSettings *s = r->s;
    r->prec = s->tf32                         ? PRECISION_TF32
              : !strcmp(s->precision, "bf16") ? PRECISION_BF16
              : !strcmp(s->precision, "auto") ? backend_default_precision(r->be)
                                              : PRECISION_FP32;
    return backend_set_precision(r->be, r->prec) ||
                   backend_set_graphs(r->be, s->cuda_graphs && !strcmp(s->device, "cuda"))
               ? -1 : 0;
}

static int open_model(Run *r, bool resume)
{
    const TrainSettings *s = r->s;
    const char *src = resume ? r->last_dir : s->init;
    if ((resume ? checkpoint_load_head(&r->w, src, r->L) : checkpoint_load(&r->w, src, r->L, s->seed)) != 0)
        return -1;
    if (s->max_len > r->w.lay.cfg.max_position_embeddings)
        return err_set("max_len %d exceeds the model's %d positions", s->max_len,
                       r->w.lay.cfg.max_position_embeddings);
    adamw_state_init(&r->opt, r->w.lay.n_params);
    if (resume && checkpoint_load_optimizer(&r->w.lay, &r->opt, r->last_dir) != 0) return -1;
    if (backend_select_device(s->device, comm_local_rank(r->comm)) != 0 ||
        !(r->be = backend_open(s->device, &r->w)) || set_precision(r) != 0 ||
        (r->dist && backend_set_comm(r->be, r->comm, s->shard_optimizer) != 0))
        return -1;
    /* Validation batches are twice the training batch (no gradients kept). */
    if (backend_reserve(r->be, 2 * s->batch_size, s->max_len) != 0 || backend_set_loss(r->be, &r->loss) != 0)
        return -1;
    return resume ? backend_set_optimizer(r->be, &r->opt) : 0;
}

/* Opens the log: a fresh run writes its config and starts an empty log; a
 * resumed run cuts the log back to its checkpoint and replays from there. */
static int open_log(Run *r, const Config *cfg, bool resume)
{
    if (resume) {
        if (truncate(r->log_path, (off_t)r->st.log_bytes) != 0)
            return err_set("%s: cannot cut back to the checkpoint's %ld bytes: %s", r->log_path,
                           r->st.log_bytes, strerror(errno));
        r->log = fopen(r->log_path, "a");
    } else {
        char path[4200];
        snprintf(path, sizeof path, "%s/config.json", r->out);
        if (config_write(cfg, path) != 0) return -1;
        r->log = fopen(r->log_path, "w");
    }
    if (!r->log) return err_set("%s: cannot open: %s", r->log_path, strerror(errno));
    return 0;
}

/* Claims the run directory before any work: a resumed run's own; for a new
 * run a missing or empty one, or with force anything, which the run then
 * replaces only when it has finished (it is built in a sibling meanwhile).
 * Locked against a second writer either way. */
static int claim_dir(Run *r, bool resume, bool force)
{
    char kind[64];
    outdir_kind(r->dest, kind, sizeof kind);
    if (resume) {
        if (strcmp(kind, "train"))
            return err_set("--resume %s: not a genre training run (no %s/.genre marker naming one)", r->dest,
                           r->dest);
        return outdir_lock(r->dest);
    }
    char hint[4400];
    snprintf(hint, sizeof hint, !strcmp(kind, "train") ? "continue it with `genre train --resume %s`"
                                                       : "choose another --out", r->dest);
    bool replace;
    if (outdir_claim(r->dest, "train", false, force, hint, &replace) != 0) return -1;
    if (make_dirs(r->dest) != 0 || outdir_lock(r->dest) != 0) return -1;
    if (replace) {
        if (!(r->replacing = atomic_dir_begin(r->dest))) return -1;
        r->out = r->replacing;
    }
    return outdir_mark(r->out, "train");
}

/* Rank 0 claims the directory; the others learn where it writes (a
 * sibling when replacing), to read its checkpoints from. */
static int run_dir(Run *r, bool resume, bool force)
{
    if (r->lead && claim_dir(r, resume, force) != 0) return -1;
    r->replaces = r->replacing != NULL;
    if (r->world == 1) return 0;
    snprintf(r->out_buf, sizeof r->out_buf, "%s", r->out);
    if (comm_broadcast(r->comm, r->out_buf, sizeof r->out_buf, 0) != 0 ||
        comm_broadcast(r->comm, &r->replaces, sizeof r->replaces, 0) != 0)
        return -1;
    r->out = r->out_buf;
    return 0;
}

/* The run's config.json against the fingerprint in its state (fresh: into it). */
static int check_config(Run *r)
{
    char path[4200];
    uint64_t fp = FNV1A64_OFFSET;
    snprintf(path, sizeof path, "%s/config.json", r->out);
    if (fnv1a64_file(path, &fp) != 0) return -1;
    if (r->st.step == 0) {
        r->st.config_fp = fp;
        return 0;
    }
    if (fp != r->st.config_fp)
        return err_set("--resume %s: %s changed since the run started; a resumed run needs its own settings (start a "
                       "new run for new ones)", r->dest, path);
    return 0;
}

/* A checkpoint's position must be one this run can reach, and agree with
 * its optimizer state and its log: anything else was edited or damaged,
 * and continuing would not reproduce the uninterrupted run. */
static int check_state(const Run *r, long batches)
{
    const TrainState *st = &r->st;
    const TrainSettings *s = r->s;
    char where[4300];
    snprintf(where, sizeof where, "--resume %s: %s/state.json", r->dest, r->last_dir);
    if (st->step < 1 || st->step > r->total)
        return err_set("%s: step %ld is not in 1..%ld", where, st->step, r->total);
    if (st->epoch > s->epochs || st->batch >= batches || st->batch % r->per_step)
        return err_set("%s: epoch %d, batch %d is not a step boundary of this run", where, st->epoch, st->batch);
    if (r->opt.t != st->step)
        return err_set("%s: step %ld, but optimizer.safetensors has taken %d steps", where, st->step, r->opt.t);
    if (st->best_step > st->step || st->best < -1 || st->best > 1)
        return err_set("%s: best %g at step %ld does not fit step %ld", where, st->best, st->best_step, st->step);
    struct stat info;
    if (stat(r->log_path, &info) != 0 || info.st_size < st->log_bytes)
        return err_set("--resume %s: %s is shorter than the checkpoint's %ld bytes: the log was cut or replaced",
                       r->dest, r->log_path, st->log_bytes);
    char tb[4600];
    snprintf(tb, sizeof tb, "%s/%s", r->tb_dir, st->tb_file);
    if (s->tensorboard && st->tb_file[0] && (stat(tb, &info) != 0 || info.st_size < st->tb_bytes))
        return err_set("--resume %s: %s is shorter than the checkpoint's %ld bytes: the events file was cut or "
                       "replaced", r->dest, tb, st->tb_bytes);
    return 0;
}

/* A new TensorBoard events file for the steps from here on; a resumed run
 * first rewinds tb/ to its checkpoint (tb_rewind), so that the steps an
 * interrupted attempt wrote past it are neither kept nor written twice. */
static int open_tb(Run *r, bool resume)
{
    if (!r->s->tensorboard) return 0;
    const char *prev = resume && r->st.tb_file[0] ? r->st.tb_file : NULL;
    if (prev && tb_rewind(r->tb_dir, prev, r->st.tb_bytes) != 0) return -1;
    char name[256];
    tb_name(name, sizeof name, r->st.step, prev);
    return tb_open(&r->tb, r->tb_dir, name);
}

/* One step's, or one validation's, scalars into the events file. */
static int tb_step(Run *r, double loss, float rate, float gnorm, double sps)
{
    if (!r->tb.f) return 0;
    long t = r->st.step;
    return tb_scalar(&r->tb, t, "train/loss", loss) || tb_scalar(&r->tb, t, "train/lr", rate) ||
                   tb_scalar(&r->tb, t, "train/grad_norm", gnorm) ||
                   tb_scalar(&r->tb, t, "train/samples_per_s", sps)
               ? -1 : 0;
}

static int tb_val(Run *r, const Metrics *m)
{
    if (!r->tb.f) return 0;
    const char *tags[] = {"val/jaccard", "val/f1", "val/micro_f1", "val/macro_f1", "val/hamming", "val/accuracy"};
    const double v[] = {m->jaccard, m->f1, m->micro_f1, m->macro_f1, m->hamming, m->accuracy};
    for (int i = 0; i < 6; i++)
        if (tb_scalar(&r->tb, r->st.step, tags[i], v[i]) != 0) return -1;
    return 0;
}

/* What the run was started with: a fresh run records the fingerprints of
 * its data and of its config.json (written by open_log, so fingerprinted
 * after it); a resumed one must find both unchanged. */
static int fingerprint(Run *r, bool resume)
{
    uint64_t data;
    if (dataset_fingerprint(r->s->data, &data) != 0) return -1;
    if (!resume) {
        r->st.data_fp = data;
        return 0;
    }
    if (data != r->st.data_fp)
        return err_set("--resume %s: the data in %s changed since the run started (prepared again?); a resumed run "
                       "needs the data it started with", r->dest, r->s->data);
    return check_config(r);
}

static int run_open(Run *r, const Config *cfg, bool resume)
{
    const TrainSettings *s = r->s;
    snprintf(r->last_dir, sizeof r->last_dir, "%s/last", r->out);
    snprintf(r->best_dir, sizeof r->best_dir, "%s/best", r->out);
    snprintf(r->log_path, sizeof r->log_path, "%s/log.jsonl", r->out);
    snprintf(r->tb_dir, sizeof r->tb_dir, "%s/tb", r->out);
    r->st = (TrainState){.best = -1.0};
    /* A resumed run reads its model and vocabulary from its checkpoint. */
    const char *src = resume ? r->last_dir : s->init;
    if (resume && train_state_load(&r->st, r->last_dir) != 0)
        return err_set("--resume %s: no usable checkpoint: %s", r->out, err_msg());
    if (r->lead && fingerprint(r, resume) != 0) return -1;
    snprintf(r->vocab, sizeof r->vocab, "%s/vocab.txt", src);
    if (!(r->tok = tokenizer_load(src))) return -1;
    if (read_part(&r->train, &r->labels, s->data, "train") != 0 ||
        read_part(&r->val, &r->labels, s->data, "val") != 0 || read_part(&r->test, &r->labels, s->data, "test") != 0 ||
        shape_data(r) != 0 ||
        encode_part(&r->train, r->tok, s->data, "train", s->limit_train, s->max_len) != 0 ||
        encode_part(&r->val, r->tok, s->data, "val", s->limit_eval, s->max_len) != 0 ||
        encode_part(&r->test, r->tok, s->data, "test", s->limit_eval, s->max_len) != 0)
        return -1;
    r->L = r->labels.n_labels;
    setup_loss(r);
    if (open_model(r, resume) != 0) return -1;
    if (s->oversample > 0) {
        r->sample_weights = xmalloc((size_t)r->train.data.n * sizeof *r->sample_weights);
        oversample_weights(r->sample_weights, &r->train.enc, s->oversample);
    }
    /* The global batch is fixed when the run starts: a resume on another
     * number of ranks shares the same micro-batches among them. */
    r->per_step = !resume ? s->grad_accum * r->world : r->st.per_step ? r->st.per_step : s->grad_accum;
    r->st.per_step = r->per_step;
    long batches = (r->train.data.n + s->batch_size - 1) / s->batch_size;
    long steps_per_epoch = (batches + r->per_step - 1) / r->per_step;
    r->total = steps_per_epoch * s->epochs;
    if (s->max_steps > 0 && s->max_steps < r->total) r->total = s->max_steps;
    if (resume && check_state(r, batches) != 0) return -1;
    if (r->lead && (open_log(r, cfg, resume) != 0 || (!resume && check_config(r) != 0) || open_tb(r, resume) != 0))
        return -1;
    r->warmup = lr_warmup_steps(s->warmup_ratio, r->total);
    r->adamw = (AdamW){s->lr, 0.9f, 0.999f, 1e-8f, s->weight_decay};
    r->val_scores = xmalloc((size_t)r->val.data.n * r->L * sizeof *r->val_scores);
    r->val_pred = xmalloc((size_t)r->val.data.n * r->L);
    r->thresholds = xmalloc((size_t)r->L * sizeof *r->thresholds);
    for (int c = 0; c < r->L; c++) r->thresholds[c] = s->threshold;
    batch_alloc(&r->b, s->batch_size, s->max_len, r->L);
    progress_init(&r->prog, r->lead ? stderr : NULL, r->total, r->st.step, 30.0);
    r->t_start = wall_seconds();
    char msg[4400];
    if (r->data_note[0]) progress_message(&r->prog, r->data_note);
    if (resume) {
        snprintf(msg, sizeof msg, "resuming %s at step %ld of %ld", r->out, r->st.step, r->total);
        progress_message(&r->prog, msg);
    }
    if (r->prec != PRECISION_FP32) {
        snprintf(msg, sizeof msg, "precision %s", precision_name(r->prec));
        progress_message(&r->prog, msg);
    }
    if (r->dist || r->per_step != s->grad_accum) {
        snprintf(msg, sizeof msg, "data parallel: %d rank%s, %d micro-batches of %d per step (%d each at most)",
                 r->world, r->world > 1 ? "s" : r->dist ? " (--dist-alone)" : "", r->per_step, s->batch_size,
                 (r->per_step + r->world - 1) / r->world);
        progress_message(&r->prog, msg);
    }
    return 0;
}

static int save_last(Run *r);

/* Stops at a step boundary on Ctrl-C or SIGTERM, with a checkpoint of it
 * (unless one was just written), so that the run can be resumed. */
static int check_interrupt(Run *r, bool saved)
{
    int sig = r->stop_signal;
    if (!sig) return 0;
    if (!saved && !r->replaces && save_last(r) != 0) return -1;
    if (r->replaces) return err_set("interrupted (signal %d) at step %ld", sig, r->st.step);
    return err_set("interrupted (signal %d) at step %ld; continue with `genre train --resume %s`", sig, r->st.step,
                   r->dest);
}

static void run_close(Run *r)
{
    if (r->log) fclose(r->log);
    tb_close(&r->tb);
    free(r->val_scores);
    free(r->val_pred);
    free(r->thresholds);
    free(r->sample_weights);
    free(r->logw);
    free(r->class_w);
    batch_free(&r->b);
    backend_close(r->be);
    adamw_state_free(&r->opt);
    weights_free(&r->w);
    Part *parts[] = {&r->train, &r->val, &r->test};
    for (int i = 0; i < 3; i++) {
        encoded_free(&parts[i]->enc);
        dataset_free(&parts[i]->data);
    }
    labels_free(&r->labels);
    tokenizer_free(r->tok);
}

/* Scores a part on the backend and computes its metrics at r->thresholds;
 * scores and predictions kept. */
static int evaluate(Run *r, const Part *p, float *scores, uint8_t *pred, Metrics *out)
{
    if (r->world > 1) memset(scores, 0, (size_t)p->data.n * r->L * sizeof *scores);
    if (classifier_scores_share(r->be, &p->enc, 2 * r->s->batch_size, r->rank, r->world, scores) != 0 ||
        comm_allreduce(r->comm, scores, (size_t)p->data.n * r->L, COMM_F32, COMM_SUM) != 0)
        return -1;
    predict_at_least_one_per_label(pred, scores, p->data.n, r->L, r->thresholds);
    metrics_compute(out, p->data.y, pred, p->data.n, r->L);
    return 0;
}

/* The validation score that picks best/: larger is better. */
static double selection_score(const Metrics *m, const char *metric)
{
    if (!strcmp(metric, "f1")) return m->f1;
    if (!strcmp(metric, "micro_f1")) return m->micro_f1;
    if (!strcmp(metric, "macro_f1")) return m->macro_f1;
    if (!strcmp(metric, "accuracy")) return m->accuracy;
    if (!strcmp(metric, "hamming")) return -m->hamming;
    return m->jaccard;
}

/* The backend's parameters into the host copy, for a checkpoint. */
static int pull_weights(Run *r) { return backend_get_params(r->be, r->w.params); }

/* One optimizer step over the micro-batches k .. k + per_step - 1 of the
 * epoch's plan, this rank computing its contiguous share; the loss and
 * gradient norm over all of them into the log. */
static int train_step(Run *r, const EpochPlan *plan, int epoch, int k)
{
    const TrainSettings *s = r->s;
    double t0 = wall_seconds();
    int micro = plan->n_batches - k < r->per_step ? plan->n_batches - k : r->per_step;
    int share = (r->per_step + r->world - 1) / r->world, first = r->rank * share;
    int end = first + share < micro ? first + share : micro;
    double sums[2] = {0.0, 0.0}; /* loss, samples */
    if (backend_zero_grad(r->be) != 0) return -1;
    for (int j = first; j < end; j++) {
        batch_fill(&r->b, &r->train.enc, plan, k + j);
        ForwardArgs fa = {.train = true, .seed = s->seed, .cls_only = true, /* training reads logits only */
                          .key = dropout_key(r->st.step, r->per_step, j), .reduce = r->dist && j == end - 1};
        float loss;
        if (backend_forward(r->be, r->b.ids, r->b.mask, r->b.B, r->b.T, &fa) != 0 ||
            backend_loss_backward(r->be, r->b.labels, 1.0f / micro, &loss) != 0)
            return -1;
        sums[0] += loss;
        sums[1] += r->b.B;
    }
    /* Every rank stops at the same step when any was interrupted. */
    int sig = interrupt_requested();
    if ((r->dist && backend_allreduce_grads(r->be, r->comm) != 0) ||
        comm_allreduce(r->comm, sums, 2, COMM_F64, COMM_SUM) != 0 ||
        comm_allreduce(r->comm, &sig, 1, COMM_I32, COMM_MAX) != 0)
        return -1;
    r->stop_signal = sig;
    double step_loss = sums[0] / micro;
    float rate = s->lr * lr_linear_schedule(r->st.step, r->warmup, r->total), gnorm;
    if (backend_step(r->be, &r->adamw, rate, s->max_grad_norm, &gnorm) != 0) return -1;
    r->st.step++;
    if (!isfinite(step_loss) || !isfinite(gnorm))
        return err_set("step %ld: %s is %s; stopping (the last good checkpoint is in %s)", r->st.step,
                       isfinite(step_loss) ? "gradient norm" : "loss",
                       isnan(isfinite(step_loss) ? gnorm : step_loss) ? "NaN" : "Inf", r->last_dir);
    double sps = sums[1] / (wall_seconds() - t0);
    if (r->lead) {
        trainlog_step(r->log, r->st.step, epoch + 1, step_loss, rate, gnorm, sps);
        if (tb_step(r, step_loss, rate, gnorm, sps) != 0) return -1;
    }
    progress_update(&r->prog, epoch + 1, s->epochs, r->st.step, step_loss, sps);
    return 0;
}

/* Scores val, logs it, and saves best/ when the score improves. */
static int validate(Run *r, int epoch)
{
    Metrics vm;
    if (evaluate(r, &r->val, r->val_scores, r->val_pred, &vm) != 0) return -1;
    if (r->lead) {
        trainlog_val(r->log, r->st.step, epoch + 1, &vm, &r->labels);
        if (tb_val(r, &vm) != 0) {
            metrics_free(&vm);
            return -1;
        }
    }
    double score = selection_score(&vm, r->s->best_metric);
    int rc = 0;
    if (score > r->st.best) {
        r->st.best = score;
        r->st.best_step = r->st.step;
        rc = r->lead && (pull_weights(r) != 0 ||
                         classifier_save(&r->w, &r->labels, r->vocab, r->s->threshold, NULL, r->best_dir) != 0)
                 ? -1 : 0;
    }
    char msg[256];
    snprintf(msg, sizeof msg, "step %ld: val jaccard %.4f f1 %.4f%s", r->st.step, vm.jaccard, vm.f1,
             rc == 0 && r->st.best_step == r->st.step ? " (best so far, saved)" : "");
    progress_message(&r->prog, msg);
    metrics_free(&vm);
    return rc;
}

/* Replaces last/ by a checkpoint of this moment: the model directory, the
 * AdamW moments and the training state, which records how much of the log
 * and of the events file (both flushed to disk first) belongs to it. */
static int save_last(Run *r)
{
    /* Every rank: with shard_optimizer this gathers the moments. */
    if (backend_get_optimizer(r->be, &r->opt) != 0) return -1;
    if (!r->lead) return 0;
    r->st.elapsed += wall_seconds() - r->t_start;
    r->t_start = wall_seconds();
    if (fflush(r->log) != 0 || fsync(fileno(r->log)) != 0)
        return err_set("%s: write failed: %s", r->log_path, strerror(errno));
    r->st.log_bytes = ftell(r->log);
    if (r->tb.f) {
        if (tb_sync(&r->tb, &r->st.tb_bytes) != 0) return -1;
        snprintf(r->st.tb_file, sizeof r->st.tb_file, "%s", r->tb.name);
    }
    if (pull_weights(r) != 0) return -1;
    char *tmp = atomic_dir_begin(r->last_dir);
    if (!tmp) return -1;
    if (classifier_write(&r->w, &r->labels, r->vocab, r->s->threshold, NULL, tmp) != 0 ||
        checkpoint_save_optimizer(&r->w.lay, &r->opt, tmp) != 0 || train_state_save(&r->st, tmp) != 0) {
        atomic_dir_abort(tmp);
        return -1;
    }
    return atomic_dir_commit(tmp, r->last_dir);
}

/* Every epoch from where the run stands, each step followed by the
 * validation and checkpoint it is due for. */
static int train_epochs(Run *r)
{
    const TrainSettings *s = r->s;
    for (int epoch = r->st.epoch; epoch < s->epochs && r->st.step < r->total; epoch++) {
        EpochPlan plan;
        epoch_plan_train(&plan, &r->train.enc, s->batch_size, s->seed, epoch, s->length_window,
                         r->sample_weights);
        int rc = 0;
        for (int k = epoch == r->st.epoch ? r->st.batch : 0;
             rc == 0 && k < plan.n_batches && r->st.step < r->total; k += r->per_step) {
            rc = train_step(r, &plan, epoch, k);
            if (rc != 0) break;
            bool end_of_epoch = k + r->per_step >= plan.n_batches, last = r->st.step == r->total;
            r->st.epoch = end_of_epoch ? epoch + 1 : epoch;
            r->st.batch = end_of_epoch ? 0 : k + r->per_step;
            if (s->eval_every ? r->st.step % s->eval_every == 0 || last : end_of_epoch || last)
                rc = validate(r, epoch);
            bool saving = (s->checkpoint_every && r->st.step % s->checkpoint_every == 0) || end_of_epoch || last;
            if (rc == 0 && saving) rc = save_last(r);
            if (rc == 0) rc = check_interrupt(r, saving);
        }
        epoch_plan_free(&plan);
        if (rc != 0) return -1;
    }
    return 0;
}

/* The best model on val, scored again on val (tuning the threshold there
 * when asked, then per genre when asked) and on test; metrics.json, the
 * report and a summary. */
static int finish(Run *r)
{
    const TrainSettings *s = r->s;
    progress_done(&r->prog);
    double train_secs = r->st.elapsed + (wall_seconds() - r->t_start);
    int rc = r->log ? fclose(r->log) : 0;
    r->log = NULL;
    if (rc != 0) return err_set("%s: write failed: %s", r->log_path, strerror(errno));
    if (tb_close(&r->tb) != 0) return -1;
    /* best/ is complete before any rank reads it. */
    if (comm_barrier(r->comm) != 0) return -1;

    backend_close(r->be);
    r->be = NULL;
    weights_free(&r->w);
    if (checkpoint_load_head(&r->w, r->best_dir, r->L) != 0 || !(r->be = backend_open(s->device, &r->w)) ||
        set_precision(r) != 0)
        return -1;
    float threshold = s->threshold;
    int L = r->L, nv = r->val.data.n, nt = r->test.data.n;
    /* Per genre starts from the tuned threshold: never without it. */
    const float *per_genre = s->tune_threshold && s->tune_threshold_per_genre ? r->thresholds : NULL;
    Metrics vm, tm = {0};
    if (evaluate(r, &r->val, r->val_scores, r->val_pred, &vm) != 0) return -1;
    if (s->tune_threshold) {
        threshold = metrics_tune_probability(r->val_scores, r->val.data.y, nv, L, threshold);
        for (int c = 0; c < L; c++) r->thresholds[c] = threshold;
        if (per_genre) metrics_tune_probability_per_label(r->thresholds, r->val_scores, r->val.data.y, nv, L);
        metrics_free(&vm);
        predict_at_least_one_per_label(r->val_pred, r->val_scores, nv, L, r->thresholds);
        metrics_compute(&vm, r->val.data.y, r->val_pred, nv, L);
        if (r->lead && classifier_set_thresholds(r->best_dir, &r->labels, threshold, per_genre) != 0) {
            metrics_free(&vm);
            return -1;
        }
    }
    float *test_scores = xmalloc((size_t)nt * L * sizeof *test_scores);
    uint8_t *test_pred = xmalloc((size_t)nt * L);
    rc = evaluate(r, &r->test, test_scores, test_pred, &tm);
    if (rc == 0 && !r->lead) {
        metrics_free(&vm);
        metrics_free(&tm);
        free(test_scores);
        free(test_pred);
        return 0;
    }
    if (rc == 0) {
        /* Before metrics.json, which marks the run finished: a finished run
         * always has its per-movie predictions (genre sweep compares runs
         * movie by movie). */
        char path[4200];
        snprintf(path, sizeof path, "%s/test_predictions.jsonl", r->out);
        rc = predictions_write(path, &r->test.data, &r->labels, test_scores, test_pred, r->test.enc.lengths);
    }
    if (rc == 0) {
        json_t *mj = json_object();
        json_object_set_new(mj, "val", metrics_to_json(&vm, &r->labels));
        json_object_set_new(mj, "test", metrics_to_json(&tm, &r->labels));
        json_object_set_new(mj, "threshold", json_real_of_float(threshold));
        json_object_set_new(mj, "threshold_tuned", json_boolean(s->tune_threshold));
        if (per_genre)
            json_object_set_new(mj, "genre_thresholds",
                                json_floats_by_name((const char *const *)r->labels.names, per_genre, L));
        char path[4200];
        snprintf(path, sizeof path, "%s/metrics.json", r->out);
        rc = json_write_file(path, mj, JSON_INDENT(2) | JSON_REAL_PRECISION(8));
        json_decref(mj);
    }
    if (rc == 0) {
        char notes[4600], name[128], path[4200];
        snprintf(name, sizeof name, "DistilBERT %s", loss_kind_name(s->loss));
        snprintf(notes, sizeof notes,
                 "Fine-tuned from `%s` for %ld steps (%.0f s, best on val by %s at step %ld), %d training "
                 "movies, batch %d x %d, max_len %d, lr %g, threshold %.2f%s.", s->init, r->st.step,
                 train_secs, s->best_metric, r->st.best_step, r->train.data.n, s->batch_size, s->grad_accum,
                 s->max_len, (double)s->lr, (double)threshold,
                 per_genre ? " (tuned on val, then per genre: see the per-genre report)"
                 : s->tune_threshold ? " (tuned on val)" : "");
        ReportRun run = {.name = name, .notes = notes, .labels = &r->labels, .val = &vm, .test = &tm,
                         .test_data = &r->test.data, .test_scores = test_scores, .test_pred = test_pred,
                         .threshold = &threshold, .genre_thresholds = per_genre,
                         .threshold_tuned = s->tune_threshold,
                         .train_log = r->log_path, .test_lengths = r->test.enc.lengths, .length_unit = "tokens"};
        snprintf(path, sizeof path, "%s/report", r->out);
        rc = report_write(path, &run);
    }
    if (rc == 0) {
        printf("trained %ld steps in %.0f s; best val %s %.4f at step %ld\n", r->st.step, train_secs,
               s->best_metric, !strcmp(s->best_metric, "hamming") ? -r->st.best : r->st.best, r->st.best_step);
        const char *names[] = {"val", "test"};
        const Metrics *ms[] = {&vm, &tm};
        rc = report_compare(NULL, 2, names, ms);
    }
    if (rc == 0) printf("run directory: %s (model in %s/best)\n", r->dest, r->dest);
    metrics_free(&vm);
    metrics_free(&tm);
    free(test_scores);
    free(test_pred);
    return rc;
}

int trainer_run(const TrainSettings *s, const Config *cfg, const char *out, bool resume, bool force)
{
    Comm *own = s->comm ? NULL : comm_open(60.0, NULL);
    if (!s->comm && !own) return -1;
    Run r = {.s = s, .out = out, .dest = out, .comm = s->comm ? s->comm : own};
    r.rank = comm_rank(r.comm);
    r.world = comm_world(r.comm);
    r.dist = r.world > 1 || s->dist_alone;
    r.lead = r.rank == 0;
    interrupt_defer(true);
    int rc = run_dir(&r, resume, force);
    if (rc == 0) rc = run_open(&r, cfg, resume);
    if (rc == 0) rc = train_epochs(&r);
    if (rc == 0) rc = finish(&r);
    else progress_done(&r.prog);
    run_close(&r);
    if (r.replacing) {
        /* The earlier output goes only now that the new run is complete. */
        if (rc == 0) rc = atomic_dir_commit(r.replacing, r.dest);
        else {
            atomic_dir_abort(r.replacing);
            err_set("%s (%s is as it was)", err_msg(), r.dest);
        }
    }
    interrupt_defer(false);
    comm_close(own);
    if (rc != 0 && r.world > 1) err_set("rank %d of %d: %s", r.rank, r.world, err_msg());
    return rc;
}
