#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "src/core/atomic.h"
#include "src/data/clean.h"
#include "src/core/err.h"
#include "src/core/jsonfile.h"
#include "src/eval/lengths.h"
#include "src/eval/plot.h"
#include "src/eval/report.h"
#include "src/eval/trainlog.h"

#define TEXT_MAX 600   /* bytes of a movie description shown in the error analysis */
#define PUSH_WORDS 5   /* words listed per predicted genre */

/* out = "<dir>/<name>"; -1 with err_set when it does not fit. */
static int join(char *out, size_t cap, const char *dir, const char *name)
{
    if ((size_t)snprintf(out, cap, "%s/%s", dir, name) >= cap) return err_set("%s/%s: path too long", dir, name);
    return 0;
}

/* ---- markdown ----------------------------------------------------------- */

/* Writes s on one line (whitespace collapsed by clean_whitespace) with
 * markdown's special characters escaped; a text longer than max bytes
 * (max >= 0) is cut at the last space before it, followed by " [...]". */
static void md_text(FILE *f, const char *s, int max)
{
    char *t = xstrdup(s);
    clean_whitespace(t);
    size_t len = strlen(t), end = len;
    if (max >= 0 && len > (size_t)max) {
        end = (size_t)max;
        while (end > 0 && t[end] != ' ') end--;
        /* One long word: cut at a UTF-8 boundary instead. */
        if (end == 0)
            for (end = (size_t)max; end > 0 && ((unsigned char)t[end] & 0xC0) == 0x80;) end--;
    }
    for (size_t i = 0; i < end; i++) {
        if (strchr("\\`*_[]<>|#", t[i])) fputc('\\', f);
        fputc(t[i], f);
    }
    if (end < len) fputs(" [...]", f);
    free(t);
}

/* A table's header: `corner`, then one right-aligned column per run name
 * (in bold with bold set). */
static void table_header(FILE *f, const char *corner, int n, const char *const *names, int bold)
{
    fprintf(f, "| %s |", corner);
    for (int r = 0; r < n; r++) {
        fputs(bold ? " **" : " ", f);
        md_text(f, names[r], -1);
        fputs(bold ? "** |" : " |", f);
    }
    fputs("\n|:--|", f);
    for (int r = 0; r < n; r++) fputs("--:|", f);
    fputc('\n', f);
}

/* The seed's "Combined Metrics" table: one row per metric, one column per run. */
static void table_combined(FILE *f, int n, const char *const *names, const Metrics *const *m)
{
    table_header(f, "**Metric**", n, names, 1);
    const char *rows[] = {"Jaccard", "Hamming Loss", "Accuracy", "F1-Score",
                          "Precision", "Recall", "At Least One", "At Least Two"};
    for (int k = 0; k < 8; k++) {
        fprintf(f, "| **%s** |", rows[k]);
        for (int r = 0; r < n; r++) {
            const double v[] = {m[r]->jaccard, m[r]->hamming, m[r]->accuracy, m[r]->f1,
                                m[r]->precision, m[r]->recall, m[r]->at_least_one, m[r]->at_least_two};
            fprintf(f, " %.4f |", v[k]);
        }
        fputc('\n', f);
    }
    fputc('\n', f);
}

/* The seed's micro/macro/weighted/samples tables, one per quantity. */
static void table_averages(FILE *f, int n, const char *const *names, const Metrics *const *m)
{
    const char *what[] = {"Precision", "Recall", "F1"};
    for (int q = 0; q < 3; q++) {
        table_header(f, what[q], n, names, 0);
        const char *avg[] = {"Micro Avg", "Macro Avg", "Weighted Avg", "Samples Avg"};
        for (int a = 0; a < 4; a++) {
            fprintf(f, "| **%s** |", avg[a]);
            for (int r = 0; r < n; r++) {
                const Metrics *x = m[r];
                const double v[4][3] = {
                    {x->micro_precision, x->micro_recall, x->micro_f1},
                    {x->macro_precision, x->macro_recall, x->macro_f1},
                    {x->weighted_precision, x->weighted_recall, x->weighted_f1},
                    {x->precision, x->recall, x->f1},
                };
                fprintf(f, " %.4f |", v[a][q]);
            }
            fputc('\n', f);
        }
        fputc('\n', f);
    }
}

/* The seed's "Quantitative results" table: one row per run. */
static void table_quantitative(FILE *f, int n, const char *const *names, const Metrics *const *m)
{
    fputs("| Run | Jaccard | At least one | Precision | Recall | F1 |\n"
          "|:--|--:|--:|--:|--:|--:|\n", f);
    for (int r = 0; r < n; r++) {
        fputs("| ", f);
        md_text(f, names[r], -1);
        fprintf(f, " | %.4f | %.4f | %.4f | %.4f | %.4f |\n", m[r]->jaccard, m[r]->at_least_one,
                m[r]->precision, m[r]->recall, m[r]->f1);
    }
    fputc('\n', f);
}

/* ---- ordering ------------------------------------------------------------ */

/* Label indices by test support, largest first (stable: ties keep label order). */
static int *labels_by_support(const Metrics *m)
{
    int L = m->n_labels, *idx = xmalloc((size_t)L * sizeof *idx);
    for (int i = 0; i < L; i++) {
        int j = i;
        while (j > 0 && m->label_support[idx[j - 1]] < m->label_support[i]) {
            idx[j] = idx[j - 1];
            j--;
        }
        idx[j] = i;
    }
    return idx;
}

typedef struct {
    double jaccard;
    int n_true, index;
} MovieRank;

/* Best first: higher Jaccard, then more true genres (harder to get all right). */
static int by_best(const void *a, const void *b)
{
    const MovieRank *x = a, *y = b;
    if (x->jaccard != y->jaccard) return x->jaccard > y->jaccard ? -1 : 1;
    if (x->n_true != y->n_true) return y->n_true - x->n_true;
    return x->index - y->index;
}

/* Worst first: lower Jaccard, then more true genres (more of them missed). */
static int by_worst(const void *a, const void *b)
{
    const MovieRank *x = a, *y = b;
    if (x->jaccard != y->jaccard) return x->jaccard < y->jaccard ? -1 : 1;
    if (x->n_true != y->n_true) return y->n_true - x->n_true;
    return x->index - y->index;
}

/* ---- plots ------------------------------------------------------------- */

static int plot_per_genre(const char *dir, const ReportRun *run)
{
    const Metrics *m = run->test;
    int L = m->n_labels, *idx = labels_by_support(m);
    char **names = xmalloc((size_t)L * sizeof *names);
    double *prf = xmalloc((size_t)L * 3 * sizeof *prf);
    double *x = xmalloc((size_t)L * sizeof *x), *y = xmalloc((size_t)L * sizeof *y);
    const char **scatter_names = xmalloc((size_t)L * sizeof *scatter_names);
    int n_scatter = 0;
    for (int k = 0; k < L; k++) {
        int c = idx[k];
        if (asprintf(&names[k], "%s (%d)", run->labels->names[c], m->label_support[c]) < 0)
            die("out of memory");
        prf[k * 3 + 0] = m->label_precision[c];
        prf[k * 3 + 1] = m->label_recall[c];
        prf[k * 3 + 2] = m->label_f1[c];
        /* A log axis cannot place a genre absent from the test set. */
        if (m->label_support[c] > 0) {
            x[n_scatter] = m->label_support[c];
            y[n_scatter] = m->label_jaccard[c];
            scatter_names[n_scatter++] = run->labels->names[c];
        }
    }
    const char *series[] = {"precision", "recall", "F1"};
    char path[4096], title[512];
    snprintf(title, sizeof title, "%s: precision, recall, F1 per genre (test)", run->name);
    int rc = join(path, sizeof path, dir, "per_genre_prf.svg");
    if (rc == 0) rc = plot_grouped_bars(path, title, "score", L, (const char *const *)names, 3, series, prf);
    if (rc == 0) rc = join(path, sizeof path, dir, "jaccard_vs_support.svg");
    if (rc == 0) {
        snprintf(title, sizeof title, "%s: test Jaccard per genre against support", run->name);
        rc = plot_scatter(path, title, "support (test movies)", "Jaccard", n_scatter, x, y,
                          scatter_names, 1);
    }
    for (int k = 0; k < L; k++) free(names[k]);
    free(names);
    free(prf);
    free(x);
    free(y);
    free(scatter_names);
    free(idx);
    return rc;
}

/* A label as a file name: letters, digits, '-' and '_' kept, the rest '_'. */
static void file_name(char *out, size_t cap, const char *label)
{
    size_t i = 0;
    for (; label[i] && i + 1 < cap; i++) {
        char ch = label[i];
        int ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
                 ch == '-' || ch == '_';
        out[i] = ok ? ch : '_';
    }
    out[i] = '\0';
}

/* One hbar chart per genre: its strongest positive words on top, then its
 * strongest negative ones, most negative at the bottom. */
static int plot_top_words(const char *dir, const ReportRun *run, int k)
{
    const ReportLinear *lin = run->linear;
    char sub[4096], path[4096], title[512], fname[256];
    if (join(sub, sizeof sub, dir, "top_words") != 0 || make_dirs(sub) != 0) return -1;
    const char **words = xmalloc((size_t)2 * k * sizeof *words);
    double *w = xmalloc((size_t)2 * k * sizeof *w);
    int rc = 0;
    for (int c = 0; c < run->labels->n_labels && rc == 0; c++) {
        int np = lin->top_words(lin->ctx, c, +1, k, words, w);
        int nn = lin->top_words(lin->ctx, c, -1, k, words + np, w + np);
        /* Negative words come strongest first; the chart wants them last. */
        for (int a = np, b = np + nn - 1; a < b; a++, b--) {
            const char *t = words[a];
            words[a] = words[b];
            words[b] = t;
            double v = w[a];
            w[a] = w[b];
            w[b] = v;
        }
        file_name(fname, sizeof fname - 4, run->labels->names[c]);
        strcat(fname, ".svg");
        snprintf(title, sizeof title, "%s: strongest words for %s", run->name, run->labels->names[c]);
        rc = join(path, sizeof path, sub, fname);
        if (rc == 0) rc = plot_hbars(path, title, "weight", np + nn, words, w);
    }
    free(words);
    free(w);
    return rc;
}

/* ---- training curves -------------------------------------------------------- */

/* Half-width of the moving mean over n points: the window (2h + 1 points)
 * grows with the run, about a twenty-fifth of it, so long runs get smooth
 * curves and short ones keep their shape. 0: too few points to smooth. */
static int smooth_half(int n) { return n < 20 ? 0 : n / 50 > 1 ? n / 50 : 1; }

/* Centred moving mean of y with half-width h; near the ends the window
 * shrinks on both sides so it stays centred: no lag, and the first points
 * follow the fast early drop instead of averaging it with later steps. */
static double *moving_mean(int n, const double *y, int h)
{
    double *prefix = xmalloc((size_t)(n + 1) * sizeof *prefix), *out = xmalloc((size_t)n * sizeof *out);
    prefix[0] = 0;
    for (int i = 0; i < n; i++) prefix[i + 1] = prefix[i] + y[i];
    for (int i = 0; i < n; i++) {
        int r = h;
        if (r > i) r = i;
        if (r > n - 1 - i) r = n - 1 - i;
        out[i] = (prefix[i + r + 1] - prefix[i - r]) / (2 * r + 1);
    }
    free(prefix);
    return out;
}

/* A per-step curve, raw (pale) under its moving mean. */
static int plot_raw_smooth(const char *path, const char *title, const char *what, const TrainCurve *c,
                           const PlotCurveOptions *axis)
{
    int h = smooth_half(c->n);
    char raw_name[128], smooth_name[128];
    snprintf(raw_name, sizeof raw_name, "%s per step", what);
    snprintf(smooth_name, sizeof smooth_name, "moving mean over %d steps", 2 * h + 1);
    double *smooth = h ? moving_mean(c->n, c->value, h) : NULL;
    PlotCurve pc[2] = {{raw_name, c->n, c->step, c->value, 0, h > 0, 0},
                       {smooth_name, c->n, c->step, smooth, 0, 0, 0}};
    int rc = plot_curves(path, title, "step", what, h ? 2 : 1, pc, axis);
    free(smooth);
    return rc;
}

static int plot_training_charts(const char *dir, const ReportRun *run, const TrainLog *log,
                                const PlotCurveOptions *axis)
{
    char path[4096], title[512];
    snprintf(title, sizeof title, "%s: training loss", run->name);
    if (join(path, sizeof path, dir, "training_loss.svg") != 0 ||
        plot_raw_smooth(path, title, "loss", &log->loss, axis) != 0)
        return -1;
    if (log->val_jaccard.n > 0) {
        const TrainCurve *j = &log->val_jaccard, *f = &log->val_f1;
        PlotCurve pc[2] = {{"Jaccard", j->n, j->step, j->value, 0, 0, 1},
                           {"F1 (samples)", f->n, f->step, f->value, 1, 0, 1}};
        snprintf(title, sizeof title, "%s: validation metrics", run->name);
        if (join(path, sizeof path, dir, "validation.svg") != 0 ||
            plot_curves(path, title, "step", "score", 2, pc, axis) != 0)
            return -1;
    }
    if (log->grad_norm.n > 0) {
        snprintf(title, sizeof title, "%s: gradient norm (before clipping)", run->name);
        if (join(path, sizeof path, dir, "grad_norm.svg") != 0 ||
            plot_raw_smooth(path, title, "gradient norm", &log->grad_norm, axis) != 0)
            return -1;
    }
    if (log->lr.n > 0) {
        /* In units of a power of ten, so ticks read 0.5, 1, 1.5 and not 0.000015. */
        double top = 0;
        for (int i = 0; i < log->lr.n; i++) top = fmax(top, fabs(log->lr.value[i]));
        int exp10 = top > 0 ? (int)floor(log10(top)) : 0;
        double unit = pow(10, exp10);
        double *lr = xmalloc((size_t)log->lr.n * sizeof *lr);
        for (int i = 0; i < log->lr.n; i++) lr[i] = log->lr.value[i] / unit;
        char ylabel[64];
        if (exp10) snprintf(ylabel, sizeof ylabel, "learning rate (\u00d7 1e%d)", exp10);
        else snprintf(ylabel, sizeof ylabel, "learning rate");
        PlotCurve pc = {"learning rate", log->lr.n, log->lr.step, lr, 0, 0, 0};
        snprintf(title, sizeof title, "%s: learning rate schedule", run->name);
        int rc = join(path, sizeof path, dir, "learning_rate.svg");
        if (rc == 0) rc = plot_curves(path, title, "step", ylabel, 1, &pc, axis);
        free(lr);
        if (rc != 0) return -1;
    }
    return 0;
}

static int plot_training(const char *dir, const ReportRun *run, const TrainLog *log)
{
    /* Every chart spans the run's steps, so they line up when compared, with
     * a dashed line where each epoch after the first begins. */
    double x_range[2] = {0, log->loss.step[log->loss.n - 1]};
    const TrainCurve *ep = &log->epoch;
    double *guide_x = xmalloc((size_t)(ep->n + 1) * sizeof *guide_x);
    char **labels = xmalloc((size_t)(ep->n + 1) * sizeof *labels);
    int n_guides = 0;
    for (int i = 0; i + 1 < ep->n; i++)
        if (ep->value[i + 1] != ep->value[i]) {
            guide_x[n_guides] = ep->step[i];
            if (asprintf(&labels[n_guides++], "epoch %.0f", ep->value[i + 1]) < 0) die("out of memory");
        }
    PlotCurveOptions axis = {x_range, n_guides, guide_x, (const char *const *)labels};
    int rc = plot_training_charts(dir, run, log, &axis);
    for (int g = 0; g < n_guides; g++) free(labels[g]);
    free(labels);
    free(guide_x);
    return rc;
}

static void training_markdown(FILE *f, const TrainLog *log)
{
    const TrainCurve *loss = &log->loss, *j = &log->val_jaccard;
    int h = smooth_half(loss->n), w = 2 * h + 1;
    double last = 0;
    for (int i = loss->n - w; i < loss->n; i++) last += loss->value[i];
    fprintf(f, "## Training\n\n%d optimizer steps logged; loss %.4f at the first, %.4f ", loss->n, loss->value[0],
            last / w);
    if (w > 1) fprintf(f, "on average over the last %d.", w);
    else fputs("at the last.", f);
    if (j->n > 0) {
        int best = 0;
        for (int i = 1; i < j->n; i++)
            if (j->value[i] > j->value[best]) best = i;
        fprintf(f, " %d evaluation%s on val; best Jaccard %.4f at step %.0f.", j->n, j->n == 1 ? "" : "s",
                j->value[best], j->step[best]);
    }
    fputs("\n\n![Training loss per step](training_loss.svg)\n\n", f);
    if (h) fprintf(f, "The training loss of every step (pale) and its centred moving mean over %d steps.", 2 * h + 1);
    else fputs("The training loss of every step.", f);
    const TrainCurve *ep = &log->epoch;
    if (ep->n > 0 && ep->value[ep->n - 1] != ep->value[0])
        fputs(" Dashed lines in the charts of this section mark where each epoch after the first begins.", f);
    fputs("\n\n", f);
    if (j->n > 0)
        fputs("![Validation metrics](validation.svg)\n\n"
              "Jaccard and F1 (samples average) on the validation set at each evaluation.\n\n", f);
    if (log->grad_norm.n > 0)
        fprintf(f, "![Gradient norm](grad_norm.svg)\n\nThe norm of the whole gradient at each step, before clipping%s.\n\n",
                smooth_half(log->grad_norm.n) ? " (pale), and its moving mean" : "");
    if (log->lr.n > 0)
        fputs("![Learning rate](learning_rate.svg)\n\nThe learning rate of each step.\n\n", f);
}

/* ---- description length ------------------------------------------------------ */

/* Test movies in length buckets (lengths.h) with their mean Jaccard. */
typedef struct {
    LengthBuckets e;
    double jaccard[LENGTH_BUCKETS_MAX]; /* mean of the movies' own Jaccard */
} LengthJaccard;

static void length_jaccard(LengthJaccard *lb, const ReportRun *run)
{
    const Dataset *d = run->test_data;
    int n = d->n, L = run->labels->n_labels;
    double *j = xmalloc((size_t)n * sizeof *j);
    for (int i = 0; i < n; i++) j[i] = metrics_sample_jaccard(d->y + (size_t)i * L, run->test_pred + (size_t)i * L, L);
    length_buckets(&lb->e, run->test_lengths, n);
    length_bucket_means(&lb->e, run->test_lengths, j, n, lb->jaccard);
    free(j);
}

static int plot_lengths(const char *dir, const ReportRun *run, const LengthJaccard *lb)
{
    char names[LENGTH_BUCKETS_MAX][64], path[4096], title[512], ylabel[64];
    const char *np[LENGTH_BUCKETS_MAX];
    for (int b = 0; b < lb->e.n; b++) {
        char range[48];
        length_bucket_name(range, sizeof range, &lb->e, b);
        snprintf(names[b], sizeof names[b], "%s (n=%d)", range, lb->e.count[b]);
        np[b] = names[b];
    }
    snprintf(title, sizeof title, "%s: test Jaccard by description length in %s", run->name,
             run->length_unit);
    snprintf(ylabel, sizeof ylabel, "Jaccard");
    if (join(path, sizeof path, dir, "length_jaccard.svg") != 0) return -1;
    return plot_bars(path, title, ylabel, lb->e.n, np, lb->jaccard);
}

static void lengths_markdown(FILE *f, const ReportRun *run, const LengthJaccard *lb)
{
    fprintf(f, "## Description length (test)\n\n"
               "Test movies grouped by the length of their description in %s (%d to %d), in buckets of "
               "about equal size; Jaccard is the mean of the movies' own Jaccard in each bucket.",
            run->length_unit, lb->e.min, lb->e.max);
    /* Many movies at the maximum: texts truncated to the model's input length. */
    if (lb->e.at_max > 1)
        fprintf(f, " %d movies share the longest length, %d: a text cut at the model's maximum length counts "
                   "as that length.", lb->e.at_max, lb->e.max);
    fprintf(f, "\n\n| Length (%s) | Movies | Jaccard |\n|:--|--:|--:|\n", run->length_unit);
    for (int b = 0; b < lb->e.n; b++) {
        char name[48];
        length_bucket_name(name, sizeof name, &lb->e, b);
        fprintf(f, "| %s | %d | %.4f |\n", name, lb->e.count[b], lb->jaccard[b]);
    }
    fputs("\n![Test Jaccard per description length](length_jaccard.svg)\n\n"
          "Test Jaccard of each length bucket, with its number of movies (n).\n\n", f);
}

/* ---- report.md ------------------------------------------------------------ */

static void labels_with_scores(FILE *f, const ReportRun *run, int i, const uint8_t *row)
{
    int L = run->labels->n_labels, first = 1;
    for (int c = 0; c < L; c++) {
        if (!row[c]) continue;
        fputs(first ? "" : ", ", f);
        md_text(f, run->labels->names[c], -1);
        fprintf(f, " (%.2f)", run->test_scores[(size_t)i * L + c]);
        first = 0;
    }
    if (first) fputs("(none)", f);
}

static void movie_entry(FILE *f, const ReportRun *run, const MovieRank *r)
{
    const Dataset *d = run->test_data;
    int i = r->index, L = run->labels->n_labels;
    const uint8_t *truth = d->y + (size_t)i * L, *pred = run->test_pred + (size_t)i * L;
    fputs("* **", f);
    md_text(f, d->titles && d->titles[i] ? d->titles[i] : "(untitled)", -1);
    fputs("**", f);
    if (d->years && d->years[i] > 0) fprintf(f, " (%d)", d->years[i]);
    fprintf(f, ", Jaccard %.2f\n  * *\"", r->jaccard);
    md_text(f, d->texts[i], TEXT_MAX);
    fputs("\"*\n  * **Labels**: ", f);
    labels_with_scores(f, run, i, truth);
    fputs("\n  * **Predicted**: ", f);
    labels_with_scores(f, run, i, pred);
    fputc('\n', f);
    if (!run->linear) return;
    const char *words[PUSH_WORDS];
    double v[PUSH_WORDS];
    for (int c = 0; c < L; c++) {
        if (!pred[c]) continue;
        int k = run->linear->pushed_by(run->linear->ctx, i, c, PUSH_WORDS, words, v);
        fputs("  * **", f);
        md_text(f, run->labels->names[c], -1);
        fputs("** pushed by: ", f);
        for (int w = 0; w < k; w++) {
            fputs(w ? ", " : "", f);
            md_text(f, words[w], -1);
            fprintf(f, " (+%.2f)", v[w]);
        }
        if (k == 0) fputs("no word (bias only)", f);
        fputc('\n', f);
    }
}

static void error_analysis(FILE *f, const ReportRun *run, int n_show)
{
    const Dataset *d = run->test_data;
    int L = run->labels->n_labels;
    MovieRank *r = xmalloc((size_t)d->n * sizeof *r);
    for (int i = 0; i < d->n; i++) {
        const uint8_t *t = d->y + (size_t)i * L;
        r[i].jaccard = metrics_sample_jaccard(t, run->test_pred + (size_t)i * L, L);
        r[i].n_true = 0;
        for (int c = 0; c < L; c++) r[i].n_true += t[c];
        r[i].index = i;
    }
    /* Best and worst never share a movie. */
    int k = n_show < d->n / 2 ? n_show : d->n / 2;
    fputs("## Error analysis (test)\n\nMovies ranked by their own Jaccard, with the model's score of each genre in parentheses.", f);
    if (run->linear) fputs(" For each predicted genre, the words that pushed it (weight x feature value).", f);
    fputs("\n\n### Best predictions\n\n", f);
    qsort(r, (size_t)d->n, sizeof *r, by_best);
    for (int j = 0; j < k; j++) movie_entry(f, run, &r[j]);
    fputs("\n### Worst predictions\n\n", f);
    qsort(r, (size_t)d->n, sizeof *r, by_worst);
    for (int j = 0; j < k; j++) movie_entry(f, run, &r[j]);
    fputc('\n', f);
    free(r);
}

static void write_markdown(FILE *f, const ReportRun *run, int n_examples, const TrainLog *log,
                           const LengthJaccard *lb)
{
    const Metrics *t = run->test;
    fputs("# ", f);
    md_text(f, run->name, -1);
    fputs("\n\n", f);
    if (run->notes) fprintf(f, "%s\n\n", run->notes);
    fprintf(f, "Test set: %d movies, %d genres.\n\n## Results\n\n", t->n, t->n_labels);
    const char *names[] = {"Val", "Test"};
    const Metrics *ms[] = {run->val, t};
    int off = run->val ? 0 : 1;
    table_quantitative(f, 1, &run->name, &t);
    table_combined(f, 2 - off, names + off, ms + off);
    fputs("### Micro, macro, weighted and samples average (test)\n\n", f);
    table_averages(f, 1, names + 1, ms + 1);
    if (log) training_markdown(f, log);

    /* Per-genre thresholds say, genre by genre, what was applied. */
    const float *gt = run->genre_thresholds;
    fprintf(f, "## Per-genre classification report (test)\n\n%s"
               "| Genre | Precision | Recall | F1 | Jaccard | Support |%s\n"
               "|:--|--:|--:|--:|--:|--:|%s\n",
            gt ? "A genre is predicted when its score is above its own threshold (last column).\n\n" : "",
            gt ? " Threshold |" : "", gt ? "--:|" : "");
    int *idx = labels_by_support(t);
    for (int k = 0; k < t->n_labels; k++) {
        int c = idx[k];
        fputs("| ", f);
        md_text(f, run->labels->names[c], -1);
        fprintf(f, " | %.4f | %.4f | %.4f | %.4f | %d |", t->label_precision[c], t->label_recall[c],
                t->label_f1[c], t->label_jaccard[c], t->label_support[c]);
        if (gt) fprintf(f, " %.2f |", (double)gt[c]);
        fputc('\n', f);
    }
    free(idx);
    fputs("\n![Precision, recall and F1 per genre](per_genre_prf.svg)\n\n"
          "Precision, recall and F1 of each genre on test, genres ordered by support (in parentheses).\n\n"
          "![Jaccard per genre against support](jaccard_vs_support.svg)\n\n"
          "Each genre's test Jaccard against its number of test movies (log scale): rare genres sit left.\n\n", f);
    if (lb) lengths_markdown(f, run, lb);

    if (run->linear) {
        fputs("## Strongest words per genre\n\n", f);
        for (int c = 0; c < run->labels->n_labels; c++) {
            char fname[256];
            file_name(fname, sizeof fname, run->labels->names[c]);
            fputs(c ? " · [" : "[", f);
            md_text(f, run->labels->names[c], -1);
            fprintf(f, "](top_words/%s.svg)", fname);
        }
        fputs("\n\n", f);
    }
    error_analysis(f, run, n_examples);
}

/* ---- explanations of sparse linear models ---------------------------------- */

/* Inserts (word, v) into the top list words/vals (n entries, at most k,
 * largest first); returns the new length. */
static int top_insert(const char **words, double *vals, int n, int k, const char *word, double v)
{
    if (n == k && v <= vals[k - 1]) return n;
    int at = n < k ? n++ : k - 1;
    while (at > 0 && vals[at - 1] < v) {
        vals[at] = vals[at - 1];
        words[at] = words[at - 1];
        at--;
    }
    vals[at] = v;
    words[at] = word;
    return n;
}

static int sparse_top_words(void *ctx, int label, int sign, int k, const char **words, double *weights)
{
    const LinearSparse *e = ctx;
    const double *w = e->w + (size_t)label * e->stride;
    int n = 0;
    for (int j = 0; j < e->n_features && k > 0; j++)
        if (sign * w[j] > 0) n = top_insert(words, weights, n, k, e->terms[j], sign * w[j]);
    for (int j = 0; j < n; j++) weights[j] *= sign;
    return n;
}

static int sparse_pushed_by(void *ctx, int movie, int label, int k, const char **words, double *values)
{
    const LinearSparse *e = ctx;
    const double *w = e->w + (size_t)label * e->stride;
    int n = 0;
    for (int64_t p = e->indptr[movie]; p < e->indptr[movie + 1] && k > 0; p++) {
        double v = w[e->indices[p]] * e->values[p];
        if (v > 0) n = top_insert(words, values, n, k, e->terms[e->indices[p]], v);
    }
    return n;
}

ReportLinear report_linear_sparse(const LinearSparse *e)
{
    return (ReportLinear){(void *)e, sparse_top_words, sparse_pushed_by};
}

/* ---- entry points ------------------------------------------------------------ */

static int check_run(const ReportRun *run)
{
    int L = run->labels ? run->labels->n_labels : 0;
    if (!run->name || !run->test || !run->test_data || !run->test_scores || !run->test_pred || !L)
        return err_set("report: the run lacks a name, labels, test metrics, data, scores or predictions");
    if (run->test->n_labels != L || run->test_data->n_labels != L || (run->val && run->val->n_labels != L))
        return err_set("report %s: metrics and data have %d/%d labels, the label set %d", run->name,
                       run->test->n_labels, run->test_data->n_labels, L);
    if (run->test->n != run->test_data->n)
        return err_set("report %s: test metrics cover %d movies, the test set has %d", run->name,
                       run->test->n, run->test_data->n);
    if (run->linear && (!run->linear->top_words || !run->linear->pushed_by))
        return err_set("report %s: linear explanations need both callbacks", run->name);
    if (run->test_lengths) {
        if (!run->length_unit) return err_set("report %s: test lengths need their unit", run->name);
        for (int i = 0; i < run->test->n; i++)
            if (run->test_lengths[i] < 0)
                return err_set("report %s: test movie %d has length %d", run->name, i, run->test_lengths[i]);
    }
    return 0;
}

int report_write(const char *dir, const ReportRun *run)
{
    if (check_run(run) != 0) return -1;
    /* The log first: a broken one fails the report before anything is written. */
    TrainLog log;
    if (run->train_log) {
        if (trainlog_read(&log, run->train_log) != 0) return -1;
        if (log.loss.n == 0) {
            trainlog_free(&log);
            return err_set("%s: no training steps logged", run->train_log);
        }
    }
    int rc = make_dirs(dir);
    char path[4096];
    if (rc == 0) {
        json_t *all = json_object();
        if (run->val) json_object_set_new(all, "val", metrics_to_json(run->val, run->labels));
        json_object_set_new(all, "test", metrics_to_json(run->test, run->labels));
        if (run->threshold) {
            json_object_set_new(all, "threshold", json_real_of_float(*run->threshold));
            json_object_set_new(all, "threshold_tuned", json_boolean(run->threshold_tuned));
        }
        if (run->genre_thresholds)
            json_object_set_new(all, "genre_thresholds",
                                json_floats_by_name((const char *const *)run->labels->names, run->genre_thresholds,
                                                    run->labels->n_labels));
        rc = join(path, sizeof path, dir, "metrics.json");
        if (rc == 0) rc = json_write_file(path, all, JSON_INDENT(2) | JSON_REAL_PRECISION(17));
        json_decref(all);
    }
    if (rc == 0) rc = plot_per_genre(dir, run);
    int n_words = run->n_words > 0 ? run->n_words : 15;
    if (rc == 0 && run->linear) rc = plot_top_words(dir, run, n_words);
    if (rc == 0 && run->train_log) rc = plot_training(dir, run, &log);
    LengthJaccard lb;
    if (run->test_lengths) length_jaccard(&lb, run);
    if (rc == 0 && run->test_lengths) rc = plot_lengths(dir, run, &lb);

    if (rc == 0) rc = join(path, sizeof path, dir, "report.md");
    AtomicFile *af = rc == 0 ? atomic_open(path) : NULL;
    if (af) {
        write_markdown(atomic_stream(af), run, run->n_examples > 0 ? run->n_examples : 8,
                       run->train_log ? &log : NULL, run->test_lengths ? &lb : NULL);
        rc = atomic_commit(af);
    } else rc = -1;
    if (run->train_log) trainlog_free(&log);
    return rc;
}

static void compare_tables(FILE *f, int n, const char *const *names, const Metrics *const *m)
{
    fputs("# Comparison of runs (test)\n\n## Quantitative results\n\n", f);
    table_quantitative(f, n, names, m);
    fputs("## Combined metrics\n\n", f);
    table_combined(f, n, names, m);
    fputs("## Micro, macro, weighted and samples average\n\n", f);
    table_averages(f, n, names, m);
}

static int write_compare(const char *path, int n, const char *const *names, const Metrics *const *m)
{
    if (!path) {
        compare_tables(stdout, n, names, m);
        return fflush(stdout) == 0 ? 0 : err_set("stdout: %s", strerror(errno));
    }
    AtomicFile *af = atomic_open(path);
    if (!af) return -1;
    compare_tables(atomic_stream(af), n, names, m);
    return atomic_commit(af);
}

int report_compare(const char *path, int n_runs, const char *const *names, const Metrics *const *metrics)
{
    if (n_runs < 1) return err_set("no runs to compare");
    return write_compare(path, n_runs, names, metrics);
}

int report_compare_dirs(const char *path, int n_runs, const char *const *dirs)
{
    if (n_runs < 1) return err_set("no runs to compare");
    Metrics *ms = xcalloc((size_t)n_runs, sizeof *ms);
    const Metrics **mp = xcalloc((size_t)n_runs, sizeof *mp);
    char **names = xcalloc((size_t)n_runs, sizeof *names);
    int rc = 0;
    for (int loaded = 0; loaded < n_runs; loaded++) {
        char file[4096];
        if ((rc = join(file, sizeof file, dirs[loaded], "metrics.json")) != 0) break;
        json_t *o = json_read_file(file, 0);
        if (!o) {
            rc = -1;
            break;
        }
        char what[4200];
        snprintf(what, sizeof what, "%s: \"test\"", file);
        rc = metrics_from_json(&ms[loaded], NULL, json_object_get(o, "test"), what);
        json_decref(o);
        if (rc != 0) break;
        mp[loaded] = &ms[loaded];
        /* The directory's last component, trailing slashes ignored. */
        size_t len = strlen(dirs[loaded]);
        while (len > 1 && dirs[loaded][len - 1] == '/') len--;
        size_t start = len;
        while (start > 0 && dirs[loaded][start - 1] != '/') start--;
        names[loaded] = strndup(dirs[loaded] + start, len - start);
        if (!names[loaded]) die("out of memory");
    }
    if (rc == 0) rc = write_compare(path, n_runs, (const char *const *)names, mp);
    for (int r = 0; r < n_runs; r++) {
        metrics_free(&ms[r]);
        free(names[r]);
    }
    free(ms);
    free(mp);
    free(names);
    return rc;
}
