#include <criterion/criterion.h>
#include <dirent.h>
#include <fcntl.h>
#include <glob.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "src/data/clean.h"
#include "src/cli/commands.h"
#include "src/io/csv.h"
#include "src/data/dataset.h"
#include "src/core/err.h"
#include "src/data/stratify.h"
#include "tests/testutil.h"

/* ---- csv ------------------------------------------------------------------ */

static CsvReader open_str(const char *s)
{
    CsvReader r;
    cr_assert_eq(csv_open_mem(&r, "t.csv", s, strlen(s)), 0, "%s", err_msg());
    return r;
}

/* Reads the next record, which starts on `line` and holds two fields. */
static void expect_record(CsvReader *r, int line, const char *f0, const char *f1)
{
    cr_assert_eq(csv_next(r), 1, "no record at line %d", line);
    cr_expect_eq(r->record_line, line);
    cr_assert_eq(r->n_fields, 2, "line %d", line);
    cr_expect_str_eq(r->fields[0], f0);
    cr_expect_str_eq(r->fields[1], f1);
}

Test(csv, quoting_newlines_crlf_bom)
{
    CsvReader r = open_str("\xEF\xBB\xBFgenre,text\r\n"
                           "Action,\"He said \"\"run\"\", and ran,\r\nfar\"\r\n"
                           "\r\n"
                           ",\"\"\n"
                           "War,last line without newline");
    cr_assert_eq(csv_next(&r), 1);
    cr_expect_eq(r.n_fields, 2);
    cr_expect_str_eq(r.fields[0], "genre", "the byte-order mark is not part of the first name");
    cr_assert_eq(csv_next(&r), 1);
    cr_expect_eq(r.record_line, 2);
    cr_expect_str_eq(r.fields[1], "He said \"run\", and ran,\r\nfar");
    cr_assert_eq(csv_next(&r), 1, "the blank line is skipped");
    cr_expect_eq(r.record_line, 5, "line numbers count the embedded newline and the blank line");
    cr_expect_eq(r.n_fields, 2);
    cr_expect_str_eq(r.fields[0], "");
    cr_expect_str_eq(r.fields[1], "");
    cr_assert_eq(csv_next(&r), 1);
    cr_expect_eq(r.record_line, 6);
    cr_expect_str_eq(r.fields[1], "last line without newline");
    cr_expect_eq(csv_next(&r), 0);
    csv_close(&r);
}

/* Old Mac files end lines with a bare CR: each is a record end (and a line
 * for messages) like LF and CRLF; inside quotes it is kept as text. Before,
 * such a file read as one long header record and no rows. */
Test(csv, bare_cr_ends_a_line)
{
    CsvReader r = open_str("genre,text\r"
                           "Action,\"one\rtwo\"\r"
                           "\r"
                           "War,x\n"
                           "Noir,y\r\n"
                           "Drama,last\r");
    expect_record(&r, 1, "genre", "text");
    expect_record(&r, 2, "Action", "one\rtwo");
    /* The CR inside quotes and the blank line count as lines. */
    expect_record(&r, 5, "War", "x");
    expect_record(&r, 6, "Noir", "y");
    expect_record(&r, 7, "Drama", "last");
    cr_expect_eq(csv_next(&r), 0);
    csv_close(&r);
}

static void expect_csv_error_n(const char *text, size_t n, const char *what)
{
    CsvReader r;
    if (csv_open_mem(&r, "bad.csv", text, n) != 0) {
        cr_expect(strstr(err_msg(), what) != NULL, "'%s' not in '%s'", what, err_msg());
        return;
    }
    int rc;
    while ((rc = csv_next(&r)) == 1) {}
    cr_expect_eq(rc, -1, "no error for %s", what);
    cr_expect(strstr(err_msg(), what) != NULL, "'%s' not in '%s'", what, err_msg());
    csv_close(&r);
}

static void expect_csv_error(const char *text, const char *what)
{
    expect_csv_error_n(text, strlen(text), what);
}

Test(csv, errors_name_the_line)
{
    expect_csv_error("a,b\n1,2\n3,\"open\nstill open\n", "bad.csv:3: unterminated quoted field");
    expect_csv_error("a,b\n1,\"x\"y\n", "bad.csv:2: unexpected text after a closing quote");
    expect_csv_error("a,b\n1,x\"y\n", "bad.csv:2: quote inside an unquoted field");
    expect_csv_error("a,b\n1,2\n3,\xC3\x28\n", "bad.csv:3: invalid UTF-8");
    expect_csv_error("a,b\n\xED\xA0\x80,2\n", "bad.csv:2: invalid UTF-8"); /* a surrogate */
    expect_csv_error("", "bad.csv: empty file");
    expect_csv_error("\xEF\xBB\xBF", "bad.csv: empty file");
    /* Lines ended by a bare CR are counted too. */
    expect_csv_error("a,b\r1,2\r3,\"open\rstill open\r", "bad.csv:3: unterminated quoted field");
    expect_csv_error("a,b\r1,\"x\"y\r", "bad.csv:2: unexpected text after a closing quote");
    expect_csv_error("a,b\r\r1,x\"y\r", "bad.csv:3: quote inside an unquoted field");
    expect_csv_error("a,b\r1,2\r3,\xC3\x28\r", "bad.csv:3: invalid UTF-8");
}

/* A NUL byte would end the field it is in (fields are C strings): the rest
 * of a description would vanish without a word. It is an error naming its
 * line, column (characters) and byte offset. */
Test(csv, nul_byte_is_an_error_naming_line_and_column)
{
    static const char text[] = "a,b\n1,caf\xC3\xA9 x\0y\n";
    expect_csv_error_n(text, sizeof text - 1, "bad.csv:2:9: NUL byte (offset 13)");
    static const char first[] = "\0a,b\n";
    expect_csv_error_n(first, sizeof first - 1, "bad.csv:1:1: NUL byte (offset 0)");
}

/* ---- cleaning (inputs taken from real rows) ------------------------------ */

static void expect_clean(const char *in, const char *want)
{
    char *got = clean_description(in);
    cr_expect_str_eq(got, want, "input: %s", in);
    free(got);
}

Test(clean, site_artifacts)
{
    expect_clean("The Avengers and their allies must be willing to sacrifice all. ...<more>",
                 "The Avengers and their allies must be willing to sacrifice all.");
    expect_clean("assassin's guild, the High Table,\xE2\x80\xA6Tags : sequel | chase | dog...<more>",
                 "assassin's guild, the High Table,");
    expect_clean("But one of the gang thinks the new man seems familiar... Written by Jim BeaverTags : murder...<more>",
                 "But one of the gang thinks the new man seems familiar...");
    expect_clean("The 1906 quake destroys his place. Written by Ed\xE2\x80\xA6Tags : money | cowboy...<more>",
                 "The 1906 quake destroys his place.");
    expect_clean("must find the real robbers and clear his name. Written by [email\xC2\xA0protected]Tags : money | gun...<more>",
                 "must find the real robbers and clear his name.");
    expect_clean("trapped in the elevator at the mercy of her tormentors\r\nTags : elevator...<more>",
                 "trapped in the elevator at the mercy of her tormentors");
    expect_clean("in this fanciful adventure.\r\n...<more>", "in this fanciful adventure.");
    expect_clean("before the two\xE2\x80\xA6Tags : love...<more>", "before the two");
    expect_clean("falls for an upper-crust Englishman.Tags : camp...<more>", "falls for an upper-crust Englishman.");
    expect_clean("villain threatens humanity. Written by\xE2\x80\xA6Tags : hero...<more>", "villain threatens humanity.");
    expect_clean("a story \xE2\x80\xA6...<more>", "a story");
    expect_clean("n/ATags : china...<more>", "");
    expect_clean("n/A", "");
    expect_clean("Tags : cat...<more>", "");
    expect_clean("", "");
}

Test(clean, plot_text_is_kept)
{
    expect_clean("  Vince \t would\n\nkill   for a good grade...  ", "Vince would kill for a good grade...");
    expect_clean("It ends.<more>", "It ends.");
    /* A "Written by" that is part of the plot, far from the end, stays. */
    const char *s = "Written by a ghost, the novel drives its readers mad, and the young editor who finds "
                    "it must stop the last print run.";
    expect_clean(s, s);
}

/* ---- stratification ----------------------------------------------------- */

static uint64_t rng_state;
static double rnd(void)
{
    uint64_t z = (rng_state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return (double)((z ^ (z >> 31)) >> 11) / 9007199254740992.0;
}

/* n examples, L labels with frequencies from 1% to 40%, correlated pairs. */
static uint8_t *synthetic(int n, int L)
{
    uint8_t *y = calloc((size_t)n * L, 1);
    rng_state = 7;
    for (int i = 0; i < n; i++)
        for (int l = 0; l < L; l++) {
            double p = 0.01 + 0.39 * l / (L - 1);
            if (l > 0 && y[(size_t)i * L + l - 1]) p = fmin(1, p * 2);
            y[(size_t)i * L + l] = rnd() < p;
        }
    return y;
}

Test(stratify, every_label_keeps_its_share)
{
    int n = 4000, L = 10, part[4000];
    uint8_t *y = synthetic(n, L);
    double props[3] = {0.8, 0.1, 0.1};
    cr_assert_eq(stratify(n, L, y, 2, 3, props, 1, part), 0, "%s", err_msg());
    int size[3] = {0};
    for (int i = 0; i < n; i++) {
        cr_assert(part[i] >= 0 && part[i] < 3);
        size[part[i]]++;
    }
    for (int p = 0; p < 3; p++)
        cr_expect(fabs(size[p] - props[p] * n) <= 0.01 * n, "part %d has %d examples", p, size[p]);
    for (int l = 0; l < L; l++) {
        int total = 0, in[3] = {0};
        for (int i = 0; i < n; i++)
            if (y[(size_t)i * L + l]) { total++; in[part[i]]++; }
        for (int p = 0; p < 3; p++) {
            double want = props[p] * total;
            cr_expect(fabs(in[p] - want) <= 1.0 + 0.005 * total,
                      "label %d (%d examples): part %d has %d, wants %.1f", l, total, p, in[p], want);
        }
    }
    /* Order 2 also keeps the (correlated) neighbouring pairs in proportion. */
    for (int l = 0; l + 1 < L; l++) {
        int total = 0, in[3] = {0};
        for (int i = 0; i < n; i++)
            if (y[(size_t)i * L + l] && y[(size_t)i * L + l + 1]) { total++; in[part[i]]++; }
        for (int p = 0; p < 3; p++)
            cr_expect(fabs(in[p] - props[p] * total) <= 1.0 + 0.01 * total,
                      "pair %d+%d (%d examples): part %d has %d", l, l + 1, total, p, in[p]);
    }
    free(y);
}

Test(stratify, deterministic_by_seed_and_zero_parts_get_nothing)
{
    int n = 1000, L = 6, a[1000], b[1000], c[1000];
    uint8_t *y = synthetic(n, L);
    for (int i = 0; i < n; i += 10) memset(y + (size_t)i * L, 0, (size_t)L); /* some without labels */
    double props[3] = {0.8, 0.1, 0.1};
    cr_assert_eq(stratify(n, L, y, 2, 3, props, 5, a), 0);
    cr_assert_eq(stratify(n, L, y, 2, 3, props, 5, b), 0);
    cr_assert_eq(stratify(n, L, y, 2, 3, props, 6, c), 0);
    cr_expect_eq(memcmp(a, b, sizeof a), 0, "same seed, same split");
    cr_expect_neq(memcmp(a, c, sizeof a), 0, "another seed, another split");
    double all_test[3] = {0, 0, 100};
    cr_assert_eq(stratify(n, L, y, 2, 3, all_test, 5, a), 0);
    for (int i = 0; i < n; i++) cr_assert_eq(a[i], 2);
    double none[3] = {0, 0, 0};
    cr_expect_eq(stratify(n, L, y, 2, 3, none, 5, a), -1);
    free(y);
}

/* ---- the command, end to end -------------------------------------------- */

static char tmp_root[64];

static const char *tmp(const char *name)
{
    static char buf[64][256];
    static int k;
    if (!tmp_root[0]) snprintf(tmp_root, sizeof tmp_root, "/tmp/genre-prepare-%d", (int)getpid());
    k = (k + 1) % 64;
    snprintf(buf[k], sizeof buf[k], "%s/%s", tmp_root, name);
    return buf[k];
}

/* Removes this test's scratch directory. */
static void cleanup(void)
{
    if (!tmp_root[0]) return;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp_root);
    if (system(cmd) != 0) fprintf(stderr, "cannot remove %s\n", tmp_root);
}

TestSuite(prepare, .fini = cleanup);

static void write_file(const char *path, const char *text)
{
    char dir[256];
    snprintf(dir, sizeof dir, "%s", path);
    *strrchr(dir, '/') = '\0';
    char cmd[300];
    snprintf(cmd, sizeof cmd, "mkdir -p '%s'", dir);
    cr_assert_eq(system(cmd), 0);
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f, "%s", path);
    fputs(text, f);
    fclose(f);
}

/* Runs `genre prepare ARGS` in a child (errors exit through die()); returns
 * the exit status and what it printed on stderr. */
static int run_prepare(char *err, size_t err_n, const char *a0, ...)
{
    const char *argv[32] = {"prepare", a0};
    int argc = 2;
    va_list ap;
    va_start(ap, a0);
    const char *a;
    while ((a = va_arg(ap, const char *)) && argc < 31) argv[argc++] = a;
    va_end(ap);
    mkdir(tmp_root, 0777);
    CmdCall call = {cmd_prepare, argc, (char **)argv};
    int rc = run_captured(call_cmd, &call, err, err_n);
    cr_assert_neq(rc, -1, "fork failed");
    return rc;
}

static int count_files(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) return 0;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d))) n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

#define HEADER "genre,category,title,year,distribution,description,url,cover_photo\n"
#define LONG_TEXT(i) "A detective follows a trail of clues number " #i " through the rain-soaked city."

/* Two genres sharing movies: "Notorious 1946" and "NOTORIOUS" are one movie;
 * "Notorious" 2009 is another; one text repeats under another title. */
static void write_small_corpus(const char *dir)
{
    char p[300];
    snprintf(p, sizeof p, "%s/film-noir.csv", dir);
    write_file(p, HEADER
               "Film-Noir,Hollywood,Notorious 1946,1946,DVD,\"A woman spies on Nazis in Rio. ...<more>\",u,c\n"
               "Film-Noir,Hollywood,The Third Man,1949,DVD,\"Pulp novelist Holly Martins travels to\r\nVienna.\",u,c\n"
               "Film-Noir,Hollywood,The Third Man,1949,DVD,\"Pulp novelist Holly Martins travels to\r\nVienna.\",u,c\n"
               "Film-Noir,Hollywood,Too Short,1950,DVD,Tiny.,u,c\n"
               "Film-Noir,Hollywood,Empty,1951,DVD,\"n/ATags : noir...<more>\",u,c\n"
               "Film-Noir,Hollywood,,1952,DVD,No title here but a long enough text.,u,c\n");
    snprintf(p, sizeof p, "%s/romance.csv", dir);
    write_file(p, "\xEF\xBB\xBF" HEADER
               "Romance,Hollywood,NOTORIOUS,1946,DVD,A woman spies on Nazis in Rio de Janeiro for the US.,u,c\n"
               "Romance,Hollywood,Notorious,2009,DVD,The life of rapper Biggie Smalls.,u,c\n"
               "Romance,Hollywood,Copy Cat,2001,DVD,\"Pulp novelist Holly Martins travels to Vienna.\",u,c\n");
    snprintf(p, sizeof p, "%s/sci-fi.csv", dir);
    FILE *f = fopen(p, "w");
    fputs(HEADER, f);
    for (int i = 0; i < 40; i++)
        fprintf(f, "Sci-Fi,Hollywood,Robot %d,%d,DVD,A robot number %d learns to love in the year %d.,u,c\n", i,
                1990 + i, i, 3000 + i);
    fclose(f);
}

Test(prepare, merges_cleans_and_writes_everything)
{
    const char *data = tmp("small"), *out = tmp("out");
    write_small_corpus(data);
    char err[2048];
    int rc = run_prepare(err, sizeof err, "--data", data, "--out", out, "--seed", "3", NULL);
    cr_assert_eq(rc, 0, "exit %d: %s", rc, err);
    LabelSet ls;
    cr_assert_eq(labels_load(&ls, tmp("out/labels.txt")), 0, "%s", err_msg());
    cr_assert_eq(ls.n_labels, 3);
    cr_expect_str_eq(ls.names[0], "Film-Noir");
    cr_expect_str_eq(ls.names[1], "Romance");
    cr_expect_str_eq(ls.names[2], "Sci-Fi");
    int total = 0, found = 0;
    for (int p = 0; p < 3; p++) {
        const char *parts[] = {"out/train.jsonl", "out/val.jsonl", "out/test.jsonl"};
        Dataset d;
        cr_assert_eq(dataset_load(&d, tmp(parts[p]), &ls), 0, "%s", err_msg());
        total += d.n;
        for (int i = 0; i < d.n; i++) {
            if (!strcmp(d.titles[i], "Notorious") && d.years[i] == 1946) {
                found++;
                cr_expect(d.y[i * 3 + 0] && d.y[i * 3 + 1] && !d.y[i * 3 + 2], "labels are the union");
                cr_expect_str_eq(d.texts[i], "A woman spies on Nazis in Rio de Janeiro for the US.",
                                 "the longest cleaned text wins");
            }
            if (!strcmp(d.titles[i], "The Third Man")) {
                cr_expect_str_eq(d.texts[i], "Pulp novelist Holly Martins travels to Vienna.");
                cr_expect(d.y[i * 3 + 0] && d.y[i * 3 + 1], "Copy Cat's identical text folded in");
            }
            cr_expect(strcmp(d.titles[i], "Copy Cat") && strcmp(d.titles[i], "Too Short") &&
                      strcmp(d.titles[i], "Empty"), "%s should be dropped", d.titles[i]);
        }
        dataset_free(&d);
    }
    labels_free(&ls);
    cr_expect_eq(found, 1, "Notorious (1946) appears once");
    cr_expect_eq(total, 2 + 1 + 40, "Notorious 1946, Notorious 2009, The Third Man, 40 robots");
    char *stats = slurp(tmp("out/stats.json"));
    cr_assert_not_null(stats);
    cr_expect(strstr(stats, "\"movies\": 43") != NULL, "%s", stats);
    cr_expect(strstr(stats, "\"rows\": 49") != NULL);
    cr_expect(strstr(stats, "\"merged_same_movie_same_genre\": 1") != NULL);
    cr_expect(strstr(stats, "\"merged_same_movie_other_genre\": 1") != NULL);
    cr_expect(strstr(stats, "\"dropped_missing_title\": 1") != NULL);
    cr_expect(strstr(stats, "\"empty_description\": 1") != NULL);
    cr_expect(strstr(stats, "\"too_short\": 1") != NULL);
    cr_expect(strstr(stats, "\"duplicate_text_merged\": 1") != NULL);
    free(stats);
    cr_expect_eq(count_files(out), 7, "jsonl x3, labels, stats, two plots");
}

Test(prepare, same_inputs_and_seed_give_identical_bytes)
{
    const char *data = tmp("det"), *a = tmp("det-a"), *b = tmp("det-b");
    write_small_corpus(data);
    char err[2048];
    cr_assert_eq(run_prepare(err, sizeof err, "--data", data, "--out", a, NULL), 0, "%s", err);
    cr_assert_eq(run_prepare(err, sizeof err, "--data", data, "--out", b, NULL), 0, "%s", err);
    const char *files[] = {"train.jsonl", "val.jsonl", "test.jsonl", "labels.txt", "stats.json",
                           "genre_distribution.svg", "cooccurrence.svg"};
    for (int i = 0; i < 7; i++) {
        char pa[300], pb[300];
        snprintf(pa, sizeof pa, "%s/%s", a, files[i]);
        snprintf(pb, sizeof pb, "%s/%s", b, files[i]);
        char *x = slurp(pa), *y = slurp(pb);
        cr_assert(x && y, "%s", files[i]);
        cr_expect_str_eq(x, y, "%s differs between runs", files[i]);
        free(x);
        free(y);
    }
}

Test(prepare, split_0_0_100_puts_everything_in_test)
{
    const char *data = tmp("all"), *out = tmp("all-out");
    write_small_corpus(data);
    char err[2048];
    cr_assert_eq(run_prepare(err, sizeof err, "--data", data, "--out", out, "--split", "0/0/100", NULL), 0, "%s", err);
    char *train = slurp(tmp("all-out/train.jsonl")), *val = slurp(tmp("all-out/val.jsonl"));
    char *test = slurp(tmp("all-out/test.jsonl"));
    cr_expect_str_eq(train, "");
    cr_expect_str_eq(val, "");
    int lines = 0;
    for (char *p = test; *p; p++) lines += *p == '\n';
    cr_expect_eq(lines, 43);
    free(train);
    free(val);
    free(test);
}

/* A bad input: non-zero exit, one line naming the place, no output. */
static void expect_failure(const char *name, const char *csv, const char *want)
{
    char dir[256], out[300], file[400];
    snprintf(dir, sizeof dir, "%s", tmp(name));
    snprintf(out, sizeof out, "%s-out", dir);
    if (csv) {
        snprintf(file, sizeof file, "%s/war.csv", dir);
        write_file(file, csv);
    }
    char err[2048];
    int rc = run_prepare(err, sizeof err, "--data", dir, "--out", out, NULL);
    cr_expect_neq(rc, 0, "%s: exit 0", name);
    cr_expect(strstr(err, want) != NULL, "%s: '%s' not in '%s'", name, want, err);
    char *nl = strchr(err, '\n');
    cr_expect(nl && nl[1] == '\0', "%s: one line, got '%s'", name, err);
    cr_expect_eq(count_files(out), 0, "%s: no output files", name);
    struct stat st;
    cr_expect_neq(stat(out, &st), 0, "%s: the output directory was made", name);
}

Test(prepare, bad_input_fails_cleanly)
{
    expect_failure("nocol", "genre,title,year\nWar,X,1990\n", "war.csv:1: missing column 'description'");
    expect_failure("quote", HEADER "War,c,X,1990,d,\"never closed,u,c\n", "war.csv:2: unterminated quoted field");
    expect_failure("utf8", HEADER "War,c,X,1990,d,caf\xE9,u,c\n", "war.csv:2: invalid UTF-8");
    expect_failure("empty", "", "war.csv: empty file");
    expect_failure("header-only", HEADER, "war.csv:1: no rows after the header");
    expect_failure("two-titles", "genre,title,year,title,description\nWar,A,1990,B,A long enough description.\n",
                   "war.csv:1: column 'title' appears twice (columns 2 and 4)");
    expect_failure("fields", HEADER "War,c,X,1990,d\n", "war.csv:2: 5 fields, the header has 8");
    expect_failure("more-fields", HEADER "War,c,X,1990,d,A long enough description text.,u,c,extra\n",
                   "war.csv:2: 9 fields, the header has 8");
    expect_failure("blank-only", "\n\r\n\r", "war.csv: empty file");
    expect_failure("no-genre", HEADER " ,c,X,1990,d,A long enough description text.,u,c\n", "war.csv:2: empty genre");
    expect_failure("year", HEADER "War,c,X,soon,d,A long enough description text.,u,c\n",
                   "war.csv:2: year 'soon' is not a number");
    expect_failure("missing-dir", NULL, "missing-dir: cannot open directory");
    char dir[300];
    snprintf(dir, sizeof dir, "%s/readme.txt", tmp("nocsv"));
    write_file(dir, "no csv here\n");
    expect_failure("nocsv", NULL, "nocsv: no .csv files");
    /* A later file's error also leaves nothing behind from earlier files. */
    snprintf(dir, sizeof dir, "%s/action.csv", tmp("late"));
    write_file(dir, HEADER "Action,c,Fine,2000,d,A perfectly fine description of a film.,u,c\n");
    expect_failure("late", HEADER "War,c,X,1990,d,\"broken\n", "war.csv:2: unterminated quoted field");
}

/* " action " and "Action" are one genre, spelled the most common way;
 * stats.json says which spellings were read as which genre. */
Test(prepare, genre_spellings_merge_and_are_recorded)
{
    const char *data = tmp("spell"), *out = tmp("spell-out");
    char p[300];
    snprintf(p, sizeof p, "%s/action.csv", data);
    write_file(p, HEADER "Action,c,One,2001,d,A first film with a long enough text.,u,c\n"
                         "Action,c,Two,2002,d,A second film with a long enough text.,u,c\n"
                         " action ,c,Three,2003,d,A third film with a long enough text.,u,c\n");
    snprintf(p, sizeof p, "%s/war.csv", data);
    write_file(p, HEADER "War,c,Four,2004,d,A fourth film with a long enough text.,u,c\n"
                         "ACTION,c,One,2001,d,A first film with a long enough text.,u,c\n");
    char err[2048];
    cr_assert_eq(run_prepare(err, sizeof err, "--data", data, "--out", out, "--split", "0/0/100", NULL), 0, "%s", err);
    char *labels = slurp(tmp("spell-out/labels.txt")), *stats = slurp(tmp("spell-out/stats.json"));
    cr_assert(labels && stats);
    cr_expect_str_eq(labels, "Action\nWar\n");
    cr_expect(strstr(stats, "\"genre_spellings_merged\": {\n      \"Action\": {\n        \"action\": 1,\n"
                            "        \"ACTION\": 1\n      }\n    }") != NULL, "%s", stats);
    cr_expect(strstr(stats, "\"merged_same_movie_same_genre\": 1") != NULL, "ACTION's One is Action's: %s", stats);
    free(labels);
    free(stats);
}

/* Genres are 64-bit masks: a 65th genre is an error naming where it is. */
Test(prepare, more_than_64_genres_is_an_error)
{
    char csv[8192] = HEADER;
    for (int g = 0; g < 65; g++) {
        size_t n = strlen(csv);
        snprintf(csv + n, sizeof csv - n, "G%d,c,Film %d,2000,d,A long enough description text.,u,c\n", g, g);
    }
    expect_failure("genres", csv, "war.csv:66: more than 64 genres");
}

Test(prepare, bad_options_are_errors)
{
    char err[2048];
    const char *data = tmp("opts");
    write_small_corpus(data);
    cr_expect_neq(run_prepare(err, sizeof err, "--data", data, "--out", tmp("o1"), "--split", "80/20", NULL), 0);
    cr_expect(strstr(err, "split '80/20'") != NULL, "%s", err);
    cr_expect_neq(run_prepare(err, sizeof err, "--data", data, "--out", tmp("o2"), "min_chars=abc", NULL), 0);
    cr_expect(strstr(err, "min_chars") != NULL, "%s", err);
    cr_expect_neq(run_prepare(err, sizeof err, "--data", data, "--out", tmp("o3"), "bogus=1", NULL), 0);
    cr_expect(strstr(err, "unknown key 'bogus'") != NULL, "%s", err);
    cr_expect_neq(run_prepare(err, sizeof err, "--data", data, NULL), 0);
    cr_expect(strstr(err, "--out") != NULL, "%s", err);
    cr_expect_eq(run_prepare(err, sizeof err, "--data", data, "--out", tmp("o4"), "min_chars=40", NULL), 0, "%s", err);
    char *stats = slurp(tmp("o4/stats.json"));
    cr_expect(strstr(stats, "\"too_short\": 2") != NULL, "the override reaches the cleaning: %s", stats);
    free(stats);
}

/* ---- the output directory ---------------------------------------------- */

static const char *const outputs[7] = {"train.jsonl", "val.jsonl", "test.jsonl", "labels.txt", "stats.json",
                                       "genre_distribution.svg", "cooccurrence.svg"};

/* dir's seven outputs, each as its name and bytes, in one string. */
static char *snapshot(const char *dir)
{
    size_t cap = 1 << 16, n = 0;
    char *all = malloc(cap);
    for (int i = 0; i < 7; i++) {
        char path[300];
        snprintf(path, sizeof path, "%s/%s", dir, outputs[i]);
        char *text = slurp(path);
        size_t k = strlen(outputs[i]) + (text ? strlen(text) : 9) + 3;
        while (n + k >= cap) all = realloc(all, cap *= 2);
        n += (size_t)snprintf(all + n, cap - n, "%s\n%s\n", outputs[i], text ? text : "(missing)");
        free(text);
    }
    return all;
}

/* Whether a DIR.tmp.* sibling (a half-built output) is left beside dir. */
static int tmp_left(const char *dir)
{
    char pattern[300];
    snprintf(pattern, sizeof pattern, "%s.tmp.*", dir);
    glob_t g;
    int found = glob(pattern, 0, NULL, &g) == 0;
    if (found) globfree(&g);
    return found;
}

static void expect_file(const char *path, const char *want)
{
    char *got = slurp(path);
    cr_expect(got && !strcmp(got, want), "%s: '%s', want '%s'", path, got ? got : "(missing)", want);
    free(got);
}

/* A prepare that fails leaves an earlier output as it was, whether the
 * input is bad or the swap of the new set fails (as a kill would stop it):
 * the seven files are one set, never a new train.jsonl beside old parts. */
Test(prepare, failing_prepare_leaves_an_earlier_output_as_it_was)
{
    const char *data = tmp("keep"), *out = tmp("keep-out");
    write_small_corpus(data);
    char err[2048];
    cr_assert_eq(run_prepare(err, sizeof err, "--data", data, "--out", out, NULL), 0, "%s", err);
    char *before = snapshot(out);
    char bad[300];
    snprintf(bad, sizeof bad, "%s/war.csv", data);
    write_file(bad, HEADER "War,c,X,1990,d,\"never closed,u,c\n");
    cr_expect_eq(run_prepare(err, sizeof err, "--data", data, "--out", out, "--seed", "9", NULL), 1);
    cr_expect(strstr(err, "war.csv:2: unterminated quoted field") != NULL, "%s", err);
    char *after = snapshot(out);
    cr_expect_str_eq(after, before, "a bad input changed the earlier output");
    free(after);
    unlink(bad);
    setenv("GENRE_FAILPOINT", "atomic_dir_commit:1", 1);
    int rc = run_prepare(err, sizeof err, "--data", data, "--out", out, "--seed", "9", NULL);
    unsetenv("GENRE_FAILPOINT");
    cr_expect_eq(rc, 1, "a failed swap exited %d", rc);
    cr_expect(strstr(err, "injected failure") && strstr(err, "keep-out is as it was"), "%s", err);
    after = snapshot(out);
    cr_expect_str_eq(after, before, "a failed swap changed the earlier output");
    cr_expect(!tmp_left(out), "a half-built output is left beside %s", out);
    free(after);
    free(before);
}

/* A directory prepare did not make is refused, its files untouched, unless
 * --force; then the new output replaces it whole. */
Test(prepare, refuses_an_output_it_did_not_make)
{
    const char *data = tmp("claim"), *mine = tmp("claim-mine"), *run = tmp("claim-run");
    write_small_corpus(data);
    char err[2048], p[300];
    snprintf(p, sizeof p, "%s/notes.txt", mine);
    write_file(p, "my notes\n");
    cr_expect_eq(run_prepare(err, sizeof err, "--data", data, "--out", mine, NULL), 1);
    cr_expect(strstr(err, "claim-mine: is not empty and was not made by this command; choose another --out, "
                          "or pass --force to replace it") != NULL, "%s", err);
    expect_file(p, "my notes\n");
    cr_expect_eq(count_files(mine), 1, "prepare wrote beside the user's file");
    snprintf(p, sizeof p, "%s/.genre", run);
    write_file(p, "train\n");
    snprintf(p, sizeof p, "%s/log.jsonl", run);
    write_file(p, "{\"step\": 1}\n");
    cr_expect_eq(run_prepare(err, sizeof err, "--data", data, "--out", run, NULL), 1);
    cr_expect(strstr(err, "claim-run: already holds a genre train output") != NULL, "%s", err);
    expect_file(p, "{\"step\": 1}\n");
    cr_expect_eq(count_files(run), 1);
    cr_expect_eq(run_prepare(err, sizeof err, "--data", data, "--out", mine, "--force", NULL), 0, "%s", err);
    cr_expect_eq(count_files(mine), 7, "--force: the new output replaces the directory whole");
    snprintf(p, sizeof p, "%s/.genre", mine);
    expect_file(p, "data\n");
    cr_expect(!tmp_left(mine));
}

/* A re-prepare replaces every file of its own earlier output (--force not
 * needed) and leaves nothing half-built beside it. */
Test(prepare, re_prepare_replaces_all_seven_files)
{
    const char *data = tmp("again"), *out = tmp("again-out"), *ref = tmp("again-ref");
    write_small_corpus(data);
    char err[2048];
    cr_assert_eq(run_prepare(err, sizeof err, "--data", data, "--out", out, "--seed", "1", NULL), 0, "%s", err);
    cr_assert_eq(run_prepare(err, sizeof err, "--data", data, "--out", out, "--seed", "2", NULL), 0, "%s", err);
    cr_assert_eq(run_prepare(err, sizeof err, "--data", data, "--out", ref, "--seed", "2", NULL), 0, "%s", err);
    char *a = snapshot(out), *b = snapshot(ref);
    cr_expect_str_eq(a, b, "the re-prepared output is not what a fresh one is");
    free(a);
    free(b);
    cr_expect_eq(count_files(out), 7);
    char p[300];
    snprintf(p, sizeof p, "%s/.genre", out);
    expect_file(p, "data\n");
    cr_expect(!tmp_left(out), "a *.tmp.* is left beside %s", out);
}

/* An output of an earlier prepare without the marker (made before there
 * was one) is still prepare's own: the seven files and nothing else. */
Test(prepare, an_unmarked_earlier_output_is_its_own)
{
    const char *data = tmp("old"), *out = tmp("old-out");
    write_small_corpus(data);
    char err[2048], p[300];
    cr_assert_eq(run_prepare(err, sizeof err, "--data", data, "--out", out, NULL), 0, "%s", err);
    snprintf(p, sizeof p, "%s/.genre", out);
    unlink(p);
    cr_expect_eq(run_prepare(err, sizeof err, "--data", data, "--out", out, "--seed", "5", NULL), 0, "%s", err);
    unlink(p);
    snprintf(p, sizeof p, "%s/notes.txt", out);
    write_file(p, "mine\n");
    char *before = snapshot(out);
    cr_expect_eq(run_prepare(err, sizeof err, "--data", data, "--out", out, NULL), 1, "a user's file beside it");
    cr_expect(strstr(err, "was not made by this command") != NULL, "%s", err);
    char *after = snapshot(out);
    cr_expect_str_eq(after, before);
    expect_file(p, "mine\n");
    free(before);
    free(after);
}

/* Not even --force lets the output replace the CSV files it is made from. */
Test(prepare, never_replaces_its_own_input)
{
    const char *data = tmp("self/movies");
    write_small_corpus(data);
    char err[2048], p[300];
    snprintf(p, sizeof p, "%s/romance.csv", data);
    char *csv = slurp(p);
    cr_expect_eq(run_prepare(err, sizeof err, "--data", data, "--out", data, "--force", NULL), 1);
    cr_expect(strstr(err, "is the --data directory or holds it") != NULL, "%s", err);
    cr_expect_eq(run_prepare(err, sizeof err, "--data", data, "--out", tmp("self"), "--force", NULL), 1);
    cr_expect(strstr(err, "is the --data directory or holds it") != NULL, "%s", err);
    expect_file(p, csv);
    cr_expect_eq(count_files(data), 3, "the CSV files and nothing else");
    free(csv);
}

/* A second writer of the same directory is refused while the first holds it. */
Test(prepare, one_writer_at_a_time)
{
    const char *data = tmp("lock"), *out = tmp("lock-out");
    write_small_corpus(data);
    mkdir(out, 0777);
    int fd = open(out, O_RDONLY | O_DIRECTORY);
    cr_assert(fd >= 0 && flock(fd, LOCK_EX | LOCK_NB) == 0);
    char err[2048];
    cr_expect_eq(run_prepare(err, sizeof err, "--data", data, "--out", out, NULL), 1);
    cr_expect(strstr(err, "another genre process is writing it") != NULL, "%s", err);
    cr_expect_eq(count_files(out), 0);
    close(fd);
    cr_expect_eq(run_prepare(err, sizeof err, "--data", data, "--out", out, NULL), 0, "%s", err);
}

/* The real data, when present: everything loads back and the split holds. */
Test(prepare, real_data_end_to_end, .timeout = 120)
{
    const char *data = getenv("GENRE_DATA");
    struct stat st;
    if (!data) SKIP_SETUP("GENRE_DATA is not set (tests/run sets it; make test DATA=DIR)");
    if (stat(data, &st) != 0) SKIP_SETUP("no data at GENRE_DATA=%s", data);
    const char *out = tmp("real");
    char err[2048];
    cr_assert_eq(run_prepare(err, sizeof err, "--data", data, "--out", out, NULL), 0, "%s", err);
    LabelSet ls;
    cr_assert_eq(labels_load(&ls, tmp("real/labels.txt")), 0, "%s", err_msg());
    cr_expect_eq(ls.n_labels, 20);
    cr_expect_geq(labels_index(&ls, "Sci-Fi"), 0);
    cr_expect_geq(labels_index(&ls, "Film-Noir"), 0);
    int n[3];
    long count[3][64] = {{0}};
    const char *parts[] = {"real/train.jsonl", "real/val.jsonl", "real/test.jsonl"};
    for (int p = 0; p < 3; p++) {
        Dataset d;
        cr_assert_eq(dataset_load(&d, tmp(parts[p]), &ls), 0, "%s", err_msg());
        n[p] = d.n;
        /* Written in a shuffled order: the first 500 movies of a part hold
         * each genre at roughly its share, not one genre file's rows. */
        for (int l = 0; l < ls.n_labels; l++) {
            long head = 0, all = 0;
            for (int i = 0; i < d.n; i++) {
                all += d.y[(size_t)i * ls.n_labels + l];
                head += i < 500 && d.y[(size_t)i * ls.n_labels + l];
            }
            double share = (double)all / d.n;
            cr_expect(fabs(head / 500.0 - share) < 0.07, "%s: %ld of the first 500 vs share %.3f in %s",
                      ls.names[l], head, share, parts[p]);
        }
        for (int i = 0; i < d.n; i++) {
            cr_assert(strstr(d.texts[i], "<more>") == NULL && strstr(d.texts[i], "Tags :") == NULL,
                      "%s", d.texts[i]);
            for (int l = 0; l < ls.n_labels; l++) count[p][l] += d.y[(size_t)i * ls.n_labels + l];
        }
        dataset_free(&d);
    }
    int total = n[0] + n[1] + n[2];
    cr_expect(total > 25000 && total < 35000, "%d movies", total);
    const double props[3] = {0.8, 0.1, 0.1};
    for (int l = 0; l < ls.n_labels; l++) {
        long all = count[0][l] + count[1][l] + count[2][l];
        for (int p = 0; p < 3; p++)
            cr_expect(fabs(count[p][l] - props[p] * all) <= 2 + 0.01 * all, "%s: part %d has %ld of %ld",
                      ls.names[l], p, count[p][l], all);
    }
    labels_free(&ls);
}
