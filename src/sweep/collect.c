#include <errno.h>
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "src/core/atomic.h"
#include "src/core/err.h"
#include "src/core/jsonfile.h"
#include "src/eval/lengths.h"
#include "src/eval/metrics.h"
#include "src/eval/plot.h"
#include "src/eval/predictions.h"
#include "src/sweep/collect.h"
#include "src/sweep/stats.h"

/* The metrics of the seed's tables, as fields of Metrics. */
static const struct {
    const char *key, *label;
    size_t off;
} METRICS[] = {
    {"jaccard", "Jaccard", offsetof(Metrics, jaccard)},
    {"hamming", "Hamming Loss", offsetof(Metrics, hamming)},
    {"accuracy", "Accuracy", offsetof(Metrics, accuracy)},
    {"f1", "F1-Score", offsetof(Metrics, f1)},
    {"precision", "Precision", offsetof(Metrics, precision)},
    {"recall", "Recall", offsetof(Metrics, recall)},
    {"at_least_one", "At Least One", offsetof(Metrics, at_least_one)},
    {"at_least_two", "At Least Two", offsetof(Metrics, at_least_two)},
    {"micro_precision", "Micro Avg", offsetof(Metrics, micro_precision)},
    {"macro_precision", "Macro Avg", offsetof(Metrics, macro_precision)},
    {"weighted_precision", "Weighted Avg", offsetof(Metrics, weighted_precision)},
    {"micro_recall", "Micro Avg", offsetof(Metrics, micro_recall)},
    {"macro_recall", "Macro Avg", offsetof(Metrics, macro_recall)},
    {"weighted_recall", "Weighted Avg", offsetof(Metrics, weighted_recall)},
    {"micro_f1", "Micro Avg", offsetof(Metrics, micro_f1)},
    {"macro_f1", "Macro Avg", offsetof(Metrics, macro_f1)},
    {"weighted_f1", "Weighted Avg", offsetof(Metrics, weighted_f1)},
};
#define N_METRICS (int)(sizeof METRICS / sizeof *METRICS)
#define N_COMBINED 8 /* the first eight: the Combined Metrics table */

static double metric(const Metrics *m, int k) { return *(const double *)((const char *)m + METRICS[k].off); }

/* A finished run, read. */
typedef struct {
    int run;
    Metrics val, test;
    Predictions pred;
} Done;

typedef struct {
    int n;                 /* finished runs */
    int *done;             /* into the Done array */
    MeanSd val[N_METRICS], test[N_METRICS];
    double *precision, *recall, *f1, *jaccard; /* per genre, test, mean over the runs */
    double *movie;         /* per test movie: its Jaccard, mean over the runs */
    bool has_ci;
    PairedCI ci;           /* test Jaccard against the reference group */
} Group;

typedef struct {
    const Sweep *s;
    const char *dir;
    RunState *state;
    int n_done;
    Done *done;
    LabelSet labels;
    int L, n_test;
    Group *groups;
    int *by_support;       /* genres, most test movies first */
    /* Each training group against each baseline (s->n_train_groups x n_base,
     * row by group): test Jaccard difference and its paired interval, where
     * both have a finished run. */
    int n_base;
    PairedCI *vs;
    bool *has_vs;
    int best;              /* the training group of the highest mean test Jaccard; -1: none finished */
} Collect;

static const char *state_name(RunState st, bool done, SweepKind kind)
{
    if (done) return "finished";
    switch (st) {
    case RUN_INTERRUPTED: return "interrupted (a checkpoint in last/)";
    case RUN_RESTART:
        return kind == SWEEP_BASELINE ? "to run again (no test_predictions.jsonl)" : "stopped before its first checkpoint";
    default: return "not started";
    }
}

static const char *kind_name(SweepKind k) { return k == SWEEP_BASELINE ? "baseline" : "train"; }

/* Training group g (< n_train_groups) against baseline b (0-based among the baselines). */
static size_t vs_at(const Collect *c, int g, int b) { return (size_t)g * (size_t)c->n_base + (size_t)b; }

/* ---- reading ----------------------------------------------------------------- */

static int same_labels(const LabelSet *a, const LabelSet *b)
{
    if (a->n_labels != b->n_labels) return 0;
    for (int c = 0; c < a->n_labels; c++)
        if (strcmp(a->names[c], b->names[c])) return 0;
    return 1;
}

/* Run k's metrics and predictions into d, against the first run's genres and movies. */
static int read_done(Collect *c, Done *d, int k)
{
    const char *name = c->s->runs[k].name;
    char path[4400], what[4500];
    snprintf(path, sizeof path, "%s/%s/metrics.json", c->dir, name);
    json_t *o = json_read_file(path, 0);
    if (!o) return -1;
    LabelSet ls;
    snprintf(what, sizeof what, "%s: \"val\"", path);
    int rc = metrics_from_json(&d->val, NULL, json_object_get(o, "val"), what);
    snprintf(what, sizeof what, "%s: \"test\"", path);
    if (rc == 0) rc = metrics_from_json(&d->test, &ls, json_object_get(o, "test"), what);
    json_decref(o);
    if (rc != 0) return -1;
    if (c->labels.n_labels == 0) c->labels = ls;
    else {
        int same = same_labels(&ls, &c->labels);
        labels_free(&ls);
        if (!same)
            return err_set("%s: its genres are not those of run %s: the runs of a sweep must share their data", path,
                           c->s->runs[c->done[0].run].name);
    }
    snprintf(path, sizeof path, "%s/%s/test_predictions.jsonl", c->dir, name);
    if (predictions_read(&d->pred, path, &c->labels) != 0)
        return err_set("%s (a finished run keeps its per-movie predictions; was it trained by an older genre?)", err_msg());
    if (d->pred.n != d->test.n)
        return err_set("%s: %d movies, but its metrics.json counts %d test movies", path, d->pred.n, d->test.n);
    if (d != &c->done[0]) {
        const Predictions *f = &c->done[0].pred;
        int L = c->labels.n_labels;
        bool same = f->n == d->pred.n;
        for (int i = 0; same && i < f->n; i++)
            same = !strcmp(f->titles[i], d->pred.titles[i]) && !memcmp(f->y + (size_t)i * L, d->pred.y + (size_t)i * L, (size_t)L);
        if (!same)
            return err_set("%s: not the test movies of run %s: runs compared movie by movie must be scored on the "
                           "same test set (same data and limit_eval)", path, c->s->runs[c->done[0].run].name);
    }
    return 0;
}

static void done_free(Done *d)
{
    metrics_free(&d->val);
    metrics_free(&d->test);
    predictions_free(&d->pred);
}

/* ---- numbers ------------------------------------------------------------------ */

static void group_numbers(Collect *c, int g)
{
    Group *gr = &c->groups[g];
    int L = c->L, n = c->n_test;
    double *x = xmalloc((size_t)(gr->n ? gr->n : 1) * sizeof *x);
    for (int k = 0; k < N_METRICS; k++) {
        for (int r = 0; r < gr->n; r++) x[r] = metric(&c->done[gr->done[r]].val, k);
        mean_sd(x, gr->n, &gr->val[k]);
        for (int r = 0; r < gr->n; r++) x[r] = metric(&c->done[gr->done[r]].test, k);
        mean_sd(x, gr->n, &gr->test[k]);
    }
    free(x);
    gr->precision = xcalloc((size_t)L, sizeof *gr->precision);
    gr->recall = xcalloc((size_t)L, sizeof *gr->recall);
    gr->f1 = xcalloc((size_t)L, sizeof *gr->f1);
    gr->jaccard = xcalloc((size_t)L, sizeof *gr->jaccard);
    gr->movie = xcalloc((size_t)n, sizeof *gr->movie);
    for (int r = 0; r < gr->n; r++) {
        const Done *d = &c->done[gr->done[r]];
        for (int l = 0; l < L; l++) {
            gr->precision[l] += d->test.label_precision[l] / gr->n;
            gr->recall[l] += d->test.label_recall[l] / gr->n;
            gr->f1[l] += d->test.label_f1[l] / gr->n;
            gr->jaccard[l] += d->test.label_jaccard[l] / gr->n;
        }
        for (int i = 0; i < n; i++)
            gr->movie[i] += metrics_sample_jaccard(d->pred.y + (size_t)i * L, d->pred.pred + (size_t)i * L, L) / gr->n;
    }
}

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

/* ---- text helpers -------------------------------------------------------------- */

static void md_escape(FILE *f, const char *s)
{
    for (; *s; s++) {
        if (strchr("\\`*_[]<>|#", *s)) fputc('\\', f);
        fputc(*s, f);
    }
}

/* "st", "nd", "rd" or "th" after n. */
static const char *ordinal(long n)
{
    if (n % 100 >= 11 && n % 100 <= 13) return "th";
    return n % 10 == 1 ? "st" : n % 10 == 2 ? "nd" : n % 10 == 3 ? "rd" : "th";
}

static void cell(FILE *f, const MeanSd *m)
{
    if (m->n > 1) fprintf(f, " %.4f ± %.4f |", m->mean, m->sd);
    else fprintf(f, " %.4f |", m->mean);
}

/* Groups with at least one finished run, in sweep order. */
static int shown_groups(const Collect *c, int *out)
{
    int n = 0;
    for (int g = 0; g < c->s->n_groups; g++)
        if (c->groups[g].n > 0) out[n++] = g;
    return n;
}

static void table_header(FILE *f, const Collect *c, const char *corner, const int *gs, int n)
{
    fprintf(f, "| %s |", corner);
    for (int i = 0; i < n; i++) {
        fputs(" **", f);
        md_escape(f, c->s->groups[gs[i]]);
        fprintf(f, "** (%d) |", c->groups[gs[i]].n);
    }
    fputs("\n|:--|", f);
    for (int i = 0; i < n; i++) fputs("--:|", f);
    fputc('\n', f);
}

static void tables_of_split(FILE *f, const Collect *c, const int *gs, int n, bool test)
{
    const char *split = test ? "test" : "val";
    fprintf(f, "## Combined metrics (%s)\n\n", split);
    table_header(f, c, "**Metric**", gs, n);
    for (int k = 0; k < N_COMBINED; k++) {
        fprintf(f, "| **%s** |", METRICS[k].label);
        for (int i = 0; i < n; i++) cell(f, test ? &c->groups[gs[i]].test[k] : &c->groups[gs[i]].val[k]);
        fputc('\n', f);
    }
    fprintf(f, "\n### Micro, macro, weighted and samples average (%s)\n\n", split);
    /* Samples averages are the combined table's precision, recall and F1 (4, 5, 3). */
    const char *what[] = {"Precision", "Recall", "F1"};
    const int samples[] = {4, 5, 3};
    for (int q = 0; q < 3; q++) {
        table_header(f, c, what[q], gs, n);
        for (int a = 0; a < 4; a++) {
            int k = a < 3 ? N_COMBINED + 3 * q + a : samples[q];
            fprintf(f, "| **%s** |", a < 3 ? METRICS[k].label : "Samples Avg");
            for (int i = 0; i < n; i++) cell(f, test ? &c->groups[gs[i]].test[k] : &c->groups[gs[i]].val[k]);
            fputc('\n', f);
        }
        fputc('\n', f);
    }
}

/* ---- plots --------------------------------------------------------------------------- */

/* plots/PREFIX<a>[_vs_<b>].svg, or by group indices when the names are too long for a file name. */
static void plot_path(char *out, size_t cap, const char *plots, const Collect *c, const char *prefix, int a, int b)
{
    const char *na = c->s->groups[a], *nb = b >= 0 ? c->s->groups[b] : "";
    if (strlen(prefix) + strlen(na) + strlen(nb) + 12 < 240) {
        if (b >= 0) snprintf(out, cap, "%s/%s%s_vs_%s.svg", plots, prefix, na, nb);
        else snprintf(out, cap, "%s/%s%s.svg", plots, prefix, na);
    } else if (b >= 0) {
        snprintf(out, cap, "%s/%sgroup%d_vs_group%d.svg", plots, prefix, a, b);
    } else {
        snprintf(out, cap, "%s/%sgroup%d.svg", plots, prefix, a);
    }
}

static const char *base_name(const char *path)
{
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

/* The genres of a heatmap: the k least (low) or most (high) supported
 * genres present in the test set, most supported first. */
static int support_side(const Collect *c, bool high, int *out)
{
    int present = 0;
    for (int i = 0; i < c->L; i++) present += c->done[0].test.label_support[c->by_support[i]] > 0;
    int k = present / 2 < 6 ? present / 2 : 6;
    if (k < 1) k = present;
    for (int i = 0; i < k; i++) out[i] = c->by_support[high ? i : present - k + i];
    return k;
}

typedef struct {
    int n;
    char files[64][300];   /* names under plots/, for the markdown */
    char captions[64][400];
} PlotList;

static void listed(PlotList *pl, const char *path, const char *caption)
{
    if (pl->n >= 64) return;
    snprintf(pl->files[pl->n], sizeof pl->files[0], "%s", base_name(path));
    snprintf(pl->captions[pl->n++], sizeof pl->captions[0], "%s", caption);
}

static int plots_write(const Collect *c, const char *plots, const int *gs, int ng, PlotList *pl)
{
    int L = c->L, rc = 0;
    const Metrics *t0 = &c->done[0].test;
    char **names = xcalloc((size_t)L, sizeof *names), path[4600], title[1200], caption[400];
    for (int k = 0; k < L; k++)
        if (asprintf(&names[k], "%s (%d)", c->labels.names[c->by_support[k]], t0->label_support[c->by_support[k]]) < 0)
            die("out of memory");
    double *v = xmalloc((size_t)L * 3 * sizeof *v);
    const char *series[] = {"precision", "recall", "F1"};
    for (int i = 0; i < ng && rc == 0; i++) {
        const Group *g = &c->groups[gs[i]];
        for (int k = 0; k < L; k++) {
            int l = c->by_support[k];
            v[3 * k] = g->precision[l];
            v[3 * k + 1] = g->recall[l];
            v[3 * k + 2] = g->f1[l];
        }
        plot_path(path, sizeof path, plots, c, "per_genre_", gs[i], -1);
        snprintf(title, sizeof title, "%s: precision, recall, F1 per genre (test, mean of %d run%s)",
                 c->s->groups[gs[i]], g->n, g->n == 1 ? "" : "s");
        rc = plot_grouped_bars(path, title, "score", L, (const char *const *)names, 3, series, v);
        snprintf(caption, sizeof caption, "Precision, recall and F1 per genre of %s, genres by test support.",
                 c->s->groups[gs[i]]);
        listed(pl, path, caption);
    }
    for (int p = 0; p < c->s->n_pairs && rc == 0; p++) {
        int a = c->s->pairs[p][0], b = c->s->pairs[p][1];
        if (!c->groups[a].n || !c->groups[b].n) continue;
        for (int k = 0; k < L; k++) v[k] = c->groups[a].jaccard[c->by_support[k]] - c->groups[b].jaccard[c->by_support[k]];
        plot_path(path, sizeof path, plots, c, "jaccard_diff_", a, b);
        snprintf(title, sizeof title, "Per-genre test Jaccard: %s minus %s", c->s->groups[a], c->s->groups[b]);
        rc = plot_hbars(path, title, "Jaccard difference", L, (const char *const *)names, v);
        snprintf(caption, sizeof caption, "Per-genre test Jaccard of %s minus %s, genres by support (most at the top).",
                 c->s->groups[a], c->s->groups[b]);
        listed(pl, path, caption);
    }
    const char **rows = xmalloc((size_t)ng * sizeof *rows), **cols = xmalloc((size_t)L * sizeof *cols);
    double *heat = xmalloc((size_t)ng * L * sizeof *heat);
    for (int i = 0; i < ng; i++) rows[i] = c->s->groups[gs[i]];
    for (int side = 0; side < 2 && rc == 0; side++) {
        int idx[64], k = support_side(c, side == 1, idx);
        if (k == 0) break;
        for (int j = 0; j < k; j++) {
            for (int pos = 0; pos < L; pos++)
                if (c->by_support[pos] == idx[j]) cols[j] = names[pos];
        }
        for (int q = 0; q < 2 && rc == 0; q++) {
            for (int i = 0; i < ng; i++)
                for (int j = 0; j < k; j++)
                    heat[i * k + j] = q ? c->groups[gs[i]].recall[idx[j]] : c->groups[gs[i]].precision[idx[j]];
            snprintf(path, sizeof path, "%s/%s_%s_support.svg", plots, q ? "recall" : "precision", side ? "high" : "low");
            snprintf(title, sizeof title, "Test %s of each group on the %d %s-support genres", q ? "recall" : "precision",
                     k, side ? "highest" : "lowest");
            rc = plot_heatmap_grid(path, title, ng, rows, k, cols, heat, "%.2f");
            snprintf(caption, sizeof caption, "Test %s of each group (rows) on the %s-support genres (columns).",
                     q ? "recall" : "precision", side ? "high" : "low");
            listed(pl, path, caption);
        }
    }
    if (rc == 0) {
        LengthBuckets lb;
        const Predictions *p0 = &c->done[0].pred;
        length_buckets(&lb, p0->chars, p0->n);
        char bnames[LENGTH_BUCKETS_MAX][96];
        const char *bp[LENGTH_BUCKETS_MAX];
        double means[LENGTH_BUCKETS_MAX], *bars = xmalloc((size_t)lb.n * ng * sizeof *bars);
        for (int b = 0; b < lb.n; b++) {
            char range[48];
            length_bucket_name(range, sizeof range, &lb, b);
            snprintf(bnames[b], sizeof bnames[b], "%s (n=%d)", range, lb.count[b]);
            bp[b] = bnames[b];
        }
        for (int i = 0; i < ng; i++) {
            length_bucket_means(&lb, p0->chars, c->groups[gs[i]].movie, p0->n, means);
            for (int b = 0; b < lb.n; b++) bars[b * ng + i] = means[b];
        }
        snprintf(path, sizeof path, "%s/jaccard_by_length.svg", plots);
        rc = plot_grouped_bars(path, "Test Jaccard by description length (characters)", "Jaccard", lb.n, bp, ng, rows,
                               bars);
        listed(pl, path, "Test Jaccard of each group by the length of the description in characters, in buckets of "
                         "about equal numbers of movies (n); each movie's Jaccard is its mean over the group's runs.");
        free(bars);
    }
    for (int k = 0; k < L; k++) free(names[k]);
    free(names);
    free(v);
    free(rows);
    free(cols);
    free(heat);
    return rc;
}

/* ---- summary files ------------------------------------------------------------------ */

/* "excludes 0" or "includes 0": what an interval says of a difference. */
static const char *zero_word(const PairedCI *ci) { return ci->lo > 0 || ci->hi < 0 ? "excludes 0" : "includes 0"; }

/* Every training group against every baseline, and the best group's line. */
static void write_md_baselines(FILE *f, const Collect *c)
{
    const Sweep *s = c->s;
    fputs("## Test Jaccard against the baselines\n\n", f);
    int finished_base = 0;
    for (int b = 0; b < c->n_base; b++) finished_base += c->groups[s->n_train_groups + b].n > 0;
    if (!finished_base) {
        fputs("No baseline has finished yet: no comparison.\n\n", f);
        return;
    }
    if (c->best < 0) {
        fputs("No training run has finished yet: no comparison.\n\n", f);
        return;
    }
    const Group *best = &c->groups[c->best];
    fputs("Best group by mean test Jaccard: **", f);
    md_escape(f, s->groups[c->best]);
    fprintf(f, "** (%.4f, %d run%s)", best->test[0].mean, best->n, best->n == 1 ? "" : "s");
    for (int b = 0, first = 1; b < c->n_base; b++) {
        if (!c->has_vs[vs_at(c, c->best, b)]) continue;
        const PairedCI *ci = &c->vs[vs_at(c, c->best, b)];
        fprintf(f, "%s %+.4f [%+.4f, %+.4f] against **", first ? ":" : ";", ci->diff, ci->lo, ci->hi);
        md_escape(f, s->groups[s->n_train_groups + b]);
        fprintf(f, "** (%.4f), an interval that %s", c->groups[s->n_train_groups + b].test[0].mean, zero_word(ci));
        first = 0;
    }
    fputs(".\n\n| Group | Runs | Test Jaccard | Baseline | Baseline's test Jaccard | Difference | 95% interval |\n"
          "|:--|--:|--:|:--|--:|--:|:--|\n", f);
    for (int b = 0; b < c->n_base; b++)
        for (int g = 0; g < s->n_train_groups; g++) {
            if (!c->has_vs[vs_at(c, g, b)]) continue;
            const PairedCI *ci = &c->vs[vs_at(c, g, b)];
            fputs("| ", f);
            md_escape(f, s->groups[g]);
            fprintf(f, " | %d | %.4f | ", c->groups[g].n, c->groups[g].test[0].mean);
            md_escape(f, s->groups[s->n_train_groups + b]);
            fprintf(f, " | %.4f | %+.4f | [%+.4f, %+.4f] |\n", c->groups[s->n_train_groups + b].test[0].mean, ci->diff,
                    ci->lo, ci->hi);
        }
    fprintf(f, "\nEach difference is the group's mean test Jaccard minus the baseline's over the same %d test movies; "
               "its interval is the paired percentile bootstrap of the reference comparison (each movie's Jaccard "
               "averaged over the group's runs, %ld resamples of the movies, seed %llu, 2.5%% in each tail). The "
               "baselines ran on the training runs' data with their own configuration (a tuned threshold is "
               "chosen on val, as the runs' is).\n\n", c->n_test, s->resamples, (unsigned long long)s->boot_seed);
}

static void write_md(FILE *f, const Collect *c, const int *gs, int ng, const PlotList *pl)
{
    const Sweep *s = c->s;
    fputs("# Sweep ", f);
    md_escape(f, s->name);
    fprintf(f, "\n\n%d of %d runs finished, in %d group%s (runs that differ only in their seed form a group; each "
               "cell is the mean ± standard deviation over the group's finished runs, their number in parentheses, "
               "no ± for a single run). Reference group: **", c->n_done, s->n_runs, ng, ng == 1 ? "" : "s");
    md_escape(f, s->groups[s->reference]);
    fprintf(f, "**. Test set: %d movies, %d genres.\n\n## Runs\n\n| Run | Group | State | Val Jaccard | Test Jaccard |\n"
               "|:--|:--|:--|--:|--:|\n", c->n_test, c->L);
    for (int r = 0, d = 0; r < s->n_runs; r++) {
        bool done = d < c->n_done && c->done[d].run == r;
        fputs("| ", f);
        md_escape(f, s->runs[r].name);
        fputs(" | ", f);
        md_escape(f, s->runs[r].group);
        fprintf(f, " | %s |", state_name(c->state[r], done, s->runs[r].kind));
        if (done) fprintf(f, " %.4f | %.4f |\n", c->done[d].val.jaccard, c->done[d].test.jaccard), d++;
        else fputs(" | |\n", f);
    }
    fputc('\n', f);
    tables_of_split(f, c, gs, ng, true);
    tables_of_split(f, c, gs, ng, false);

    fputs("## Test Jaccard against the reference (paired bootstrap)\n\n", f);
    const Group *ref = &c->groups[s->reference];
    if (!ref->n) {
        fputs("The reference group has no finished run yet: no comparison.\n\n", f);
    } else {
        long tail = s->resamples / 40 > 0 ? s->resamples / 40 : 1; /* as bootstrap_paired takes it */
        fputs("| Group | Runs | Test Jaccard | Difference | 95% interval |\n|:--|--:|--:|--:|:--|\n", f);
        for (int i = 0; i < ng; i++) {
            const Group *g = &c->groups[gs[i]];
            fputs("| ", f);
            md_escape(f, s->groups[gs[i]]);
            fprintf(f, " | %d | %.4f |", g->n, g->test[0].mean);
            if (gs[i] == s->reference) fputs(" (reference) | |\n", f);
            else fprintf(f, " %+.4f | [%+.4f, %+.4f] |\n", g->ci.diff, g->ci.lo, g->ci.hi);
        }
        fprintf(f, "\nMethod: each test movie's Jaccard (of its predicted and true genres) is averaged over the "
                   "finished runs (seeds) of a group, and its difference to the reference group's is taken movie by "
                   "movie over the same %d test movies. The interval is the paired percentile bootstrap of the mean "
                   "difference: %ld resamples of the %d movies drawn with replacement (xoshiro256**, seed %llu); the "
                   "interval runs from the %ld%s smallest to the %ld%s largest resampled mean (2.5%% in each tail). It "
                   "measures the "
                   "uncertainty from the choice of test movies; the seeds enter only through the average. An "
                   "interval that excludes 0 is a difference the test set resolves.\n\n",
                c->n_test, s->resamples, c->n_test, (unsigned long long)s->boot_seed, tail, ordinal(tail), tail,
                ordinal(tail));
    }

    if (c->n_base) write_md_baselines(f, c);

    fputs("## Per-genre F1 (test)\n\n| Genre | Support |", f);
    for (int i = 0; i < ng; i++) {
        fputc(' ', f);
        md_escape(f, s->groups[gs[i]]);
        fputs(" |", f);
    }
    fputs("\n|:--|--:|", f);
    for (int i = 0; i < ng; i++) fputs("--:|", f);
    fputc('\n', f);
    for (int k = 0; k < c->L; k++) {
        int l = c->by_support[k];
        fputs("| ", f);
        md_escape(f, c->labels.names[l]);
        fprintf(f, " | %d |", c->done[0].test.label_support[l]);
        for (int i = 0; i < ng; i++) fprintf(f, " %.4f |", c->groups[gs[i]].f1[l]);
        fputc('\n', f);
    }
    fputs("\n## Plots\n\n", f);
    for (int p = 0; p < pl->n; p++) {
        fprintf(f, "![%s](plots/%s)\n\n", pl->files[p], pl->files[p]);
        fprintf(f, "%s\n\n", pl->captions[p]);
    }
}

static void write_csv(FILE *f, const Collect *c, const int *gs, int ng)
{
    fputs("group,runs,split,metric,mean,sd,ci_low,ci_high\n", f);
    for (int i = 0; i < ng; i++) {
        const Group *g = &c->groups[gs[i]];
        for (int split = 0; split < 2; split++)
            for (int k = 0; k < N_METRICS; k++) {
                const MeanSd *m = split ? &g->val[k] : &g->test[k];
                fprintf(f, "\"%s\",%d,%s,%s,%.10g,", c->s->groups[gs[i]], g->n, split ? "val" : "test", METRICS[k].key,
                        m->mean);
                if (m->n > 1) fprintf(f, "%.10g", m->sd);
                fputs(",,\n", f);
            }
        if (g->has_ci)
            fprintf(f, "\"%s\",%d,test,jaccard_diff_vs_reference,%.10g,,%.10g,%.10g\n", c->s->groups[gs[i]], g->n,
                    g->ci.diff, g->ci.lo, g->ci.hi);
    }
    /* Against the baselines: every training group, then the best one's again under its own name. */
    const Sweep *s = c->s;
    for (int pass = 0; pass < 2; pass++)
        for (int g = 0; g < s->n_train_groups; g++) {
            if (pass && g != c->best) continue;
            for (int b = 0; b < c->n_base; b++) {
                if (!c->has_vs[vs_at(c, g, b)]) continue;
                const PairedCI *ci = &c->vs[vs_at(c, g, b)];
                fprintf(f, "\"%s\",%d,test,%sjaccard_diff_vs_%s,%.10g,,%.10g,%.10g\n", s->groups[g], c->groups[g].n,
                        pass ? "best_" : "", s->groups[s->n_train_groups + b], ci->diff, ci->lo, ci->hi);
            }
        }
}

static json_t *split_json(const MeanSd *m)
{
    json_t *o = json_object();
    for (int k = 0; k < N_METRICS; k++)
        json_object_set_new(o, METRICS[k].key, m[k].n > 1 ? json_pack("{s:f, s:f}", "mean", m[k].mean, "sd", m[k].sd)
                                                          : json_pack("{s:f, s:n}", "mean", m[k].mean, "sd"));
    return o;
}

static json_t *ci_json(const PairedCI *ci)
{
    return json_pack("{s:f, s:f, s:f, s:i, s:b}", "diff", ci->diff, "ci_low", ci->lo, "ci_high", ci->hi, "movies", ci->n,
                     "excludes_zero", ci->lo > 0 || ci->hi < 0);
}

/* {"baselines": [{name, runs, test_jaccard}], "comparisons": [{group, runs,
 * test_jaccard, baseline, baseline_test_jaccard, diff, ci_low, ci_high,
 * movies, excludes_zero}], "best": {group, runs, test_jaccard, vs: [...]} or null} */
static json_t *baselines_json(const Collect *c)
{
    const Sweep *s = c->s;
    json_t *bases = json_array(), *cmp = json_array(), *best_vs = json_array();
    for (int b = 0; b < c->n_base; b++) {
        const Group *gb = &c->groups[s->n_train_groups + b];
        json_array_append_new(bases, json_pack("{s:s, s:i, s:o}", "name", s->groups[s->n_train_groups + b], "runs",
                                               gb->n, "test_jaccard", gb->n ? json_real(gb->test[0].mean) : json_null()));
    }
    for (int b = 0; b < c->n_base; b++)
        for (int g = 0; g < s->n_train_groups; g++) {
            if (!c->has_vs[vs_at(c, g, b)]) continue;
            json_t *o = ci_json(&c->vs[vs_at(c, g, b)]), *pre = json_pack(
                "{s:s, s:i, s:f, s:s, s:f}", "group", s->groups[g], "runs", c->groups[g].n, "test_jaccard",
                c->groups[g].test[0].mean, "baseline", s->groups[s->n_train_groups + b], "baseline_test_jaccard",
                c->groups[s->n_train_groups + b].test[0].mean);
            json_object_update(pre, o);
            json_decref(o);
            json_array_append_new(cmp, pre);
            if (g == c->best) {
                json_t *v = ci_json(&c->vs[vs_at(c, g, b)]);
                json_object_set_new(v, "baseline", json_string(s->groups[s->n_train_groups + b]));
                json_array_append_new(best_vs, v);
            }
        }
    json_t *best = json_null();
    if (c->best >= 0 && json_array_size(best_vs))
        best = json_pack("{s:s, s:i, s:f, s:O}", "group", s->groups[c->best], "runs", c->groups[c->best].n,
                         "test_jaccard", c->groups[c->best].test[0].mean, "vs", best_vs);
    json_decref(best_vs);
    return json_pack("{s:o, s:o, s:o}", "baselines", bases, "comparisons", cmp, "best", best);
}

static json_t *summary_json(const Collect *c, const int *gs, int ng)
{
    const Sweep *s = c->s;
    json_t *runs = json_array(), *groups = json_array();
    for (int r = 0, d = 0; r < s->n_runs; r++) {
        bool done = d < c->n_done && c->done[d].run == r;
        d += done;
        json_array_append_new(runs, json_pack("{s:s, s:s, s:s, s:s}", "name", s->runs[r].name, "group",
                                              s->runs[r].group, "kind", kind_name(s->runs[r].kind), "state",
                                              state_name(c->state[r], done, s->runs[r].kind)));
    }
    for (int i = 0; i < ng; i++) {
        const Group *g = &c->groups[gs[i]];
        json_t *members = json_array(), *genres = json_object();
        for (int r = 0; r < g->n; r++) json_array_append_new(members, json_string(s->runs[c->done[g->done[r]].run].name));
        for (int k = 0; k < c->L; k++) {
            int l = c->by_support[k];
            json_object_set_new(genres, c->labels.names[l],
                                json_pack("{s:f, s:f, s:f, s:f, s:i}", "precision", g->precision[l], "recall", g->recall[l],
                                          "f1", g->f1[l], "jaccard", g->jaccard[l], "support",
                                          c->done[0].test.label_support[l]));
        }
        json_t *cmp = g->has_ci ? json_pack("{s:f, s:f, s:f, s:i}", "diff", g->ci.diff, "ci_low", g->ci.lo, "ci_high",
                                            g->ci.hi, "movies", g->ci.n)
                                : json_null();
        json_array_append_new(groups, json_pack("{s:s, s:s, s:o, s:o, s:o, s:o, s:o}", "name", s->groups[gs[i]], "kind",
                                                kind_name(gs[i] < s->n_train_groups ? SWEEP_TRAIN : SWEEP_BASELINE),
                                                "runs", members, "val", split_json(g->val), "test",
                                                split_json(g->test), "per_genre", genres,
                                                "test_jaccard_vs_reference", cmp));
    }
    return json_pack("{s:s, s:i, s:i, s:s, s:{s:s, s:I, s:I, s:f}, s:o, s:o, s:o}", "sweep", s->name, "runs_total",
                     s->n_runs, "runs_finished", c->n_done, "reference", s->groups[s->reference], "bootstrap", "method",
                     "paired percentile bootstrap over the test movies of the per-movie Jaccard difference, each "
                     "movie's Jaccard averaged over the group's runs", "resamples", (json_int_t)s->resamples, "seed",
                     (json_int_t)s->boot_seed, "confidence", 0.95, "runs", runs, "groups", groups,
                     "test_jaccard_vs_baselines", baselines_json(c));
}

static int write_text(const char *path, void (*fn)(FILE *, const Collect *, const int *, int), const Collect *c,
                      const int *gs, int ng)
{
    AtomicFile *af = atomic_open(path);
    if (!af) return -1;
    fn(atomic_stream(af), c, gs, ng);
    return atomic_commit(af);
}

static int write_outputs(Collect *c)
{
    int *gs = xmalloc((size_t)c->s->n_groups * sizeof *gs), ng = shown_groups(c, gs), rc = 0;
    char plots[4200], path[4300];
    snprintf(plots, sizeof plots, "%s/plots", c->dir);
    PlotList *pl = xcalloc(1, sizeof *pl);
    char *tmp = atomic_dir_begin(plots);
    if (!tmp) rc = -1;
    if (rc == 0 && plots_write(c, tmp, gs, ng, pl) != 0) {
        atomic_dir_abort(tmp);
        rc = -1;
    } else if (rc == 0) {
        rc = atomic_dir_commit(tmp, plots);
    }
    if (rc == 0) {
        snprintf(path, sizeof path, "%s/summary.csv", c->dir);
        rc = write_text(path, write_csv, c, gs, ng);
    }
    if (rc == 0) {
        json_t *o = summary_json(c, gs, ng);
        snprintf(path, sizeof path, "%s/summary.json", c->dir);
        rc = json_write_file(path, o, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(10));
        json_decref(o);
    }
    if (rc == 0) {
        snprintf(path, sizeof path, "%s/summary.md", c->dir);
        AtomicFile *af = atomic_open(path);
        if (!af) rc = -1;
        else {
            write_md(atomic_stream(af), c, gs, ng, pl);
            rc = atomic_commit(af);
        }
    }
    free(pl);
    free(gs);
    return rc;
}

int sweep_collect(const Sweep *s, const char *dir, const CfgKey *train, const CfgKey *baseline, int *n_finished)
{
    Collect c = {.s = s, .dir = dir, .n_base = s->n_groups - s->n_train_groups, .best = -1};
    c.state = xcalloc((size_t)s->n_runs, sizeof *c.state);
    c.done = xcalloc((size_t)s->n_runs, sizeof *c.done);
    int rc = 0;
    for (int r = 0; r < s->n_runs && rc == 0; r++) {
        rc = sweep_run_state(s, r, dir, train, baseline, &c.state[r]);
        if (rc == 0 && c.state[r] == RUN_FINISHED) {
            Done *d = &c.done[c.n_done++];
            d->run = r;
            rc = read_done(&c, d, r);
        }
    }
    if (rc == 0 && c.n_done == 0) rc = err_set("%s: no run of the sweep has finished yet: nothing to collect", dir);
    if (rc == 0) {
        c.L = c.labels.n_labels;
        c.n_test = c.done[0].pred.n;
        c.by_support = labels_by_support(&c.done[0].test);
        c.groups = xcalloc((size_t)s->n_groups, sizeof *c.groups);
        for (int g = 0; g < s->n_groups; g++) {
            Group *gr = &c.groups[g];
            gr->done = xmalloc((size_t)c.n_done * sizeof *gr->done);
            for (int d = 0; d < c.n_done; d++)
                if (!strcmp(s->runs[c.done[d].run].group, s->groups[g])) gr->done[gr->n++] = d;
            group_numbers(&c, g);
        }
        const Group *ref = &c.groups[s->reference];
        for (int g = 0; g < s->n_groups; g++)
            if (g != s->reference && ref->n && c.groups[g].n) {
                c.groups[g].has_ci = true;
                bootstrap_paired(c.groups[g].movie, ref->movie, c.n_test, s->resamples, s->boot_seed, &c.groups[g].ci);
            }
        /* The same bootstrap, each training group against each baseline. */
        c.vs = xcalloc((size_t)s->n_train_groups * (size_t)c.n_base + 1, sizeof *c.vs);
        c.has_vs = xcalloc((size_t)s->n_train_groups * (size_t)c.n_base + 1, sizeof *c.has_vs);
        for (int g = 0; g < s->n_train_groups; g++) {
            if (!c.groups[g].n) continue;
            if (c.best < 0 || c.groups[g].test[0].mean > c.groups[c.best].test[0].mean) c.best = g;
            for (int b = 0; b < c.n_base; b++) {
                const Group *gb = &c.groups[s->n_train_groups + b];
                if (!gb->n) continue;
                c.has_vs[vs_at(&c, g, b)] = true;
                bootstrap_paired(c.groups[g].movie, gb->movie, c.n_test, s->resamples, s->boot_seed, &c.vs[vs_at(&c, g, b)]);
            }
        }
        rc = write_outputs(&c);
    }
    if (n_finished) *n_finished = c.n_done;
    for (int d = 0; d < c.n_done; d++) done_free(&c.done[d]);
    for (int g = 0; c.groups && g < s->n_groups; g++) {
        Group *gr = &c.groups[g];
        free(gr->done);
        free(gr->precision);
        free(gr->recall);
        free(gr->f1);
        free(gr->jaccard);
        free(gr->movie);
    }
    free(c.groups);
    free(c.vs);
    free(c.has_vs);
    free(c.by_support);
    free(c.done);
    free(c.state);
    labels_free(&c.labels);
    return rc;
}
