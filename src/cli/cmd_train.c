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
#include "src/dist/comm.h"
#include "src/dist/launch.h"
#include "src/train/trainer.h"

static const CfgKey schema[] = {
    {"data", CFG_STRING, NULL, NULL, "prepared data directory (genre prepare --out)"},
    {"init", CFG_STRING, "\".cache/models/all-MiniLM-L6-v2\"", NULL,
     "pretrained HF-format model directory (DistilBERT or BERT architecture)"},
    {"device", CFG_STRING, "\"cpu\"", "cpu|cuda", "where to train"},
    {"precision", CFG_STRING, "\"auto\"", "auto|bf16|fp32",
     "arithmetic: bf16 mixed precision (device=cuda; fp32 master weights, moments and loss), fp32, or "
     "auto: bf16 on a GPU with bf16 tensor cores, else fp32"},
    {"tf32", CFG_BOOL, "false", NULL,
     "device=cuda, precision fp32: GEMMs on TF32 tensor cores (inputs rounded to 10 mantissa bits, fp32 sums)"},
    {"cuda_graphs", CFG_BOOL, "true", NULL,
     "device=cuda: replay each step's kernels as CUDA graphs, captured once per batch shape (false: launch them "
     "one by one; the same bits either way)"},
    {"loss.type", CFG_STRING, "\"focal\"", "bce|bce_logw|focal|asl", "training loss (asl: asymmetric loss)"},
    {"loss.alpha", CFG_FLOAT, "0.375", "-1 or [0, 1]", "focal: weight of positives (-1: none)"},
    {"loss.gamma", CFG_FLOAT, "2.0", "[0, 10]", "focal: focusing exponent"},
    {"loss.logw_as", CFG_STRING, "\"pos_weight\"", "pos_weight|weight", "bce_logw: how the weights apply"},
    {"loss.gamma_pos", CFG_FLOAT, "0.0", "[0, 10]", "asl: focusing exponent of positives"},
    {"loss.gamma_neg", CFG_FLOAT, "4.0", "[0, 10]", "asl: focusing exponent of negatives"},
    {"loss.clip", CFG_FLOAT, "0.05", "[0, 1)", "asl: probability margin below which negatives cost nothing"},
    {"loss.class_weights", CFG_STRING, "\"none\"", "none|effective_number",
     "bce, focal, asl: weight each genre by its inverse effective number of samples (Cui et al. 2019)"},
    {"loss.beta", CFG_FLOAT, "0.999", "[0, 1)", "class_weights=effective_number: its beta"},
    {"batch_size", CFG_INT, "16", "[1, 4096]", "movies per micro-batch"},
    {"grad_accum", CFG_INT, "1", "[1, 4096]", "micro-batches per optimizer step"},
    {"lr", CFG_FLOAT, "2e-5", "(0, inf)", "peak learning rate"},
    {"weight_decay", CFG_FLOAT, "0.01", "[0, 1]", "AdamW decoupled weight decay"},
    {"warmup_ratio", CFG_FLOAT, "0.0", "[0, 1)", "share of steps with linear warmup"},
    {"max_grad_norm", CFG_FLOAT, "1.0", "[0, inf)", "clip the global gradient norm (0: off)"},
    {"epochs", CFG_INT, "3", "[1, 1000]", "passes over the training set"},
    {"max_steps", CFG_INT, "0", "[0, 1000000000]", "stop after this many optimizer steps (0: no limit)"},
    {"max_len", CFG_INT, "128", "[2, 512]", "tokens per text, [CLS] and [SEP] included"},
    {"seed", CFG_INT, "42", "[0, 9223372036854775807]", "seed of the data order, dropout and a new head"},
    {"eval_every", CFG_INT, "0", "[0, 1000000000]", "validate every N steps (0: after each epoch)"},
    {"checkpoint_every", CFG_INT, "0", "[0, 1000000000]", "also checkpoint last/ every N steps (0: at epoch ends only)"},
    {"best_metric", CFG_STRING, "\"jaccard\"", "jaccard|f1|micro_f1|macro_f1|accuracy|hamming",
     "validation metric that picks best/ (hamming: lower is better)"},
    {"limit_train", CFG_INT, "0", "[0, 1000000000]", "use only the first N training movies (0: all)"},
    {"limit_eval", CFG_INT, "0", "[0, 1000000000]", "use only the first N val and test movies (0: all)"},
    {"oversample", CFG_FLOAT, "0.0", "[0, 10]", "oversample rare genres with this power (0: off)"},
    {"length_window", CFG_INT, "50", "[1, 100000]", "batches per length-sorting window (1: none)"},
    {"threshold", CFG_FLOAT, "0.5", "(0, 1)", "probability above which a genre is predicted"},
    {"shard_optimizer", CFG_BOOL, "false", NULL,
     "data parallel: each rank keeps the AdamW moments of its shard alone (ZeRO-1)"},
    {"tune_threshold", CFG_BOOL, "false", NULL,
     "replace threshold at the end by the one in 0.05..0.95 that maximises the best model's val Jaccard"},
    {"tune_threshold_per_genre", CFG_BOOL, "false", NULL,
     "then give each genre its own threshold, tuned on val from that one (needs tune_threshold=true)"},
    {"tensorboard", CFG_BOOL, "true", NULL, "also write the scalars as TensorBoard event files in RUN/tb/"},
    {"drop_labels", CFG_LIST, "[]", NULL,
     "genres removed from train, val and test; movies left without a genre are dropped"},
    {"min_words", CFG_INT, "0", "[0, 100000]", "drop training movies of fewer words (0: off)"},
    {"max_words", CFG_INT, "0", "[0, 100000]", "drop training movies of more words (0: off)"},
    {"max_nonword_share", CFG_FLOAT, "1.0", "(0, 1]",
     "drop training movies whose share of non-word tokens (URLs, markup) is above this (1: off)"},
    {"strip_common_words", CFG_INT, "0", "[0, 100000]",
     "remove from every text the N words most common to every genre's training texts (0: off)"},
    {NULL, CFG_INT, NULL, NULL, NULL},
};
const CfgKey *const train_schema = schema;

static void usage(FILE *f)
{
    fprintf(f, "usage: genre train [--config FILE] [--out DIR] [--force] [--device cpu|cuda] [key=value ...]\n"
               "       genre train --resume DIR [--device cpu|cuda]\n"
               "       (either with [--procs N | --gpus N] [--dist-timeout S] [--rendezvous SPEC] [--dist-alone])\n\n"
               "Fine-tunes a pretrained encoder (all-MiniLM-L6-v2 by default, or any\n"
               "HF-format DistilBERT/BERT directory) for multi-label classification of a\n"
               "prepared dataset. The run directory gets config.json (resolved),\n"
               "log.jsonl, last/ (the newest checkpoint with the optimizer state), best/\n"
               "(a model directory: model.safetensors, config.json with the labels,\n"
               "vocab.txt), metrics.json (best on val and test), report/ and tb/\n"
               "(TensorBoard event files: tensorboard --logdir DIR).\n"
               "--resume continues a stopped run from DIR/last with DIR/config.json and\n"
               "ends exactly as the uninterrupted run would have (--resume DIR --device D\n"
               "continues it on another backend). --out must be new or\n"
               "empty; --force replaces what is there once the new run has finished.\n"
               "Ctrl-C stops at the next step with a checkpoint to resume from.\n"
               "Data parallel: under mpirun or srun (--mpi=pmix) every rank trains its\n"
               "share of each step; --procs N (cpu) or --gpus N (cuda) starts N local\n"
               "ranks through mpirun. batch_size is one rank's micro-batch: a step is\n"
               "batch_size x grad_accum x ranks movies. A rank silent for --dist-timeout\n"
               "seconds (default 60) ends the job. Ranks no MPI launcher started (srun\n"
               "without PMI, or SLURM_PROCID/SLURM_NTASKS/SLURM_LOCALID set by hand) join\n"
               "through NCCL, rank 0's id shared by --rendezvous file:PATH or\n"
               "tcp:HOST:PORT (default under srun: tcp on the step's first node).\n"
               "--dist-alone: a process training alone takes the data-parallel path all\n"
               "the same (on cuda, the NCCL sums over one GPU); it must change no bit.\n");
    config_print_help(schema);
}

/* --procs N / --gpus N: this command again, without them, as N ranks
 * started by mpirun. Does not return. */
static _Noreturn void launch_ranks(int argc, char **argv, long procs, long gpus, const char *device)
{
    if (procs && gpus) args_error("train", "--procs and --gpus exclude each other (--procs: cpu, --gpus: cuda)");
    if (gpus && device && strcmp(device, "cuda")) args_error("train", "--gpus runs on cuda, not --device %s", device);
    if (comm_launched()) die("--procs/--gpus inside an MPI job: the launcher has started the ranks already");
    char **args = xcalloc((size_t)argc + 3, sizeof *args);
    int n = 0;
    args[n++] = "train";
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--procs") || !strcmp(argv[i], "--gpus")) {
            i++;
            continue;
        }
        args[n++] = argv[i];
    }
    if (gpus && !device) {
        args[n++] = "--device";
        args[n++] = "cuda";
    }
    dist_launch((int)(procs ? procs : gpus), args);
    die_err();
}

Config *train_config_resolve(const char *what, int n_layers, const CfgLayer *layers)
{
    Config *cfg = config_load_layers(schema, what, n_layers, layers);
    if (!cfg) return NULL;
    /* Said before any path is looked at, and here so that genre sweep
     * refuses such a run when it loads the sweep, not when the run starts. */
    if (cfg_bool(cfg, "tune_threshold_per_genre") && !cfg_bool(cfg, "tune_threshold")) {
        err_set("%s%stune_threshold_per_genre=true needs tune_threshold=true (the per-genre thresholds start "
                "from the single tuned one)", what ? what : "", what ? ": " : "");
        config_free(cfg);
        return NULL;
    }
    /* The run records where its data and model are absolutely, so that a
     * resume from another directory reads the same ones. init means what
     * eval's --model means: a run directory stands for its best/. */
    char init[4096], *over[2] = {NULL, NULL};
    int rc = 0;
    if (classifier_dir(cfg_str(cfg, "init"), init, sizeof init) != 0) rc = err_set("init=%s", err_msg());
    const char *keys[2] = {"data", "init"}, *paths[2] = {cfg_str(cfg, "data"), init};
    for (int k = 0; k < 2 && rc == 0; k++) {
        char *abs = realpath(paths[k], NULL);
        if (!abs) rc = err_set("%s=%s: cannot open: %s", keys[k], paths[k], strerror(errno));
        else if (asprintf(&over[k], "%s=%s", keys[k], abs) < 0) die("out of memory");
        free(abs);
    }
    Config *resolved = NULL;
    if (rc == 0) {
        CfgLayer *all = xmalloc((size_t)(n_layers + 1) * sizeof *all);
        memcpy(all, layers, (size_t)n_layers * sizeof *all);
        all[n_layers] = (CfgLayer){.n_overrides = 2, .overrides = over};
        resolved = config_load_layers(schema, what, n_layers + 1, all);
        free(all);
    }
    free(over[0]);
    free(over[1]);
    config_free(cfg);
    return resolved;
}

int cmd_train(int argc, char **argv)
{
    const char *config_path = NULL, *out = NULL, *resume = NULL, *device = NULL;
    bool force = false, dist_alone = false;
    long procs = 0, gpus = 0;
    double timeout = 60.0;
    const char *rendezvous = NULL;
    const ArgOpt opts[] = {
        {.name = "--config", .str = &config_path},
        ARG_OUT(&out, false),
        {.name = "--force", .flag = &force},
        {.name = "--resume", .str = &resume},
        {.name = "--device", .str = &device, .choices = "cpu|cuda"},
        {.name = "--procs", .num = &procs, .range = "[1, 4096]"},
        {.name = "--gpus", .num = &gpus, .range = "[1, 4096]"},
        {.name = "--dist-timeout", .real = &timeout, .range = "[1, 86400]"},
        {.name = "--rendezvous", .str = &rendezvous},
        {.name = "--dist-alone", .flag = &dist_alone},
        {0},
    };
    Args a = args_parse(&(ArgSpec){.cmd = "train", .opts = opts, .usage = usage, .overrides = true}, argc, argv);
    if (procs || gpus) launch_ranks(argc, argv, procs, gpus, device);
    bool has_out = out != NULL;
    if (!out) out = "runs/train";
    /* Room for --device. */
    char **over = xmalloc((size_t)(a.n_overrides + 1) * sizeof *over), device_kv[64];
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
    Config *cfg;
    if (resume) {
        cfg = config_load(schema, config_path, n_over, over);
    } else {
        CfgLayer layers[2] = {{.path = config_path}, {.n_overrides = n_over, .overrides = over}};
        cfg = train_config_resolve(config_path, config_path ? 2 : 1, config_path ? layers : layers + 1);
    }
    if (!cfg) die_err();
    free(over);
    args_free(&a);

    /* Every setting is checked before any work starts: each key against its
     * range by config_load, the device here, max_len against the model's
     * positions by the trainer. */
    if (!device) device = cfg_str(cfg, "device");
    if (backend_available(device) != 0) die_err();
    TrainSettings s = {
        .data = cfg_str(cfg, "data"), .init = cfg_str(cfg, "init"), .device = device,
        .alpha = (float)cfg_float(cfg, "loss.alpha"), .gamma = (float)cfg_float(cfg, "loss.gamma"),
        .logw_as_pos_weight = !strcmp(cfg_str(cfg, "loss.logw_as"), "pos_weight"),
        .gamma_pos = (float)cfg_float(cfg, "loss.gamma_pos"), .gamma_neg = (float)cfg_float(cfg, "loss.gamma_neg"),
        .clip = (float)cfg_float(cfg, "loss.clip"),
        .class_balanced = !strcmp(cfg_str(cfg, "loss.class_weights"), "effective_number"),
        .cb_beta = cfg_float(cfg, "loss.beta"),
        .batch_size = (int)cfg_int(cfg, "batch_size"), .grad_accum = (int)cfg_int(cfg, "grad_accum"),
        .epochs = (int)cfg_int(cfg, "epochs"), .max_len = (int)cfg_int(cfg, "max_len"),
        .max_steps = cfg_int(cfg, "max_steps"), .lr = (float)cfg_float(cfg, "lr"),
        .weight_decay = (float)cfg_float(cfg, "weight_decay"), .warmup_ratio = cfg_float(cfg, "warmup_ratio"),
        .max_grad_norm = (float)cfg_float(cfg, "max_grad_norm"), .seed = (uint64_t)cfg_int(cfg, "seed"),
        .eval_every = cfg_int(cfg, "eval_every"), .checkpoint_every = cfg_int(cfg, "checkpoint_every"),
        .best_metric = cfg_str(cfg, "best_metric"),
        .limit_train = cfg_int(cfg, "limit_train"), .limit_eval = cfg_int(cfg, "limit_eval"),
        .oversample = cfg_float(cfg, "oversample"), .length_window = (int)cfg_int(cfg, "length_window"),
        .threshold = (float)cfg_float(cfg, "threshold"), .tune_threshold = cfg_bool(cfg, "tune_threshold"),
        .tune_threshold_per_genre = cfg_bool(cfg, "tune_threshold_per_genre"),
        .shard_optimizer = cfg_bool(cfg, "shard_optimizer"), .tf32 = cfg_bool(cfg, "tf32"),
        .cuda_graphs = cfg_bool(cfg, "cuda_graphs"), .precision = cfg_str(cfg, "precision"),
        .dist_alone = dist_alone,
        .tensorboard = cfg_bool(cfg, "tensorboard"),
        .min_words = (int)cfg_int(cfg, "min_words"), .max_words = (int)cfg_int(cfg, "max_words"),
        .max_nonword_share = cfg_float(cfg, "max_nonword_share"),
        .strip_common_words = (int)cfg_int(cfg, "strip_common_words"),
    };
    if (s.max_words && s.min_words > s.max_words)
        die("min_words %d is above max_words %d: no movie would be left", s.min_words, s.max_words);
    s.n_drop_labels = cfg_list_size(cfg, "drop_labels");
    const char **drop = xmalloc(((size_t)s.n_drop_labels + 1) * sizeof *drop);
    for (int i = 0; i < s.n_drop_labels; i++) drop[i] = cfg_list_item(cfg, "drop_labels", i);
    s.drop_labels = drop;
    loss_kind_parse(cfg_str(cfg, "loss.type"), &s.loss);
    if (s.class_balanced && s.loss == LOSS_BCE_LOGW)
        die("loss.class_weights=effective_number applies to bce, focal and asl: bce_logw weights its genres already");
    if (s.tf32 && strcmp(device, "cuda"))
        die("tf32=true: TF32 is a GPU's tensor-core format; device=%s computes in fp32", device);
    if (!strcmp(s.precision, "bf16") && strcmp(device, "cuda"))
        die("precision=bf16: mixed precision runs on a GPU; device=%s computes in fp32", device);
    if (s.tf32 && !strcmp(s.precision, "bf16"))
        die("tf32=true is for precision=fp32: precision=bf16 runs its GEMMs in bf16 already");
    if (!(s.comm = comm_open(timeout, rendezvous))) die_err();
    int rc = trainer_run(&s, cfg, out, resume != NULL, force);
    free(drop);
    config_free(cfg);
    if (rc != 0 && comm_world(s.comm) > 1) {
        /* The other ranks may be waiting for this one: end them now. */
        fprintf(stderr, "genre: %s\n", err_msg());
        fflush(stderr);
        comm_abort(s.comm, 1);
    }
    if (rc != 0) die_err();
    comm_close(s.comm);
    return 0;
}
