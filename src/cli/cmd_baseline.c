/* genre baseline: the seed's classical classifiers (logistic regression,
 * linear SVM, cosine KNN) over bag-of-words, tf-idf or mean word2vec
 * features. Fits on train.jsonl only, evaluates on val and test with the
 * seed's decision rule, writes metrics.json, test_predictions.jsonl (as
 * genre train does, so that genre sweep compares it with training runs
 * movie by movie) and the report into the run directory, and prints the
 * seed-style table row. Optional k-fold cross-validation on train (cv.json). */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "src/core/atomic.h"
#include "src/cli/args.h"
#include "src/cli/commands.h"
#include "src/core/config.h"
#include "src/data/dataset.h"
#include "src/core/err.h"
#include "src/core/outdir.h"
#include "src/core/jsonfile.h"
#include "src/baseline/knn.h"
#include "src/baseline/ovr.h"
#include "src/eval/metrics.h"
#include "src/eval/predictions.h"
#include "src/eval/report.h"
#include "tokenizer/tokenizer.h"
#include "src/baseline/vectorizer.h"
#include "src/baseline/word2vec.h"
#include "src/data/words.h"

static const CfgKey schema[] = {
    {"data", CFG_STRING, NULL, NULL, "prepared data directory (train/val/test.jsonl, labels.txt)"},
    {"model", CFG_STRING, "\"logreg\"", "logreg|svm|knn", "classifier"},
    {"features", CFG_STRING, "\"tfidf\"", "bow|tfidf|word2vec", "document features"},
    {"threshold", CFG_FLOAT, "0.5", "(0, 1)", "logreg, knn: probability above which a genre is predicted"},
    {"margin", CFG_FLOAT, "0.0", "[-100, 100]", "svm: decision value above which a genre is predicted"},
    {"tune_threshold", CFG_BOOL, "false", NULL,
     "replace threshold (margin) by the one in 0.05..0.95 (-1..1) that maximises val Jaccard"},
    {"threads", CFG_INT, "0", "[0, 4096]", "OpenMP threads (0: the OpenMP default)"},
    {"seed", CFG_INT, "42", "[0, 9223372036854775807]", "seed of word2vec, the SVM's sweeps and the CV folds"},
    {"cv_folds", CFG_INT, "0", "0 or [2, 1000]", "k-fold cross-validation on train before the final fit (0: none)"},
    {"words.min_chars", CFG_INT, "2", "[1, 1000]",
     "drop basic words of fewer characters (2 drops punctuation and single letters, as sklearn's token pattern)"},
    {"vectorizer.binary", CFG_BOOL, "false", NULL, "term presence (1/0) instead of counts"},
    {"vectorizer.ngram_max", CFG_INT, "1", "[1, 2]", "1: words; 2: words and word bigrams"},
    {"vectorizer.min_df", CFG_INT, "1", "[1, 1000000000]", "drop terms in fewer training documents"},
    {"vectorizer.max_df", CFG_FLOAT, "1.0", "(0, 1]", "drop terms in more than this fraction of training documents"},
    {"vectorizer.max_features", CFG_INT, "0", "[0, 1000000000]", "keep the most frequent terms (0: all)"},
    {"vectorizer.sublinear_tf", CFG_BOOL, "false", NULL, "tfidf: 1 + ln(tf)"},
    {"vectorizer.smooth_idf", CFG_BOOL, "true", NULL, "tfidf: ln((1+n)/(1+df)) + 1"},
    {"vectorizer.norm", CFG_STRING, "\"l2\"", "l2|none", "tfidf: row normalisation (bow is never normalised)"},
    {"linear.C", CFG_FLOAT, "1.0", "(0, inf)", "logreg, svm: inverse regularisation strength"},
    {"linear.tol", CFG_FLOAT, "1e-4", "(0, inf)", "logreg, svm: liblinear's stopping tolerance"},
    {"linear.max_iter", CFG_INT, "100", "[1, 1000000000]", "logreg: Newton iterations; svm: coordinate sweeps"},
    {"linear.class_weight", CFG_STRING, "\"none\"", "none|balanced", "logreg, svm: per-label class weights"},
    {"knn.k", CFG_INT, "5", "[1, 1000000000]", "knn: neighbours"},
    {"knn.weights", CFG_STRING, "\"uniform\"", "uniform|distance", "knn: neighbour votes"},
    {"w2v.dim", CFG_INT, "100", "[1, 10000]", "word2vec: vector size"},
    {"w2v.window", CFG_INT, "5", "[1, 1000]", "word2vec: context window"},
    {"w2v.negative", CFG_INT, "5", "[1, 1000]", "word2vec: negative samples"},
    {"w2v.min_count", CFG_INT, "5", "[1, 1000000000]", "word2vec: minimum word count"},
    {"w2v.epochs", CFG_INT, "5", "[1, 1000000]", "word2vec: passes over the training texts"},
    {"w2v.alpha", CFG_FLOAT, "0.025", "(0, inf)", "word2vec: initial learning rate"},
    {"w2v.sample", CFG_FLOAT, "1e-3", "[0, inf)", "word2vec: frequent-word subsampling threshold"},
    {"w2v.vectors", CFG_STRING, "\"\"", NULL, "word2vec: load these vectors (word2vec text, or binary if *.bin) instead of training"},
    {NULL, 0, NULL, NULL, NULL},
};
const CfgKey *const baseline_schema = schema;

static void usage(FILE *f)
{
    fprintf(f, "usage: genre baseline --config FILE [--out DIR] [--force] [key=value ...]\n\n"
               "Trains a classical classifier on <data>/train.jsonl, evaluates it on val and test,\n"
               "and writes metrics.json, test_predictions.jsonl, report.md and plots into DIR (default\n"
               "runs/baseline-MODEL-FEATURES). word2vec runs also save their vectors as DIR/vectors.bin.\n"
               "DIR must be new, empty or an earlier baseline's, which is replaced whole at the end;\n"
               "--force replaces anything else.\n\nkeys:\n");
    config_print_help(schema);
}

static double clock_s(clockid_t id)
{
    struct timespec t;
    clock_gettime(id, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static double now(void) { return clock_s(CLOCK_MONOTONIC); }
/* CPU seconds of all threads: the fair single-thread measure on a busy machine. */
static double cpu_now(void) { return clock_s(CLOCK_PROCESS_CPUTIME_ID); }

typedef struct {
    Lexicon *lx;
    int32_t *ids;
    int64_t n, cap;
    long min_chars;
} Splitter;

static void on_word(const char *word, size_t len, void *ctx)
{
    Splitter *s = ctx;
    long chars = 0;
    for (size_t i = 0; i < len; i++) chars += ((unsigned char)word[i] & 0xC0) != 0x80;
    if (chars < s->min_chars) return;
    if (s->n == s->cap) s->ids = xrealloc(s->ids, (size_t)(s->cap = s->cap ? 2 * s->cap : 256) * sizeof *s->ids);
    s->ids[s->n++] = lexicon_intern(s->lx, word, len);
}

static void split_texts(WordDocs *d, const Dataset *ds, const char *path, Splitter *s)
{
    worddocs_init(d);
    for (int i = 0; i < ds->n; i++) {
        s->n = 0;
        if (basic_tokenize(ds->texts[i], strlen(ds->texts[i]), on_word, s) != 0)
            die("%s: movie %d (\"%s\"): %s", path, i + 1, ds->titles[i], err_msg());
        worddocs_add(d, s->ids, s->n);
    }
}

/* A run's features and model: everything a fold or the final fit needs. */
typedef struct {
    const Config *cfg;
    const char *model, *features;
    const LabelSet *labels;
    Lexicon *lx;
    Vectorizer vec;
    W2vModel w2v;
    bool has_vec, has_w2v;
    Csr Xtrain;
    const uint8_t *Ytrain;
    OvrModel lin;
    bool has_lin;
    double feature_s, fit_s, feature_cpu_s, fit_cpu_s;
} Fit;

static FeatOptions feat_options(const Config *cfg, bool tfidf)
{
    return (FeatOptions){
        .tfidf = tfidf,
        .binary = cfg_bool(cfg, "vectorizer.binary"),
        .sublinear_tf = cfg_bool(cfg, "vectorizer.sublinear_tf"),
        .smooth_idf = cfg_bool(cfg, "vectorizer.smooth_idf"),
        .norm_l2 = tfidf && !strcmp(cfg_str(cfg, "vectorizer.norm"), "l2"),
        .ngram_max = (int)cfg_int(cfg, "vectorizer.ngram_max"),
        .min_df = (int)cfg_int(cfg, "vectorizer.min_df"),
        .max_df = cfg_float(cfg, "vectorizer.max_df"),
        .max_features = (int)cfg_int(cfg, "vectorizer.max_features"),
    };
}

static W2vOptions w2v_options(const Config *cfg)
{
    int threads = (int)cfg_int(cfg, "threads");
#ifdef _OPENMP
    if (threads == 0) threads = omp_get_max_threads();
#endif
    return (W2vOptions){
        .dim = (int)cfg_int(cfg, "w2v.dim"),
        .window = (int)cfg_int(cfg, "w2v.window"),
        .negative = (int)cfg_int(cfg, "w2v.negative"),
        .min_count = (int)cfg_int(cfg, "w2v.min_count"),
        .epochs = (int)cfg_int(cfg, "w2v.epochs"),
        .threads = threads > 0 ? threads : 1,
        .alpha = cfg_float(cfg, "w2v.alpha"),
        .sample = cfg_float(cfg, "w2v.sample"),
        .seed = (uint64_t)cfg_int(cfg, "seed"),
    };
}

/* Features of docs under the fitted vectorizer or word vectors. */
static void featurize(const Fit *f, const WordDocs *docs, Csr *X)
{
    if (f->has_vec) vectorizer_transform(&f->vec, docs, X);
    else w2v_doc_vectors(&f->w2v, docs, f->lx, X);
}

/* Fits features and model on (train docs, Y). 0, or -1 with err_set. */
static int fit(Fit *f, const WordDocs *train, const uint8_t *Y)
{
    const Config *cfg = f->cfg;
    double t0 = now(), c0 = cpu_now();
    if (!strcmp(f->features, "word2vec")) {
        const char *path = cfg_str(cfg, "w2v.vectors");
        size_t n = strlen(path);
        W2vOptions wo = w2v_options(cfg);
        int rc = *path ? w2v_load(&f->w2v, path, n > 4 && !strcmp(path + n - 4, ".bin"))
                       : w2v_train(&f->w2v, train, f->lx, &wo);
        if (rc != 0) return -1;
        f->has_w2v = true;
    } else {
        FeatOptions fo = feat_options(cfg, !strcmp(f->features, "tfidf"));
        if (vectorizer_fit(&f->vec, &fo, train, f->lx) != 0) return -1;
        f->has_vec = true;
    }
    featurize(f, train, &f->Xtrain);
    f->Ytrain = Y;
    double t1 = now(), c1 = cpu_now();
    f->feature_s = t1 - t0;
    f->feature_cpu_s = c1 - c0;
    if (strcmp(f->model, "knn") != 0) {
        OvrOptions lo = {
            .C = cfg_float(cfg, "linear.C"),
            .tol = cfg_float(cfg, "linear.tol"),
            .max_iter = (int)cfg_int(cfg, "linear.max_iter"),
            .balanced = !strcmp(cfg_str(cfg, "linear.class_weight"), "balanced"),
            .seed = (uint64_t)cfg_int(cfg, "seed"),
        };
        int rc = !strcmp(f->model, "logreg") ? logreg_fit(&f->lin, &f->Xtrain, Y, f->labels->n_labels, &lo)
                                             : svm_fit(&f->lin, &f->Xtrain, Y, f->labels->n_labels, &lo);
        if (rc != 0) return -1;
        f->has_lin = true;
    }
    f->fit_s = now() - t1;
    f->fit_cpu_s = cpu_now() - c1;
    return 0;
}

/* The configured decision threshold: the SVM's margin, else a probability. */
static float configured_threshold(const Fit *f)
{
    return (float)cfg_float(f->cfg, strcmp(f->model, "svm") ? "threshold" : "margin");
}

/* Scores (n x L) of docs, and the predictions of the seed's rule at thr. */
static void predict(const Fit *f, const WordDocs *docs, Csr *X, float thr, float *scores, uint8_t *pred)
{
    int L = f->labels->n_labels;
    featurize(f, docs, X);
    if (!strcmp(f->model, "knn"))
        knn_scores(&f->Xtrain, f->Ytrain, L, X, (int)cfg_int(f->cfg, "knn.k"),
                   !strcmp(cfg_str(f->cfg, "knn.weights"), "distance"), scores);
    else
        ovr_scores(&f->lin, X, !strcmp(f->model, "logreg"), scores);
    predict_at_least_one(pred, scores, docs->n, L, thr);
}

static void fit_free(Fit *f)
{
    if (f->has_vec) vectorizer_free(&f->vec);
    if (f->has_w2v) w2v_free(&f->w2v);
    if (f->has_lin) ovr_free(&f->lin);
    csr_free(&f->Xtrain);
    f->has_vec = f->has_w2v = f->has_lin = false;
}

/* Every genre of val or test must have a training example, or the model
 * could never predict it and its scores would be meaningless. */
static void check_labels(const Dataset *train, const Dataset *other, const LabelSet *ls, const char *path)
{
    for (int c = 0; c < ls->n_labels; c++) {
        int in_train = 0, in_other = 0;
        for (int i = 0; i < train->n; i++) in_train += train->y[(size_t)i * ls->n_labels + c];
        for (int i = 0; i < other->n; i++) in_other += other->y[(size_t)i * ls->n_labels + c];
        if (in_other && !in_train)
            die("%s: genre '%s' (%d movies) never occurs in the training set", path, ls->names[c], in_other);
    }
}

static const char *model_title(const char *m)
{
    return !strcmp(m, "logreg") ? "Logistic Regression" : !strcmp(m, "svm") ? "SVM" : "KNN";
}

static const char *features_title(const char *f)
{
    return !strcmp(f, "bow") ? "Bag of Words" : !strcmp(f, "tfidf") ? "tf-idf" : "Word2Vec";
}

/* k-fold cross-validation on train: folds from a seeded shuffle; each fold
 * refits features and model on the rest. Writes <out>/cv.json. */
static void cross_validate(const Fit *proto, const WordDocs *docs, const Dataset *train, int k, const char *out)
{
    int n = train->n, L = train->n_labels;
    if (n < k) die("baseline: cv_folds = %d but train has only %d movies", k, n);
    int *perm = xmalloc((size_t)n * sizeof *perm);
    for (int i = 0; i < n; i++) perm[i] = i;
    uint64_t r = (uint64_t)cfg_int(proto->cfg, "seed") * 0x9e3779b97f4a7c15ull + 1;
    for (int i = n - 1; i > 0; i--) {
        r ^= r << 13, r ^= r >> 7, r ^= r << 17;
        int j = (int)(r % (uint64_t)(i + 1)), t = perm[i];
        perm[i] = perm[j], perm[j] = t;
    }
    json_t *folds = json_array();
    double sum = 0, sq = 0;
    for (int f = 0; f < k; f++) {
        int lo = (int)((int64_t)n * f / k), hi = (int)((int64_t)n * (f + 1) / k);
        WordDocs tr, va;
        worddocs_init(&tr), worddocs_init(&va);
        uint8_t *ytr = xmalloc((size_t)n * L), *yva = xmalloc((size_t)n * L);
        int ntr = 0, nva = 0;
        for (int s = 0; s < n; s++) {
            int i = perm[s];
            bool held = s >= lo && s < hi;
            worddocs_add(held ? &va : &tr, docs->ids + docs->off[i], docs->off[i + 1] - docs->off[i]);
            memcpy((held ? yva + (size_t)nva++ * L : ytr + (size_t)ntr++ * L), train->y + (size_t)i * L, (size_t)L);
        }
        for (int c = 0; c < L; c++) {
            int pos = 0;
            for (int i = 0; i < ntr; i++) pos += ytr[(size_t)i * L + c];
            if (pos == 0 || pos == ntr)
                die("baseline: cv fold %d/%d: genre '%s' has %s training movie in the fold's training part", f + 1, k,
                    proto->labels->names[c], pos ? "every" : "no");
        }
        Fit fit_k = *proto;
        if (fit(&fit_k, &tr, ytr) != 0) die("baseline: cv fold %d: %s", f + 1, err_msg());
        float *scores = xmalloc((size_t)nva * L * sizeof *scores);
        uint8_t *pred = xmalloc((size_t)nva * L);
        Csr X;
        predict(&fit_k, &va, &X, configured_threshold(&fit_k), scores, pred);
        Metrics m;
        metrics_compute(&m, yva, pred, nva, L);
        json_array_append_new(folds, metrics_to_json(&m, proto->labels));
        printf("cv fold %d/%d: jaccard %.4f\n", f + 1, k, m.jaccard);
        sum += m.jaccard, sq += m.jaccard * m.jaccard;
        metrics_free(&m);
        csr_free(&X);
        free(scores), free(pred), free(ytr), free(yva);
        fit_free(&fit_k);
        worddocs_free(&tr), worddocs_free(&va);
    }
    double mean = sum / k, sd = sqrt(fmax(0, sq / k - mean * mean));
    printf("cv %d folds: jaccard %.4f +- %.4f\n", k, mean, sd);
    json_t *o = json_pack("{s:i,s:f,s:f,s:o}", "folds", k, "jaccard_mean", mean, "jaccard_std", sd, "per_fold", folds);
    char path[4096];
    snprintf(path, sizeof path, "%s/cv.json", out);
    if (json_write_file(path, o, JSON_INDENT(1)) != 0) die_err();
    json_decref(o);
    free(perm);
}

int cmd_baseline(int argc, char **argv)
{
    const char *out = NULL, *config_path = NULL;
    bool force = false;
    const ArgOpt opts[] = {ARG_OUT(&out, false), {.name = "--config", .str = &config_path},
                           {.name = "--force", .flag = &force}, {NULL}};
    Args a = args_parse(&(ArgSpec){.cmd = "baseline", .opts = opts, .usage = usage, .overrides = true}, argc, argv);
    Config *cfg = config_load(schema, config_path, a.n_overrides, a.overrides);
    args_free(&a);
    if (!cfg) die_err();
#ifdef _OPENMP
    if (cfg_int(cfg, "threads") > 0) omp_set_num_threads((int)cfg_int(cfg, "threads"));
#endif
    const char *model = cfg_str(cfg, "model"), *features = cfg_str(cfg, "features");
    char default_out[256];
    if (!out) {
        snprintf(default_out, sizeof default_out, "runs/baseline-%s-%s", model, features);
        out = default_out;
    }
    /* Claimed before any work; everything lands in dir at once at the end. */
    char *dir_out = outdir_begin(out, "baseline", true, force, "choose another --out");
    if (!dir_out) die_err();
    const char *dir = cfg_str(cfg, "data");
    char path[3][4096];
    const char *parts[3] = {"train", "val", "test"};
    LabelSet ls;
    snprintf(path[0], sizeof path[0], "%s/labels.txt", dir);
    if (labels_load(&ls, path[0]) != 0) die_err();
    Dataset ds[3];
    for (int p = 0; p < 3; p++) {
        snprintf(path[p], sizeof path[p], "%s/%s.jsonl", dir, parts[p]);
        if (dataset_load(&ds[p], path[p], &ls) != 0) die_err();
    }
    if (ds[0].n == 0) die("%s: the training set is empty", path[0]);
    if (ds[1].n == 0) die("%s: the validation set is empty", path[1]);
    if (ds[2].n == 0) die("%s: the test set is empty", path[2]);
    check_labels(&ds[0], &ds[1], &ls, path[1]);
    check_labels(&ds[0], &ds[2], &ls, path[2]);
    int L = ls.n_labels;
    for (int c = 0; c < L; c++) {
        int pos = 0;
        for (int i = 0; i < ds[0].n; i++) pos += ds[0].y[(size_t)i * L + c];
        if (pos == ds[0].n) die("%s: every training movie has genre '%s': nothing to learn", path[0], ls.names[c]);
        if (pos == 0) die("%s: genre '%s' has no training movie", path[0], ls.names[c]);
    }

    double t0 = now();
    Splitter sp = {lexicon_new(), NULL, 0, 0, cfg_int(cfg, "words.min_chars")};
    WordDocs docs[3];
    for (int p = 0; p < 3; p++) split_texts(&docs[p], &ds[p], path[p], &sp);
    free(sp.ids);
    double split_s = now() - t0;

    Fit proto = {.cfg = cfg, .model = model, .features = features, .labels = &ls, .lx = sp.lx};
    if (cfg_int(cfg, "cv_folds") > 0) cross_validate(&proto, &docs[0], &ds[0], (int)cfg_int(cfg, "cv_folds"), dir_out);

    Fit f = proto;
    if (fit(&f, &docs[0], ds[0].y) != 0) die("baseline: %s", err_msg());
    Metrics m[3];
    float *scores[3];
    uint8_t *pred[3];
    Csr X[3];
    /* The SVM decides by a margin around 0, the others by a probability. */
    bool svm = !strcmp(model, "svm"), tune = cfg_bool(cfg, "tune_threshold");
    const char *thr_name = svm ? "margin" : "threshold";
    float thr = configured_threshold(&f);
    for (int p = 1; p < 3; p++) {
        scores[p] = xmalloc((size_t)ds[p].n * L * sizeof *scores[p]);
        pred[p] = xmalloc((size_t)ds[p].n * L);
        predict(&f, &docs[p], &X[p], thr, scores[p], pred[p]);
        if (p == 1 && tune) {
            /* Val chooses; test then uses val's choice. */
            thr = svm ? metrics_tune_threshold(scores[1], ds[1].y, ds[1].n, L, -1.0f, 1.0f, 101, thr)
                      : metrics_tune_probability(scores[1], ds[1].y, ds[1].n, L, thr);
            predict_at_least_one(pred[1], scores[1], ds[1].n, L, thr);
        }
        metrics_compute(&m[p], ds[p].y, pred[p], ds[p].n, L);
    }
    if (f.has_w2v && !*cfg_str(cfg, "w2v.vectors")) {
        char vpath[4096];
        snprintf(vpath, sizeof vpath, "%s/vectors.bin", dir_out);
        if (w2v_save(&f.w2v, vpath, true) != 0) die_err();
    }

    /* Linear models over words explain themselves through the report. */
    char **terms = NULL;
    LinearSparse ls_expl;
    ReportLinear expl;
    if (f.has_lin && f.has_vec) {
        terms = xmalloc((size_t)f.vec.n_terms * sizeof *terms);
        for (int j = 0; j < f.vec.n_terms; j++) {
            char buf[512];
            vectorizer_term(&f.vec, sp.lx, j, buf, sizeof buf);
            terms[j] = xstrdup(buf);
        }
        ls_expl = (LinearSparse){L, f.lin.n_features, f.lin.n_features + 1, f.lin.w, (const char *const *)terms,
                                 X[2].indptr, X[2].indices, X[2].data};
        expl = report_linear_sparse(&ls_expl);
    }
    char name[128], notes[1024];
    snprintf(name, sizeof name, "%s %s", model_title(model), features_title(features));
    snprintf(notes, sizeof notes,
             "Trained on %d movies, evaluated on %d (val) and %d (test) with %s %g%s. Word splitting %.2f s, "
             "features %.2f s, model fit %.2f s.",
             ds[0].n, ds[1].n, ds[2].n, thr_name, (double)thr, tune ? " (tuned on val)" : "", split_s, f.feature_s, f.fit_s);
    /* Description lengths in the words the model sees (basic words of at least words.min_chars). */
    int *lengths = xmalloc((size_t)ds[2].n * sizeof *lengths);
    for (int i = 0; i < ds[2].n; i++) lengths[i] = (int)(docs[2].off[i + 1] - docs[2].off[i]);
    /* Per movie, at the threshold test used (val's when tuned), as genre
     * train writes them: genre sweep compares runs movie by movie. */
    char ppath[4096];
    snprintf(ppath, sizeof ppath, "%s/test_predictions.jsonl", dir_out);
    if (predictions_write(ppath, &ds[2], &ls, scores[2], pred[2], lengths) != 0) die_err();
    ReportRun run = {
        .name = name, .notes = notes, .labels = &ls, .val = &m[1], .test = &m[2],
        .test_data = &ds[2], .test_scores = scores[2], .test_pred = pred[2],
        .threshold = &thr, .threshold_tuned = tune,
        .linear = terms ? &expl : NULL, .test_lengths = lengths, .length_unit = "words",
    };
    if (report_write(dir_out, &run) != 0) die_err();
    free(lengths);
    char cpath[4096];
    snprintf(cpath, sizeof cpath, "%s/config.json", dir_out);
    if (config_write(cfg, cpath) != 0 || outdir_commit(dir_out, out, "baseline") != 0) die_err();

    printf("| Classifier          | Model        | Jaccard | At least one | Precision | Recall |\n"
           "|---------------------|--------------|---------|--------------|-----------|--------|\n"
           "| %-19s | %-12s | %.4f  | %.4f       | %.4f    | %.4f |\n",
           model_title(model), features_title(features), m[2].jaccard, m[2].at_least_one, m[2].precision,
           m[2].recall);
    if (tune) printf("%s tuned on val: %g\n", thr_name, (double)thr);
    printf("val jaccard %.4f; %d feature columns; features %.3f s (cpu %.3f s); fit %.3f s (cpu %.3f s); report in %s\n",
           m[1].jaccard, f.Xtrain.cols, f.feature_s, f.feature_cpu_s, f.fit_s, f.fit_cpu_s, out);

    if (terms)
        for (int j = 0; j < f.vec.n_terms; j++) free(terms[j]);
    free(terms);
    for (int p = 1; p < 3; p++) {
        metrics_free(&m[p]);
        free(scores[p]), free(pred[p]);
        csr_free(&X[p]);
    }
    fit_free(&f);
    for (int p = 0; p < 3; p++) worddocs_free(&docs[p]), dataset_free(&ds[p]);
    lexicon_free(sp.lx);
    labels_free(&ls);
    config_free(cfg);
    return 0;
}
