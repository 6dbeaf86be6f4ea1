#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "atomic.h"
#include "clean.h"
#include "err.h"
#include "plot.h"
#include "report.h"

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

static void write_markdown(FILE *f, const ReportRun *run, int n_examples)
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

    fputs("## Per-genre classification report (test)\n\n"
          "| Genre | Precision | Recall | F1 | Jaccard | Support |\n"
          "|:--|--:|--:|--:|--:|--:|\n", f);
    int *idx = labels_by_support(t);
    for (int k = 0; k < t->n_labels; k++) {
        int c = idx[k];
        fputs("| ", f);
        md_text(f, run->labels->names[c], -1);
        fprintf(f, " | %.4f | %.4f | %.4f | %.4f | %d |\n", t->label_precision[c], t->label_recall[c],
                t->label_f1[c], t->label_jaccard[c], t->label_support[c]);
    }
    free(idx);
    fputs("\n![Precision, recall and F1 per genre](per_genre_prf.svg)\n\n"
          "![Jaccard per genre against support](jaccard_vs_support.svg)\n\n", f);

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

static int write_json(const char *path, json_t *o)
{
    AtomicFile *af = atomic_open(path);
    if (!af) {
        json_decref(o);
        return -1;
    }
    int rc = json_dumpf(o, atomic_stream(af), JSON_INDENT(2) | JSON_REAL_PRECISION(17));
    json_decref(o);
    fputc('\n', atomic_stream(af));
    if (rc != 0) {
        atomic_abort(af);
        return err_set("%s: cannot write the metrics", path);
    }
    return atomic_commit(af);
}

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
    return 0;
}

int report_write(const char *dir, const ReportRun *run)
{
    if (check_run(run) != 0 || make_dirs(dir) != 0) return -1;
    char path[4096];
    json_t *all = json_object();
    if (run->val) json_object_set_new(all, "val", metrics_to_json(run->val, run->labels));
    json_object_set_new(all, "test", metrics_to_json(run->test, run->labels));
    if (join(path, sizeof path, dir, "metrics.json") != 0) {
        json_decref(all);
        return -1;
    }
    if (write_json(path, all) != 0) return -1;

    if (plot_per_genre(dir, run) != 0) return -1;
    int n_words = run->n_words > 0 ? run->n_words : 15;
    if (run->linear && plot_top_words(dir, run, n_words) != 0) return -1;

    if (join(path, sizeof path, dir, "report.md") != 0) return -1;
    AtomicFile *af = atomic_open(path);
    if (!af) return -1;
    write_markdown(atomic_stream(af), run, run->n_examples > 0 ? run->n_examples : 8);
    return atomic_commit(af);
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
        json_error_t jerr;
        json_t *o = json_load_file(file, 0, &jerr);
        if (!o) {
            rc = jerr.line > 0 ? err_set("%s:%d: %s", file, jerr.line, jerr.text)
                               : err_set("%s: %s", file, jerr.text);
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
