/* genre train: fine-tune a pretrained encoder on a prepared dataset.
 *
 * Per step: logits = model(batch); loss, dlogits = loss(logits, labels);
 * grads = backward(dlogits) summed over grad_accum micro-batches;
 * clip to max_grad_norm; AdamW at lr x schedule(step). Validation after
 * every epoch (or every eval_every steps) keeps the best model by the chosen
 * metric in best/; the best is then scored on val and test. last/ holds the
 * newest checkpoint (model, AdamW moments, position in the data order),
 * replaced as a whole every checkpoint_every steps and at each epoch's end;
 * --resume continues from it and ends bit-identical to an uninterrupted run.
 * A NaN or Inf loss or gradient stops the run, naming the step. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "src/core/atomic.h"
#include "src/data/batcher.h"
#include "models/checkpoint.h"
#include "models/classifier.h"
#include "src/core/config.h"
#include "src/core/err.h"
#include "src/core/jsonfile.h"
#include "src/eval/metrics.h"
#include "src/ops/loss.h"
#include "src/core/progress.h"
#include "src/eval/report.h"
#include "src/train/state.h"

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
    {"checkpoint_every", CFG_INT, "0", NULL, "also checkpoint last/ every N steps (0: at epoch ends only)"},
    {"best_metric", CFG_STRING, "\"jaccard\"", "jaccard|f1|micro_f1|macro_f1|accuracy|hamming",
     "validation metric that picks best/ (hamming: lower is better)"},
    {"limit_train", CFG_INT, "0", NULL, "use only the first N training movies (0: all)"},
    {"limit_eval", CFG_INT, "0", NULL, "use only the first N val and test movies (0: all)"},
    {"oversample", CFG_FLOAT, "0.0", NULL, "oversample rare genres with this power (0: off)"},
    {"length_window", CFG_INT, "50", NULL, "batches per length-sorting window (1: none)"},
    {"threshold", CFG_FLOAT, "0.5", NULL, "probability above which a genre is predicted"},
    {"tune_threshold", CFG_BOOL, "false", NULL,
     "replace threshold at the end by the one in 0.05..0.95 that maximises the best model's val Jaccard"},
    {NULL, CFG_INT, NULL, NULL, NULL},
};

static void usage(FILE *f)
{
    fprintf(f, "usage: genre train [--config FILE] [--out DIR] [--device cpu|cuda] [key=value ...]\n"
               "       genre train --resume DIR\n\n"
               "Fine-tunes a pretrained encoder (all-MiniLM-L6-v2 by default, or any\n"
               "HF-format DistilBERT/BERT directory) for multi-label classification of a\n"
               "prepared dataset. The run directory gets config.json (resolved),\n"
               "log.jsonl, last/ (the newest checkpoint with the optimizer state), best/\n"
               "(a model directory: model.safetensors, config.json with the labels,\n"
               "vocab.txt), metrics.json (best on val and test) and report/.\n"
               "--resume continues a stopped run from DIR/last with DIR/config.json and\n"
               "ends exactly as the uninterrupted run would have.\n");
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

/* Replaces dir (the run's last/) by a checkpoint of this moment: the model
 * directory, the AdamW moments and the training state, which records how
 * much of the log (flushed to disk first) belongs to it. */
static void save_last(const DistilBert *m, const LabelSet *labels, const char *vocab, float threshold, FILE *log,
                      const char *log_path, TrainState *st, const char *dir)
{
    if (fflush(log) != 0 || fsync(fileno(log)) != 0)
        die("%s: write failed: %s", log_path, strerror(errno));
    st->log_bytes = ftell(log);
    char *tmp = atomic_dir_begin(dir);
    if (!tmp || classifier_write(m, labels, vocab, threshold, tmp) != 0 || checkpoint_save_optimizer(m, tmp) != 0 ||
        train_state_save(st, tmp) != 0 || atomic_dir_commit(tmp, dir) != 0)
        die_err();
}

int cmd_train(int argc, char **argv)
{
    const char *config_path = NULL, *out = "runs/train", *resume = NULL;
    int n_over = 0, has_out = 0;
    char **over = xmalloc((size_t)argc * sizeof *over);
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(argv[i], "--config") && i + 1 < argc) {
            config_path = argv[++i];
        } else if (!strcmp(argv[i], "--out") && i + 1 < argc) {
            out = argv[++i];
            has_out = 1;
        } else if (!strcmp(argv[i], "--resume") && i + 1 < argc) {
            resume = argv[++i];
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
    char path[4200], last_dir[4200], best_dir[4200], log_path[4200], msg[256];
    if (resume) {
        /* The run's own resolved config, unchanged: anything else would not
         * reproduce the uninterrupted run. */
        if (config_path || has_out || n_over)
            die("--resume %s: takes no --config, --out, --device or overrides (the run's config.json is used)",
                resume);
        out = resume;
        snprintf(path, sizeof path, "%s/config.json", out);
        config_path = path;
    }
    snprintf(last_dir, sizeof last_dir, "%s/last", out);
    snprintf(best_dir, sizeof best_dir, "%s/best", out);
    snprintf(log_path, sizeof log_path, "%s/log.jsonl", out);
    Config *cfg = config_load(schema, config_path, n_over, over);
    if (!cfg) die_err();
    free(over);

    /* Every setting is checked before any work starts. */
    if (!strcmp(cfg_str(cfg, "device"), "cuda"))
        die("device=cuda: the CUDA training backend is not built yet; use device=cpu");
    int batch = (int)cfg_int(cfg, "batch_size"), accum = (int)cfg_int(cfg, "grad_accum");
    int epochs = (int)cfg_int(cfg, "epochs"), max_len = (int)cfg_int(cfg, "max_len");
    long max_steps = cfg_int(cfg, "max_steps"), eval_every = cfg_int(cfg, "eval_every");
    long ckpt_every = cfg_int(cfg, "checkpoint_every");
    uint64_t seed = (uint64_t)cfg_int(cfg, "seed");
    float threshold = (float)cfg_float(cfg, "threshold"), lr = (float)cfg_float(cfg, "lr");
    const char *best_metric = cfg_str(cfg, "best_metric");
    bool tune = cfg_bool(cfg, "tune_threshold");
    if (batch < 1 || accum < 1 || epochs < 1 || max_steps < 0 || eval_every < 0 || ckpt_every < 0)
        die("batch_size, grad_accum and epochs must be >= 1; max_steps, eval_every and checkpoint_every >= 0");
    if (max_len < 2 || max_len > 512) die("max_len must be between 2 and 512");
    if (!(lr > 0) || cfg_float(cfg, "warmup_ratio") < 0 || cfg_float(cfg, "warmup_ratio") >= 1)
        die("lr must be > 0 and warmup_ratio in [0, 1)");
    if (!(threshold > 0 && threshold < 1)) die("threshold must be in (0, 1)");

    /* A resumed run reads its model and vocabulary from its checkpoint. */
    TrainState st = {.best = -1.0};
    const char *init = cfg_str(cfg, "init"), *data_dir = cfg_str(cfg, "data");
    const char *model_src = resume ? last_dir : init;
    if (resume && train_state_load(&st, last_dir) != 0)
        die("--resume %s: no usable checkpoint: %s", resume, err_msg());
    char vocab[4300];
    snprintf(vocab, sizeof vocab, "%s/vocab.txt", model_src);
    Tokenizer *tok = tokenizer_load(model_src);
    if (!tok) die_err();
    LabelSet labels = {0, NULL};
    Part train, val, test;
    load_part(&train, &labels, tok, data_dir, "train", cfg_int(cfg, "limit_train"), max_len);
    load_part(&val, &labels, tok, data_dir, "val", cfg_int(cfg, "limit_eval"), max_len);
    load_part(&test, &labels, tok, data_dir, "test", cfg_int(cfg, "limit_eval"), max_len);
    int L = labels.n_labels;

    DistilBert m;
    if (checkpoint_load(&m, model_src, L, seed) != 0) die_err();
    if (resume && checkpoint_load_optimizer(&m, last_dir) != 0) die_err();
    m.cls_only = true; /* training reads logits only */
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

    FILE *log;
    if (resume) {
        /* Log lines after the checkpoint are replayed by this run. */
        if (truncate(log_path, (off_t)st.log_bytes) != 0)
            die("%s: cannot cut back to the checkpoint's %ld bytes: %s", log_path, st.log_bytes, strerror(errno));
        log = fopen(log_path, "a");
    } else {
        if (make_dirs(out) != 0) die_err();
        snprintf(path, sizeof path, "%s/config.json", out);
        if (config_write(cfg, path) != 0) die_err();
        /* Checkpoints of an earlier run in this directory are not ours. */
        if (remove_tree(last_dir) != 0 || remove_tree(best_dir) != 0) die_err();
        log = fopen(log_path, "w");
    }
    if (!log) die("%s: cannot open: %s", log_path, strerror(errno));

    long steps_per_epoch = ((train.data.n + batch - 1) / batch + accum - 1) / accum;
    long total = steps_per_epoch * epochs;
    if (max_steps > 0 && max_steps < total) total = max_steps;
    long warmup = lr_warmup_steps(cfg_float(cfg, "warmup_ratio"), total);
    AdamW opt = {lr, 0.9f, 0.999f, 1e-8f, (float)cfg_float(cfg, "weight_decay")};

    float *dlogits = xmalloc((size_t)batch * L * sizeof *dlogits);
    float *val_scores = xmalloc((size_t)val.data.n * L * sizeof *val_scores);
    uint8_t *val_pred = xmalloc((size_t)val.data.n * L);
    Batch b;
    batch_alloc(&b, batch, max_len, L);
    Progress prog;
    progress_init(&prog, stderr, total, st.step, 30.0);
    int window = (int)cfg_int(cfg, "length_window");
    double t_start = wall_seconds();
    if (resume) {
        snprintf(msg, sizeof msg, "resuming %s at step %ld of %ld", out, st.step, total);
        progress_message(&prog, msg);
    }

    /* A run that goes wrong stops cleanly here, its last checkpoint kept. */
    char stop[4400] = "";
    for (int epoch = st.epoch; epoch < epochs && st.step < total && !stop[0]; epoch++) {
        EpochPlan plan;
        epoch_plan_train(&plan, &train.enc, batch, seed, epoch, window, weights);
        for (int k = epoch == st.epoch ? st.batch : 0; k < plan.n_batches && st.step < total; k += accum) {
            double t0 = wall_seconds(), loss_sum = 0.0;
            int micro = plan.n_batches - k < accum ? plan.n_batches - k : accum, samples = 0;
            distilbert_zero_grad(&m);
            for (int a = 0; a < micro; a++) {
                batch_fill(&b, &train.enc, &plan, k + a);
                const float *logits = distilbert_forward(&m, b.ids, b.mask, b.B, b.T, true, seed,
                                                         (uint64_t)(st.step * accum + a));
                if (!logits) die_err();
                loss_sum += loss_forward(&loss, dlogits, logits, b.labels, b.B, L, 1.0f / micro);
                distilbert_backward(&m, dlogits);
                samples += b.B;
            }
            double step_loss = loss_sum / micro;
            float rate = lr * lr_linear_schedule(st.step, warmup, total);
            float gnorm = distilbert_adamw_step(&m, &opt, rate, (float)cfg_float(cfg, "max_grad_norm"));
            st.step++;
            if (!isfinite(step_loss) || !isfinite(gnorm)) {
                snprintf(stop, sizeof stop, "step %ld: %s is %s; stopping (the last good checkpoint is in %s)",
                         st.step, isfinite(step_loss) ? "gradient norm" : "loss",
                         isnan(isfinite(step_loss) ? gnorm : step_loss) ? "NaN" : "Inf", last_dir);
                break;
            }
            double sps = samples / (wall_seconds() - t0);
            fprintf(log, "{\"step\": %ld, \"epoch\": %d, \"loss\": %.6f, \"lr\": %.6g, \"grad_norm\": %.6f, \"samples_per_s\": %.2f}\n",
                    st.step, epoch + 1, step_loss, rate, gnorm, sps);
            progress_update(&prog, epoch + 1, epochs, st.step, step_loss, sps);
            int end_of_epoch = k + accum >= plan.n_batches;
            st.epoch = end_of_epoch ? epoch + 1 : epoch;
            st.batch = end_of_epoch ? 0 : k + accum;

            if (eval_every ? st.step % eval_every == 0 || st.step == total : end_of_epoch || st.step == total) {
                Metrics vm;
                evaluate(&m, &val, batch * 2, threshold, val_scores, val_pred, &vm);
                json_t *row = metrics_to_json(&vm, &labels);
                json_object_del(row, "per_label");
                char *s = json_dumps(row, JSON_COMPACT | JSON_REAL_PRECISION(6));
                fprintf(log, "{\"step\": %ld, \"epoch\": %d, \"val\": %s}\n", st.step, epoch + 1, s);
                free(s);
                json_decref(row);
                double score = selection_score(&vm, best_metric);
                snprintf(msg, sizeof msg, "step %ld: val jaccard %.4f f1 %.4f%s", st.step, vm.jaccard, vm.f1,
                         score > st.best ? " (best so far, saved)" : "");
                progress_message(&prog, msg);
                if (score > st.best) {
                    st.best = score;
                    st.best_step = st.step;
                    if (classifier_save(&m, &labels, vocab, threshold, best_dir) != 0) die_err();
                }
                metrics_free(&vm);
            }
            if ((ckpt_every && st.step % ckpt_every == 0) || end_of_epoch || st.step == total) {
                st.elapsed += wall_seconds() - t_start;
                t_start = wall_seconds();
                save_last(&m, &labels, vocab, threshold, log, log_path, &st, last_dir);
            }
        }
        epoch_plan_free(&plan);
    }
    progress_done(&prog);
    double train_secs = st.elapsed + (wall_seconds() - t_start);
    if (fclose(log) != 0) die("%s: write failed: %s", log_path, strerror(errno));

    if (!stop[0]) {
        /* The best model on val, scored again on val and on test. */
        distilbert_free(&m);
        if (checkpoint_load(&m, best_dir, L, 0) != 0) die_err();
        Metrics vm, tm;
        evaluate(&m, &val, batch * 2, threshold, val_scores, val_pred, &vm);
        if (tune) {
            threshold = metrics_tune_probability(val_scores, val.data.y, val.data.n, L, threshold);
            metrics_free(&vm);
            predict_at_least_one(val_pred, val_scores, val.data.n, L, threshold);
            metrics_compute(&vm, val.data.y, val_pred, val.data.n, L);
            if (classifier_set_threshold(best_dir, threshold) != 0) die_err();
        }
        float *test_scores = xmalloc((size_t)test.data.n * L * sizeof *test_scores);
        uint8_t *test_pred = xmalloc((size_t)test.data.n * L);
        evaluate(&m, &test, batch * 2, threshold, test_scores, test_pred, &tm);

        json_t *mj = json_object();
        json_object_set_new(mj, "val", metrics_to_json(&vm, &labels));
        json_object_set_new(mj, "test", metrics_to_json(&tm, &labels));
        json_object_set_new(mj, "threshold", json_real_of_float(threshold));
        json_object_set_new(mj, "threshold_tuned", json_boolean(tune));
        snprintf(path, sizeof path, "%s/metrics.json", out);
        if (json_write_file(path, mj, JSON_INDENT(2) | JSON_REAL_PRECISION(8)) != 0) die_err();
        json_decref(mj);

        char notes[512], name[128];
        snprintf(name, sizeof name, "DistilBERT %s", cfg_str(cfg, "loss.type"));
        snprintf(notes, sizeof notes,
                 "Fine-tuned from `%s` for %ld steps (%.0f s, best on val by %s at step %ld), %d training movies, "
                 "batch %d x %d, max_len %d, lr %g, threshold %.2f%s.", init, st.step, train_secs, best_metric,
                 st.best_step, train.data.n, batch, accum, max_len, (double)lr, (double)threshold,
                 tune ? " (tuned on val)" : "");
        ReportRun run = {.name = name, .notes = notes, .labels = &labels, .val = &vm, .test = &tm,
                         .test_data = &test.data, .test_scores = test_scores, .test_pred = test_pred,
                         .threshold = &threshold, .threshold_tuned = tune,
                         .train_log = log_path, .test_lengths = test.enc.lengths, .length_unit = "tokens"};
        snprintf(path, sizeof path, "%s/report", out);
        if (report_write(path, &run) != 0) die_err();

        printf("trained %ld steps in %.0f s; best val %s %.4f at step %ld\n", st.step, train_secs, best_metric,
               !strcmp(best_metric, "hamming") ? -st.best : st.best, st.best_step);
        const char *names[] = {"val", "test"};
        const Metrics *ms[] = {&vm, &tm};
        if (report_compare(NULL, 2, names, ms) != 0) die_err();
        printf("run directory: %s (model in %s)\n", out, best_dir);

        metrics_free(&vm);
        metrics_free(&tm);
        free(test_scores);
        free(test_pred);
    }
    free(val_scores);
    free(val_pred);
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
    if (stop[0]) {
        fflush(stdout);
        fprintf(stderr, "genre: %s\n", stop);
        fflush(stderr);
        return 1;
    }
    return 0;
}
