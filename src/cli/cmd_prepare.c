/* genre prepare: per-genre CSV files -> a cleaned, merged, stratified
 * multi-label dataset (train/val/test.jsonl, labels.txt, stats.json and two
 * SVG plots). Every input problem is found before anything is written; the
 * outputs are built in a sibling of --out and swapped in as one set
 * (atomic.h), so a failure or a kill leaves the earlier output as it was.
 * --out is a data output (outdir.h): prepare replaces its own, refuses
 * anything else unless --force, and never the --data directory. */
#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "src/core/atomic.h"
#include "src/core/outdir.h"
#include "src/data/corpus.h"
#include "src/cli/args.h"
#include "src/cli/commands.h"
#include "src/core/config.h"
#include "src/core/err.h"
#include "src/eval/plot.h"
#include "src/core/rng.h"
#include "src/data/stratify.h"
#include "src/core/utf8.h"

#define N_PARTS 3

static const char *const part_names[N_PARTS] = {"train", "val", "test"};

/* The output set: the parts, labels.txt, stats.json, then the two plots. */
#define N_OUTPUTS 7
static const char *const outputs[N_OUTPUTS] = {"train.jsonl", "val.jsonl", "test.jsonl", "labels.txt",
                                               "stats.json", "genre_distribution.svg", "cooccurrence.svg"};

static const CfgKey schema[] = {
    {"data", CFG_STRING, NULL, NULL, "directory of per-genre CSV files (or --data)"},
    {"split", CFG_STRING, "\"80/10/10\"", NULL, "train/val/test proportions (or --split)"},
    {"seed", CFG_INT, "42", "[0, 9223372036854775807]", "seed of the stratified split (or --seed)"},
    {"split_order", CFG_INT, "2", "[1, 2]", "stratify labels (1) or labels and label pairs (2)"},
    {"min_chars", CFG_INT, "20", "[0, 1000000]", "drop movies whose cleaned description is shorter (characters)"},
    {NULL, 0, NULL, NULL, NULL},
};
const CfgKey *const prepare_schema = schema;

static int parse_split(const char *s, double *props)
{
    const char *p = s;
    for (int k = 0; k < N_PARTS; k++) {
        char *end;
        errno = 0;
        props[k] = strtod(p, &end);
        if (end == p || errno || !(props[k] >= 0) || !isfinite(props[k]) ||
            (k < N_PARTS - 1 ? *end != '/' : *end != '\0'))
            return err_set("split '%s': expected three non-negative numbers like 80/10/10", s);
        p = end + 1;
    }
    if (!(props[0] + props[1] + props[2] > 0)) return err_set("split '%s': the parts sum to 0", s);
    return 0;
}

/* ---- statistics ------------------------------------------------------- */

static int words(const char *s)
{
    if (!*s) return 0;
    int n = 1;
    for (; *s; s++) n += *s == ' ';
    return n;
}


static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Percentiles with linear interpolation between ranks (numpy's default). */
static json_t *distribution(double *v, int n)
{
    static const int pcts[] = {0, 5, 25, 50, 75, 95, 99, 100};
    json_t *o = json_object();
    if (n == 0) return o;
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    double sum = 0;
    for (int i = 0; i < n; i++) sum += v[i];
    json_object_set_new(o, "mean", json_real(round(sum / n * 10) / 10));
    for (size_t k = 0; k < sizeof pcts / sizeof *pcts; k++) {
        double pos = pcts[k] / 100.0 * (n - 1);
        int lo = (int)floor(pos), hi = lo + 1 < n ? lo + 1 : lo;
        double val = v[lo] + (pos - lo) * (v[hi] - v[lo]);
        char key[8];
        snprintf(key, sizeof key, "p%d", pcts[k]);
        json_object_set_new(o, key, json_real(round(val * 10) / 10));
    }
    return o;
}

typedef struct {
    int n_kept, size[N_PARTS];
    int *idx;                          /* kept movies, in first-seen order */
    int *part;                         /* part of each kept movie */
    long count[N_PARTS + 1][CORPUS_MAX_LABELS]; /* per part, [N_PARTS] = all */
    long co[CORPUS_MAX_LABELS][CORPUS_MAX_LABELS];   /* movies with both labels */
    long alone[CORPUS_MAX_LABELS];            /* movies with only this label */
    double max_dev;
} Summary;

static json_t *build_stats(const Corpus *c, const Summary *s, const double *props,
                           const Config *cfg)
{
    int L = c->n_labels;
    json_t *st = json_object();
    json_object_set_new(st, "movies", json_integer(s->n_kept));
    json_object_set_new(st, "labels", json_integer(L));
    json_t *sizes = json_object();
    for (int p = 0; p < N_PARTS; p++) json_object_set_new(sizes, part_names[p], json_integer(s->size[p]));
    json_object_set_new(st, "split_sizes", sizes);
    json_t *rows = json_object();
    json_object_set_new(rows, "files", json_integer(c->counts.files));
    json_object_set_new(rows, "rows", json_integer(c->counts.rows));
    json_object_set_new(rows, "merged_same_movie_other_genre", json_integer(c->counts.other_genre_rows));
    json_object_set_new(rows, "merged_same_movie_same_genre", json_integer(c->counts.duplicate_rows));
    json_object_set_new(rows, "dropped_missing_title", json_integer(c->counts.missing_title));
    json_object_set_new(rows, "movies_before_drops", json_integer(c->n));
    json_t *spell = json_object(); /* genre -> {other spelling: rows} */
    for (int i = 0; i < c->n_spellings; i++) {
        const Spelling *sp = &c->spellings[i];
        if (!strcmp(sp->name, c->labels[sp->label])) continue;
        json_t *g = json_object_get(spell, c->labels[sp->label]);
        if (!g) json_object_set_new(spell, c->labels[sp->label], g = json_object());
        json_object_set_new(g, sp->name, json_integer(sp->rows));
    }
    json_object_set_new(rows, "genre_spellings_merged", spell);
    json_object_set_new(st, "input", rows);
    json_t *drops = json_object();
    json_object_set_new(drops, "empty_description", json_integer(c->counts.dropped[CORPUS_DROP_EMPTY]));
    json_object_set_new(drops, "too_short", json_integer(c->counts.dropped[CORPUS_DROP_SHORT]));
    json_object_set_new(drops, "duplicate_text_merged", json_integer(c->counts.dropped[CORPUS_DROP_DUP_TEXT]));
    json_object_set_new(st, "movies_dropped", drops);

    json_t *counts = json_object(), *card = json_object(), *share = json_object();
    for (int l = 0; l < L; l++) {
        json_t *lc = json_object(), *sh = json_object();
        json_object_set_new(lc, "all", json_integer(s->count[N_PARTS][l]));
        for (int p = 0; p < N_PARTS; p++) {
            json_object_set_new(lc, part_names[p], json_integer(s->count[p][l]));
            double f = s->count[N_PARTS][l] ? (double)s->count[p][l] / s->count[N_PARTS][l] : 0;
            json_object_set_new(sh, part_names[p], json_real(round(f * 1e4) / 1e4));
        }
        json_object_set_new(counts, c->labels[l], lc);
        json_object_set_new(share, c->labels[l], sh);
    }
    for (int p = 0; p <= N_PARTS; p++) {
        long total = 0, n = p < N_PARTS ? s->size[p] : s->n_kept;
        for (int l = 0; l < L; l++) total += s->count[p][l];
        json_object_set_new(card, p < N_PARTS ? part_names[p] : "all",
                            json_real(n ? round((double)total / n * 1e4) / 1e4 : 0));
    }
    json_object_set_new(st, "label_counts", counts);
    json_object_set_new(st, "label_cardinality", card);
    json_t *req = json_object();
    for (int p = 0; p < N_PARTS; p++) json_object_set_new(req, part_names[p], json_real(props[p]));
    json_t *split = json_object();
    json_object_set_new(split, "requested", req);
    json_object_set_new(split, "per_label", share);
    json_object_set_new(split, "max_abs_deviation", json_real(round(s->max_dev * 1e4) / 1e4));
    json_object_set_new(st, "split_shares", split);

    json_t *hist = json_object();
    int nl[CORPUS_MAX_LABELS + 1] = {0};
    for (int k = 0; k < s->n_kept; k++) nl[__builtin_popcountll(c->movies[s->idx[k]].labels)]++;
    for (int k = 1; k <= L; k++) {
        if (!nl[k]) continue;
        char key[8];
        snprintf(key, sizeof key, "%d", k);
        json_object_set_new(hist, key, json_integer(nl[k]));
    }
    json_object_set_new(st, "movies_by_label_count", hist);
    json_t *co = json_object();
    for (int a = 0; a < L; a++) {
        json_t *row = json_object();
        for (int b = 0; b < L; b++) json_object_set_new(row, c->labels[b], json_integer(s->co[a][b]));
        json_object_set_new(co, c->labels[a], row);
    }
    json_object_set_new(st, "cooccurrence", co);
    double *len_c = xmalloc((size_t)(s->n_kept ? s->n_kept : 1) * sizeof *len_c);
    double *len_w = xmalloc((size_t)(s->n_kept ? s->n_kept : 1) * sizeof *len_w);
    for (int k = 0; k < s->n_kept; k++) {
        len_c[k] = (int)utf8_count(c->movies[s->idx[k]].text);
        len_w[k] = words(c->movies[s->idx[k]].text);
    }
    json_object_set_new(st, "description_chars", distribution(len_c, s->n_kept));
    json_object_set_new(st, "description_words", distribution(len_w, s->n_kept));
    free(len_c);
    free(len_w);
    json_object_set_new(st, "config", config_to_json(cfg));
    return st;
}

/* ---- writing ---------------------------------------------------------- */

static void write_movie(FILE *f, const Corpus *c, const Movie *m)
{
    json_t *o = json_object(), *labs = json_array();
    json_object_set_new(o, "title", json_string(m->title));
    json_object_set_new(o, "year", json_integer(m->year));
    json_object_set_new(o, "text", json_string(m->text));
    for (int l = 0; l < c->n_labels; l++)
        if (m->labels >> l & 1) json_array_append_new(labs, json_string(c->labels[l]));
    json_object_set_new(o, "labels", labs);
    json_dumpf(o, f, JSON_PRESERVE_ORDER);
    fputc('\n', f);
    json_decref(o);
}

static char *join(const char *dir, const char *name)
{
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = xmalloc(n);
    snprintf(p, n, "%s/%s", dir, name);
    return p;
}

static int write_plots(const Corpus *c, const Summary *s, const char *out)
{
    int L = c->n_labels, order[CORPUS_MAX_LABELS];
    const char *names[CORPUS_MAX_LABELS];
    double v[CORPUS_MAX_LABELS], heat[CORPUS_MAX_LABELS * CORPUS_MAX_LABELS];
    for (int l = 0; l < L; l++) order[l] = l;
    for (int i = 1; i < L; i++) /* most frequent first */
        for (int j = i; j > 0 && s->count[N_PARTS][order[j - 1]] < s->count[N_PARTS][order[j]]; j--) {
            int t = order[j];
            order[j] = order[j - 1];
            order[j - 1] = t;
        }
    for (int l = 0; l < L; l++) {
        names[l] = c->labels[order[l]];
        v[l] = (double)s->count[N_PARTS][order[l]];
    }
    char title[160];
    long total = 0;
    for (int l = 0; l < L; l++) total += s->count[N_PARTS][l];
    snprintf(title, sizeof title, "Movies per genre (%d movies, %.2f genres per movie)", s->n_kept,
             s->n_kept ? (double)total / s->n_kept : 0.0);
    for (int a = 0; a < L; a++)
        for (int b = 0; b < L; b++)
            heat[a * L + b] = (double)(a == b ? s->alone[order[a]] : s->co[order[a]][order[b]]);
    char *dist = join(out, outputs[5]), *cooc = join(out, outputs[6]);
    int rc = plot_bars(dist, title, "movies", L, names, v);
    if (rc == 0)
        rc = plot_heatmap(cooc, "Genre co-occurrence (movies with both; diagonal: with that genre only)", L, names,
                          heat, "%.0f");
    free(dist);
    free(cooc);
    return rc;
}

/* Writes the seven outputs and the marker into dir (a fresh directory).
 * Movies are written in a seeded random order, not grouped by the genre
 * file they came from, so that any prefix of a part (limit_train, head -n)
 * is a fair sample of it. 0, or -1 with err_set. */
static int write_set(const Corpus *c, const Summary *s, json_t *stats, const char *dir, uint64_t seed)
{
    AtomicFile *af[5] = {NULL}; /* outputs[0..4] */
    int rc = 0;
    for (int i = 0; i < 5 && rc == 0; i++) {
        char *path = join(dir, outputs[i]);
        if (!(af[i] = atomic_open(path))) rc = -1;
        free(path);
    }
    if (rc == 0) {
        int *order = xmalloc((size_t)(s->n_kept ? s->n_kept : 1) * sizeof *order);
        for (int k = 0; k < s->n_kept; k++) order[k] = k;
        Rng r;
        rng_seed(&r, seed ^ 0x6f72646572ULL);
        rng_shuffle(&r, order, s->n_kept);
        for (int k = 0; k < s->n_kept; k++)
            write_movie(atomic_stream(af[s->part[order[k]]]), c, &c->movies[s->idx[order[k]]]);
        free(order);
        for (int l = 0; l < c->n_labels; l++) fprintf(atomic_stream(af[3]), "%s\n", c->labels[l]);
        json_dumpf(stats, atomic_stream(af[4]), JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(6));
        fputc('\n', atomic_stream(af[4]));
    }
    for (int i = 0; i < 5; i++)
        if (af[i]) {
            if (rc == 0) rc = atomic_commit(af[i]);
            else atomic_abort(af[i]);
        }
    if (rc == 0) rc = write_plots(c, s, dir);
    if (rc == 0) rc = outdir_mark(dir, "data");
    return rc;
}

/* An output of prepare from before outputs were marked: the seven files
 * and nothing else. */
static bool unmarked_own(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) return false;
    unsigned seen = 0;
    bool other = false;
    for (struct dirent *e; (e = readdir(d));) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        size_t i = 0;
        while (i < N_OUTPUTS && strcmp(e->d_name, outputs[i])) i++;
        if (i < N_OUTPUTS) seen |= 1u << i;
        else other = true;
    }
    closedir(d);
    return !other && seen == (1u << N_OUTPUTS) - 1;
}

/* Whether prepare may write out: a data output of its own (marked, or from
 * before the marker), a missing or empty directory, or with force anything
 * but the --data directory or one holding it (force would remove the
 * input). 0, or -1 with err_set. */
static int claim_out(const char *out, const char *data, bool force)
{
    char *o = realpath(out, NULL), *d = realpath(data, NULL);
    size_t n = o ? strlen(o) : 0;
    bool holds = o && d && !strncmp(o, d, n) && (d[n] == '\0' || d[n] == '/' || n == 1);
    free(o);
    free(d);
    if (holds) return err_set("--out %s: is the --data directory or holds it; choose another --out", out);
    if (unmarked_own(out)) return 0;
    bool replace;
    return outdir_claim(out, "data", true, force, "choose another --out", &replace);
}

/* Builds the output set in a sibling of out and swaps it in whole, under
 * out's writer lock. On failure out is as it was (or not made at all). */
static int write_outputs(const Corpus *c, const Summary *s, json_t *stats, const char *out, const char *data,
                         bool force, uint64_t seed)
{
    struct stat st;
    bool made = stat(out, &st) != 0;
    if (make_dirs(out) != 0) return -1;
    /* A symbolic link is followed: the set replaces what it points to. */
    char *dest = realpath(out, NULL);
    if (!dest) return err_set("%s: %s", out, strerror(errno));
    char *tmp = NULL;
    int rc = outdir_lock(dest);
    if (rc == 0) rc = claim_out(dest, data, force); /* again, now that no other writer can change it */
    if (rc == 0 && !(tmp = atomic_dir_begin(dest))) rc = -1;
    if (rc == 0) {
        if (write_set(c, s, stats, tmp, seed) == 0) {
            rc = atomic_dir_commit(tmp, dest);
        } else {
            atomic_dir_abort(tmp);
            rc = -1;
        }
    }
    if (rc != 0 && made) rmdir(dest);
    else if (rc != 0) err_set("%s (%s is as it was)", err_msg(), out);
    free(dest);
    return rc;
}

/* ---- the command ------------------------------------------------------- */

static void usage(FILE *f)
{
    fprintf(f, "usage: genre prepare --data DIR --out DIR [--split 80/10/10] [--seed N]\n"
               "                     [--force] [--config FILE] [key=value ...]\n\n"
               "Merges the per-genre CSV files of DIR into one multi-label dataset: rows\n"
               "are one movie when title (case-insensitive, a trailing year removed) and\n"
               "year agree; descriptions are cleaned of the site's artifacts; empty, short\n"
               "and repeated descriptions are dropped; the rest is split by iterative\n"
               "stratification. Writes train/val/test.jsonl, labels.txt, stats.json,\n"
               "genre_distribution.svg and cooccurrence.svg into --out, as one set: an\n"
               "earlier prepare output there is replaced whole; any other non-empty\n"
               "directory is refused unless --force.\n");
    config_print_help(schema);
}

int cmd_prepare(int argc, char **argv)
{
    const char *out = NULL, *config_path = NULL;
    bool force = false;
    const ArgOpt opts[] = {
        {.name = "--data", .key = "data"},
        ARG_OUT(&out, true),
        {.name = "--split", .key = "split"},
        {.name = "--seed", .key = "seed"},
        {.name = "--force", .flag = &force},
        {.name = "--config", .str = &config_path},
        {NULL},
    };
    Args a = args_parse(&(ArgSpec){.cmd = "prepare", .opts = opts, .usage = usage, .overrides = true}, argc, argv);
    Config *cfg = config_load(schema, config_path, a.n_overrides, a.overrides);
    if (!cfg) die_err();
    const char *data = cfg_str(cfg, "data");
    double props[N_PARTS];
    if (parse_split(cfg_str(cfg, "split"), props) != 0) die_err();
    double sum = props[0] + props[1] + props[2];
    for (int p = 0; p < N_PARTS; p++) props[p] /= sum;
    long min_chars = cfg_int(cfg, "min_chars");
    /* Refused before any work; checked again under the lock before writing. */
    if (claim_out(out, data, force) != 0) die_err();

    Corpus c = {0};
    if (corpus_read_dir(&c, data) != 0) die_err();
    corpus_clean(&c, (int)min_chars);

    Summary *s = xcalloc(1, sizeof *s);
    s->idx = xmalloc((size_t)(c.n ? c.n : 1) * sizeof *s->idx);
    for (int i = 0; i < c.n; i++)
        if (!c.movies[i].dropped) s->idx[s->n_kept++] = i;
    if (s->n_kept == 0) die("%s: no movie is left after cleaning", data);
    int L = c.n_labels;
    uint8_t *y = xcalloc((size_t)s->n_kept * L, 1);
    for (int k = 0; k < s->n_kept; k++)
        for (int l = 0; l < L; l++) y[(size_t)k * L + l] = c.movies[s->idx[k]].labels >> l & 1;
    s->part = xmalloc((size_t)s->n_kept * sizeof *s->part);
    if (stratify(s->n_kept, L, y, (int)cfg_int(cfg, "split_order"), N_PARTS, props,
                 (uint64_t)cfg_int(cfg, "seed"), s->part) != 0)
        die_err();
    for (int k = 0; k < s->n_kept; k++) {
        uint64_t m = c.movies[s->idx[k]].labels;
        s->size[s->part[k]]++;
        for (int a = 0; a < L; a++) {
            if (!(m >> a & 1)) continue;
            s->count[s->part[k]][a]++;
            s->count[N_PARTS][a]++;
            if (m == 1ull << a) s->alone[a]++;
            for (int b = 0; b < L; b++) s->co[a][b] += m >> b & 1;
        }
    }
    for (int l = 0; l < L; l++)
        for (int p = 0; p < N_PARTS; p++) {
            double f = (double)s->count[p][l] / s->count[N_PARTS][l];
            s->max_dev = fmax(s->max_dev, fabs(f - props[p]));
        }
    json_t *stats = build_stats(&c, s, props, cfg);
    if (write_outputs(&c, s, stats, out, data, force, (uint64_t)cfg_int(cfg, "seed")) != 0) die_err();

    printf("prepared %d movies with %d genres from %d files (%d rows) into %s\n", s->n_kept, L,
           c.counts.files, c.counts.rows, out);
    printf("  split    train %d, val %d, test %d (largest per-genre share deviation %.2f points)\n",
           s->size[0], s->size[1], s->size[2], 100 * s->max_dev);
    printf("  merged   %d rows of a movie already seen (%d in another genre, %d repeated)\n",
           c.counts.other_genre_rows + c.counts.duplicate_rows, c.counts.other_genre_rows,
           c.counts.duplicate_rows);
    printf("  dropped  %d rows without title; movies: %d empty, %d shorter than %ld chars, "
           "%d repeating another movie's text (labels merged)\n",
           c.counts.missing_title, c.counts.dropped[CORPUS_DROP_EMPTY], c.counts.dropped[CORPUS_DROP_SHORT], min_chars,
           c.counts.dropped[CORPUS_DROP_DUP_TEXT]);
    for (int i = 0; i < c.n_spellings; i++)
        if (strcmp(c.spellings[i].name, c.labels[c.spellings[i].label]))
            printf("  genre    '%s' (%d rows) read as %s\n", c.spellings[i].name, c.spellings[i].rows,
                   c.labels[c.spellings[i].label]);
    json_t *card = json_object_get(stats, "label_cardinality");
    json_t *chars = json_object_get(stats, "description_chars"), *wds = json_object_get(stats, "description_words");
    printf("  labels   %.2f per movie; description median %.0f chars / %.0f words (p95 %.0f chars)\n",
           json_real_value(json_object_get(card, "all")), json_real_value(json_object_get(chars, "p50")),
           json_real_value(json_object_get(wds, "p50")), json_real_value(json_object_get(chars, "p95")));

    json_decref(stats);
    free(y);
    free(s->idx);
    free(s->part);
    free(s);
    corpus_free(&c);
    config_free(cfg);
    args_free(&a);
    return 0;
}
