/* genre train: fine-tune a pretrained encoder on a prepared dataset.
 *
 * Per step: logits = model(batch); loss, dlogits = loss(logits, labels);
 * grads = backward(dlogits) summed over grad_accum micro-batches;
 * clip to max_grad_norm; AdamW at lr x schedule(step). Validation after
 * every epoch (or every eval_every steps) keeps the best model by Jaccard in
 * best/; the best is then scored on test. A NaN or Inf loss or gradient
 * stops the run, naming the step. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "atomic.h"
#include "batcher.h"
#include "checkpoint.h"
#include "classifier.h"
#include "config.h"
#include "err.h"
#include "metrics.h"
#include "ops/loss.h"
#include "progress.h"
#include "report.h"

static const CfgKey schema[] = {
    {"data", CFG_STRING, NULL, NULL, "prepared data directory (genre prepare --out)"},
    {"init", CFG_STRING, "\".cache/models/all-MiniLM-L6-v2\"", NULL,
     "pretrained HF-format model directory (DistilBERT or BERT architecture)"},
    {"device", CFG_STRING, "\"cpu\"", "cpu|cuda", "where to train"},
    {"precision", CFG_STRING, "\"fp32\"", "fp32", "arithmetic precision"},
    {"loss.type", CFG_STRING, "\"focal\"", "bce|bce_logw|focal", "training loss"},
    {"loss.alpha", CFG_FLOAT, "0.375", NULL, "focal: weight of positives (negative: none)"},
    {"loss.gamma", CFG_FLOAT, "2.0", NULL, "focal: focusing exponent"},
    {"loss.logw_as", CFG_STRING, "\"pos_weight\"", "pos_weight|weight", "bce_logw: how the weights apply"},
    {"batch_size", CFG_INT, "16", NULL, "movies per micro-batch"},
    {"grad_accum", CFG_INT, "1", NULL, "micro-batches per optimizer step"},
    {"lr", CFG_FLOAT, "2e-5", NULL, "peak learning rate"},
    {"weight_decay", CFG_FLOAT, "0.01", NULL, "AdamW decoupled weight decay"},
    {"warmup_ratio", CFG_FLOAT, "0.0", NULL, "share of steps with linear warmup"},
    {"max_grad_norm", CFG_FLOAT, "1.0", NULL, "clip the global gradient norm (0: off)"},
    {"epochs", CFG_INT, "3", NULL, "passes over the training set"},
    {"max_steps", CFG_INT, "0", NULL, "stop after this many optimizer steps (0: no limit)"},
    {"max_len", CFG_INT, "128", NULL, "tokens per text, [CLS] and [SEP] included"},
    {"seed", CFG_INT, "42", NULL, "seed of the data order, dropout and a new head"},
    {"eval_every", CFG_INT, "0", NULL, "validate every N steps (0: after each epoch)"},
    {"limit_train", CFG_INT, "0", NULL, "use only the first N training movies (0: all)"},
    {"limit_eval", CFG_INT, "0", NULL, "use only the first N val and test movies (0: all)"},
    {"oversample", CFG_FLOAT, "0.0", NULL, "oversample rare genres with this power (0: off)"},
    {"length_window", CFG_INT, "50", NULL, "batches per length-sorting window (1: none)"},
    {"threshold", CFG_FLOAT, "0.5", NULL, "probability above which a genre is predicted"},
    {NULL, CFG_INT, NULL, NULL, NULL},
};

static void usage(FILE *f)
{
    fprintf(f, "usage: genre train [--config FILE] [--out DIR] [key=value ...]\n\n"
               "Fine-tunes a pretrained encoder (all-MiniLM-L6-v2 by default, or any\n"
               "HF-format DistilBERT/BERT directory) for multi-label classification of a\n"
               "prepared dataset. The run directory gets config.json (resolved),\n"
               "log.jsonl, best/ (a model directory: model.safetensors, config.json with\n"
               "the labels, vocab.txt), metrics.json (best on val and test) and report/.\n");
    config_print_help(schema);
}

typedef struct {
    Encoded enc;
    Dataset data;
} Part;

static void load_part(Part *p, LabelSet *ls, const Tokenizer *tok, const char *dir,
                      const char *name, long limit, int max_len)
{
    LabelSet own;
    if (dataset_load_part(&p->data, &own, dir, name) != 0) die_err();
    if (ls->n_labels == 0) {
        *ls = own;
    } else {
        if (own.n_labels != ls->n_labels) die("%s: labels.txt changed while reading", dir);
        labels_free(&own);
    }
    if (limit > 0 && limit < p->data.n) dataset_truncate(&p->data, (int)limit);
    if (p->data.n == 0) die("%s/%s.jsonl: no movies", dir, name);
    if (encoded_build(&p->enc, tok, &p->data, max_len) != 0) die("%s/%s.jsonl: %s", dir, name, err_msg());
}

/* Scores a part and computes its metrics; scores and predictions kept. */
static void evaluate(DistilBert *m, const Part *p, int batch_size, float threshold, float *scores,
                     uint8_t *pred, Metrics *out)
{
    int L = m->cfg.num_labels;
    classifier_scores(m, &p->enc, batch_size, scores);
    predict_at_least_one(pred, scores, p->data.n, L, threshold);
    metrics_compute(out, p->data.y, pred, p->data.n, L);
}

static void copy_file(const char *from, const char *to)
{
    FILE *f = fopen(from, "rb");
    if (!f) die("%s: cannot open: %s", from, strerror(errno));
    AtomicFile *af = atomic_open(to);
    if (!af) die_err();
    char buf[1 << 16];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0) fwrite(buf, 1, n, atomic_stream(af));
    if (ferror(f)) die("%s: read error", from);
    fclose(f);
    if (atomic_commit(af) != 0) die_err();
}

static void write_json(const char *path, json_t *o)
{
    char *s = json_dumps(o, JSON_INDENT(2) | JSON_REAL_PRECISION(8));
    size_t n = strlen(s);
    s = xrealloc(s, n + 2);
    s[n] = '\n';
    if (atomic_write_file(path, s, n + 1) != 0) die_err();
    free(s);
}

int cmd_train(int argc, char **argv)
{
    const char *config_path = NULL, *out = "runs/train";
    int n_over = 0;
    char **over = xmalloc((size_t)argc * sizeof *over);
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(argv[i], "--config") && i + 1 < argc) {
            config_path = argv[++i];
        } else if (!strcmp(argv[i], "--out") && i + 1 < argc) {
            out = argv[++i];
        } else if (!strcmp(argv[i], "--device") && i + 1 < argc) {
            static char dev[64];
            snprintf(dev, sizeof dev, "device=%s", argv[++i]);
            over[n_over++] = dev;
        } else if (config_is_override(argv[i])) {
            over[n_over++] = argv[i];
        } else {
            fprintf(stderr, "genre train: unexpected argument '%s'\n", argv[i]);
            usage(stderr);
            return 2;
        }
    }
    Config *cfg = config_load(schema, config_path, n_over, over);
    if (!cfg) die_err();
    free(over);

    /* Every setting is checked before any work starts. */
    if (!strcmp(cfg_str(cfg, "device"), "cuda"))
        die("device=cuda: the CUDA training backend is not built yet; use device=cpu");
    int batch = (int)cfg_int(cfg, "batch_size"), accum = (int)cfg_int(cfg, "grad_accum");
    int epochs = (int)cfg_int(cfg, "epochs"), max_len = (int)cfg_int(cfg, "max_len");
    long max_steps = cfg_int(cfg, "max_steps"), eval_every = cfg_int(cfg, "eval_every");
    uint64_t seed = (uint64_t)cfg_int(cfg, "seed");
    float threshold = (float)cfg_float(cfg, "threshold"), lr = (float)cfg_float(cfg, "lr");
    if (batch < 1 || accum < 1 || epochs < 1 || max_steps < 0 || eval_every < 0)
        die("batch_size, grad_accum and epochs must be >= 1; max_steps and eval_every >= 0");
    if (max_len < 2 || max_len > 512) die("max_len must be between 2 and 512");
    if (!(lr > 0) || cfg_float(cfg, "warmup_ratio") < 0 || cfg_float(cfg, "warmup_ratio") >= 1)
        die("lr must be > 0 and warmup_ratio in [0, 1)");
    if (!(threshold > 0 && threshold < 1)) die("threshold must be in (0, 1)");

    const char *init = cfg_str(cfg, "init"), *data_dir = cfg_str(cfg, "data");
    Tokenizer *tok = tokenizer_load(init);
    if (!tok) die_err();
    LabelSet labels = {0, NULL};
    Part train, val, test;
    load_part(&train, &labels, tok, data_dir, "train", cfg_int(cfg, "limit_train"), max_len);
    load_part(&val, &labels, tok, data_dir, "val", cfg_int(cfg, "limit_eval"), max_len);
    load_part(&test, &labels, tok, data_dir, "test", cfg_int(cfg, "limit_eval"), max_len);
    int L = labels.n_labels;

    DistilBert m;
    if (checkpoint_load(&m, init, L, seed) != 0) die_err();
    if (max_len > m.cfg.max_position_embeddings)
        die("max_len %d exceeds the model's %d positions", max_len, m.cfg.max_position_embeddings);

    Loss loss = {.alpha = (float)cfg_float(cfg, "loss.alpha"), .gamma = (float)cfg_float(cfg, "loss.gamma")};
    loss_kind_parse(cfg_str(cfg, "loss.type"), &loss.kind);
    float *logw = xmalloc((size_t)L * sizeof *logw);
    long *counts = xcalloc((size_t)L, sizeof *counts);
    for (int i = 0; i < train.data.n; i++)
        for (int c = 0; c < L; c++) counts[c] += train.data.y[(size_t)i * L + c];
    loss_logw_weights(logw, counts, train.data.n, L);
    loss.weights = logw;
    loss.as_pos_weight = !strcmp(cfg_str(cfg, "loss.logw_as"), "pos_weight");

    double *weights = NULL;
    if (cfg_float(cfg, "oversample") > 0) {
        weights = xmalloc((size_t)train.data.n * sizeof *weights);
        oversample_weights(weights, &train.enc, cfg_float(cfg, "oversample"));
    }

    char path[4200];
    if (make_dirs(out) != 0) die_err();
    snprintf(path, sizeof path, "%s/config.json", out);
    char *resolved = config_dump(cfg);
    size_t rn = strlen(resolved);
    resolved = xrealloc(resolved, rn + 2);
    strcpy(resolved + rn, "\n");
    if (atomic_write_file(path, resolved, rn + 1) != 0) die_err();
    free(resolved);

    long steps_per_epoch = ((train.data.n + batch - 1) / batch + accum - 1) / accum;
    long total = steps_per_epoch * epochs;
    if (max_steps > 0 && max_steps < total) total = max_steps;
    long warmup = lr_warmup_steps(cfg_float(cfg, "warmup_ratio"), total);
    AdamW opt = {lr, 0.9f, 0.999f, 1e-8f, (float)cfg_float(cfg, "weight_decay")};

    snprintf(path, sizeof path, "%s/log.jsonl", out);
    AtomicFile *log_af = atomic_open(path);
    if (!log_af) die_err();
    FILE *log = atomic_stream(log_af);

    float *dlogits = xmalloc((size_t)batch * L * sizeof *dlogits);
    float *val_scores = xmalloc((size_t)val.data.n * L * sizeof *val_scores);
    uint8_t *val_pred = xmalloc((size_t)val.data.n * L);
    float *best_val_scores = xmalloc((size_t)val.data.n * L * sizeof *best_val_scores);
    Batch b;
    batch_alloc(&b, batch, max_len, L);
    Progress prog;
    progress_init(&prog, stderr, total, 0, 30.0);
    double best = -1.0;
    long step = 0, best_step = 0;
    int window = (int)cfg_int(cfg, "length_window");
    char best_dir[4200], msg[256];
    snprintf(best_dir, sizeof best_dir, "%s/best", out);
    double t_start = wall_seconds();

    for (int epoch = 0; epoch < epochs && step < total; epoch++) {
        EpochPlan plan;
        epoch_plan_train(&plan, &train.enc, batch, seed, epoch, window, weights);
        for (int k = 0; k < plan.n_batches && step < total; k += accum) {
            double t0 = wall_seconds(), loss_sum = 0.0;
            int micro = plan.n_batches - k < accum ? plan.n_batches - k : accum, samples = 0;
            distilbert_zero_grad(&m);
            for (int a = 0; a < micro; a++) {
                batch_fill(&b, &train.enc, &plan, k + a);
                const float *logits = distilbert_forward(&m, b.ids, b.mask, b.B, b.T, true, seed,
                                                         (uint64_t)(step * accum + a));
                if (!logits) die_err();
                loss_sum += loss_forward(&loss, dlogits, logits, b.labels, b.B, L, 1.0f / micro);
                distilbert_backward(&m, dlogits);
                samples += b.B;
            }
            double step_loss = loss_sum / micro;
            float rate = lr * lr_linear_schedule(step, warmup, total);
            float gnorm = distilbert_adamw_step(&m, &opt, rate, (float)cfg_float(cfg, "max_grad_norm"));
            step++;
            if (!isfinite(step_loss) || !isfinite(gnorm))
                die("step %ld: %s is %s; stopping (best model so far, if any, is in %s)", step,
                    isfinite(step_loss) ? "gradient norm" : "loss",
                    isnan(isfinite(step_loss) ? gnorm : step_loss) ? "NaN" : "Inf", best_dir);
            double sps = samples / (wall_seconds() - t0);
            fprintf(log, "{\"step\": %ld, \"epoch\": %d, \"loss\": %.6f, \"lr\": %.6g, \"grad_norm\": %.6f, \"samples_per_s\": %.2f}\n",
                    step, epoch + 1, step_loss, rate, gnorm, sps);
            progress_update(&prog, epoch + 1, epochs, step, step_loss, sps);

            int end_of_epoch = k + accum >= plan.n_batches || step == total;
            if (eval_every ? step % eval_every == 0 || step == total : end_of_epoch) {
                Metrics vm;
                evaluate(&m, &val, batch * 2, threshold, val_scores, val_pred, &vm);
                json_t *row = metrics_to_json(&vm, &labels);
                json_object_del(row, "per_label");
                char *s = json_dumps(row, JSON_COMPACT | JSON_REAL_PRECISION(6));
                fprintf(log, "{\"step\": %ld, \"epoch\": %d, \"val\": %s}\n", step, epoch + 1, s);
                free(s);
                json_decref(row);
                snprintf(msg, sizeof msg, "step %ld: val jaccard %.4f f1 %.4f%s", step, vm.jaccard, vm.f1,
                         vm.jaccard > best ? " (best so far, saved)" : "");
                progress_message(&prog, msg);
                if (vm.jaccard > best) {
                    best = vm.jaccard;
                    best_step = step;
                    memcpy(best_val_scores, val_scores, (size_t)val.data.n * L * sizeof *val_scores);
                    if (checkpoint_save(&m, best_dir, (const char *const *)labels.names) != 0) die_err();
                    char from[4300], to[4300];
                    snprintf(from, sizeof from, "%s/vocab.txt", init);
                    snprintf(to, sizeof to, "%s/vocab.txt", best_dir);
                    copy_file(from, to);
                }
                metrics_free(&vm);
            }
        }
        epoch_plan_free(&plan);
    }
    progress_done(&prog);
    double train_secs = wall_seconds() - t_start;
    fflush(log);
    if (atomic_commit(log_af) != 0) die_err();

    /* The best model on val (its val scores kept), scored on test. */
    distilbert_free(&m);
    if (checkpoint_load(&m, best_dir, L, 0) != 0) die_err();
    Metrics vm, tm;
    predict_at_least_one(val_pred, best_val_scores, val.data.n, L, threshold);
    metrics_compute(&vm, val.data.y, val_pred, val.data.n, L);
    float *test_scores = xmalloc((size_t)test.data.n * L * sizeof *test_scores);
    uint8_t *test_pred = xmalloc((size_t)test.data.n * L);
    evaluate(&m, &test, batch * 2, threshold, test_scores, test_pred, &tm);

    json_t *mj = json_object();
    json_object_set_new(mj, "val", metrics_to_json(&vm, &labels));
    json_object_set_new(mj, "test", metrics_to_json(&tm, &labels));
    snprintf(path, sizeof path, "%s/metrics.json", out);
    write_json(path, mj);
    json_decref(mj);

    char notes[512], name[128];
    snprintf(name, sizeof name, "DistilBERT %s", cfg_str(cfg, "loss.type"));
    snprintf(notes, sizeof notes,
             "Fine-tuned from `%s` for %ld steps (%.0f s, best on val at step %ld), %d training movies, "
             "batch %d x %d, max_len %d, lr %g.", init, step, train_secs, best_step, train.data.n, batch,
             accum, max_len, (double)lr);
    ReportRun run = {.name = name, .notes = notes, .labels = &labels, .val = &vm, .test = &tm,
                     .test_data = &test.data, .test_scores = test_scores, .test_pred = test_pred};
    snprintf(path, sizeof path, "%s/report", out);
    if (report_write(path, &run) != 0) die_err();

    printf("trained %ld steps in %.0f s; best val Jaccard %.4f at step %ld\n", step, train_secs, best, best_step);
    const char *names[] = {"val", "test"};
    const Metrics *ms[] = {&vm, &tm};
    if (report_compare(NULL, 2, names, ms) != 0) die_err();
    printf("run directory: %s (model in %s)\n", out, best_dir);

    metrics_free(&vm);
    metrics_free(&tm);
    free(test_scores);
    free(test_pred);
    free(val_scores);
    free(val_pred);
    free(best_val_scores);
    free(dlogits);
    free(weights);
    free(logw);
    free(counts);
    batch_free(&b);
    distilbert_free(&m);
    Part *parts[] = {&train, &val, &test};
    for (int i = 0; i < 3; i++) {
        encoded_free(&parts[i]->enc);
        dataset_free(&parts[i]->data);
    }
    labels_free(&labels);
    tokenizer_free(tok);
    config_free(cfg);
    return 0;
}
