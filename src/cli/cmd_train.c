/* genre train: parses and checks the run's settings, then hands them to the
 * trainer (src/train/trainer.h), which says what a run does. */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "models/backend.h"
#include "models/classifier.h"
#include "src/cli/args.h"
#include "src/cli/commands.h"
#include "src/core/config.h"
#include "src/core/err.h"
#include "src/train/trainer.h"

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
    fprintf(f, "usage: genre train [--config FILE] [--out DIR] [--force] [--device cpu|cuda] [key=value ...]\n"
               "       genre train --resume DIR [--device cpu|cuda]\n\n"
               "Fine-tunes a pretrained encoder (all-MiniLM-L6-v2 by default, or any\n"
               "HF-format DistilBERT/BERT directory) for multi-label classification of a\n"
               "prepared dataset. The run directory gets config.json (resolved),\n"
               "log.jsonl, last/ (the newest checkpoint with the optimizer state), best/\n"
               "(a model directory: model.safetensors, config.json with the labels,\n"
               "vocab.txt), metrics.json (best on val and test) and report/.\n"
               "--resume continues a stopped run from DIR/last with DIR/config.json and\n"
               "ends exactly as the uninterrupted run would have (--resume DIR --device D\n"
               "continues it on another backend). --out must be new or\n"
               "empty; --force replaces what is there once the new run has finished.\n"
               "Ctrl-C stops at the next step with a checkpoint to resume from.\n");
    config_print_help(schema);
}

int cmd_train(int argc, char **argv)
{
    const char *config_path = NULL, *out = NULL, *resume = NULL, *device = NULL;
    bool force = false;
    const ArgOpt opts[] = {
        {.name = "--config", .str = &config_path},
        ARG_OUT(&out, false),
        {.name = "--force", .flag = &force},
        {.name = "--resume", .str = &resume},
        {.name = "--device", .str = &device, .choices = "cpu|cuda"},
        {0},
    };
    Args a = args_parse(&(ArgSpec){.cmd = "train", .opts = opts, .usage = usage, .overrides = true}, argc, argv);
    bool has_out = out != NULL;
    if (!out) out = "runs/train";
    /* Room for --device and the two absolute-path overrides below. */
    char **over = xmalloc((size_t)(a.n_overrides + 3) * sizeof *over), device_kv[64];
    int n_over = a.n_overrides;
    memcpy(over, a.overrides, (size_t)n_over * sizeof *over);
    if (device && !resume) {
        snprintf(device_kv, sizeof device_kv, "device=%s", device); /* after key=value: the option wins */
        over[n_over++] = device_kv;
    }
    char path[4200];
    if (resume) {
        /* The run's own resolved config, unchanged: anything else would not
         * reproduce the uninterrupted run. Only where it runs may change:
         * checkpoints are the same files whichever backend wrote them. */
        if (config_path || has_out || n_over || force)
            die("--resume %s: takes no --config, --out, --force or overrides (the run's config.json is used; "
                "--device may change)", resume);
        out = resume;
        snprintf(path, sizeof path, "%s/config.json", out);
        config_path = path;
    }
    Config *cfg = config_load(schema, config_path, n_over, over);
    if (!cfg) die_err();
    if (!resume) {
        /* The run records where its data and model are absolutely, so that a
         * resume from another directory reads the same ones. init means what
         * eval's --model means: a run directory stands for its best/. */
        char init[4096];
        if (classifier_dir(cfg_str(cfg, "init"), init, sizeof init) != 0) die("init=%s", err_msg());
        const char *keys[2] = {"data", "init"}, *paths[2] = {cfg_str(cfg, "data"), init};
        for (int k = 0; k < 2; k++) {
            char *abs = realpath(paths[k], NULL), *o = NULL;
            if (!abs) die("%s=%s: cannot open: %s", keys[k], paths[k], strerror(errno));
            if (asprintf(&o, "%s=%s", keys[k], abs) < 0) die("out of memory");
            over[n_over++] = o;
            free(abs);
        }
        config_free(cfg);
        cfg = config_load(schema, config_path, n_over, over);
        if (!cfg) die_err();
        free(over[--n_over]);
        free(over[--n_over]);
    }
    free(over);
    args_free(&a);

    /* Every setting is checked before any work starts. */
    if (!device) device = cfg_str(cfg, "device");
    if (backend_available(device) != 0) die_err();
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

    TrainSettings s = {
        .data = cfg_str(cfg, "data"), .init = cfg_str(cfg, "init"), .device = device,
        .alpha = (float)cfg_float(cfg, "loss.alpha"), .gamma = (float)cfg_float(cfg, "loss.gamma"),
        .logw_as_pos_weight = !strcmp(cfg_str(cfg, "loss.logw_as"), "pos_weight"),
        .batch_size = batch, .grad_accum = accum, .epochs = epochs, .max_len = max_len,
        .max_steps = max_steps, .lr = lr, .weight_decay = (float)cfg_float(cfg, "weight_decay"),
        .warmup_ratio = cfg_float(cfg, "warmup_ratio"),
        .max_grad_norm = (float)cfg_float(cfg, "max_grad_norm"), .seed = seed,
        .eval_every = eval_every, .checkpoint_every = ckpt_every, .best_metric = best_metric,
        .limit_train = cfg_int(cfg, "limit_train"), .limit_eval = cfg_int(cfg, "limit_eval"),
        .oversample = cfg_float(cfg, "oversample"), .length_window = (int)cfg_int(cfg, "length_window"),
        .threshold = threshold, .tune_threshold = tune,
    };
    loss_kind_parse(cfg_str(cfg, "loss.type"), &s.loss);
    int rc = trainer_run(&s, cfg, out, resume != NULL, force);
    config_free(cfg);
    if (rc != 0) die_err();
    return 0;
}
