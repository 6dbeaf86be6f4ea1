/* src/data/corpus: the merge of per-genre CSV files, through its API. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "src/core/err.h"
#include "src/data/corpus.h"

#define HEADER "genre,title,year,description\n"

static char dir[64];

static void put(const char *name, const char *text)
{
    if (!dir[0]) snprintf(dir, sizeof dir, "/tmp/genre-corpus-%d", (int)getpid());
    mkdir(dir, 0777);
    char path[128];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f, "%s", path);
    fputs(text, f);
    fclose(f);
}

static void cleanup(void)
{
    char cmd[96];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (dir[0] && system(cmd) != 0) fprintf(stderr, "cannot remove %s\n", dir);
}

TestSuite(corpus, .fini = cleanup);

static const Movie *find(const Corpus *c, const char *title, int year)
{
    for (int i = 0; i < c->n; i++)
        if (!strcmp(c->movies[i].title, title) && c->movies[i].year == year) return &c->movies[i];
    return NULL;
}

/* Files in name order (war before zombie, b.csv's rows first), labels
 * sorted; a trailing year in either form and the case are not the title. */
Test(corpus, rows_of_one_movie_merge)
{
    put("b.csv", HEADER "War,Casablanca (1942),1942,Rick runs a bar.\n"
                        "War,Casablanca,1942,Rick runs a bar.\n"
                        "War,,1950,No title.\n");
    put("a.csv", HEADER "Zombie,CASABLANCA 1942,1942,Rick runs a bar in Morocco during the war.\n"
                        "Zombie,Casablanca,2005,Another film entirely.\n");
    put("notes.txt", "not a csv\n");
    Corpus c = {0};
    cr_assert_eq(corpus_read_dir(&c, dir), 0, "%s", err_msg());
    cr_assert_eq(c.n_labels, 2);
    cr_expect_str_eq(c.labels[0], "War");
    cr_expect_str_eq(c.labels[1], "Zombie");
    cr_assert_eq(c.n, 2);
    const Movie *m = find(&c, "CASABLANCA", 1942);
    cr_assert_not_null(m, "the title as first seen (a.csv), year removed");
    cr_expect_eq(m->labels, 3ull);
    cr_expect_str_eq(m->text, "Rick runs a bar in Morocco during the war.", "the longest text");
    cr_expect_not_null(find(&c, "Casablanca", 2005), "another year is another movie");
    cr_expect_eq(c.counts.files, 2);
    cr_expect_eq(c.counts.rows, 5);
    cr_expect_eq(c.counts.missing_title, 1);
    cr_expect_eq(c.counts.other_genre_rows, 1);
    cr_expect_eq(c.counts.duplicate_rows, 1);
    corpus_free(&c);
}

Test(corpus, clean_drops_and_folds_repeated_texts)
{
    put("a.csv", HEADER "Action,One,2001,A text long enough to keep.\n"
                        "Action,Two,2002,Short.\n"
                        "Action,Three,2003,\n");
    put("b.csv", HEADER "Drama,Four,2004,A text long enough to keep.\n");
    Corpus c = {0};
    cr_assert_eq(corpus_read_dir(&c, dir), 0, "%s", err_msg());
    corpus_clean(&c, 10);
    cr_expect_eq(find(&c, "One", 2001)->dropped, CORPUS_KEPT);
    cr_expect_eq(find(&c, "One", 2001)->labels, 3ull, "Four's genre folded into One");
    cr_expect_eq(find(&c, "Two", 2002)->dropped, CORPUS_DROP_SHORT);
    cr_expect_eq(find(&c, "Three", 2003)->dropped, CORPUS_DROP_EMPTY);
    cr_expect_eq(find(&c, "Four", 2004)->dropped, CORPUS_DROP_DUP_TEXT);
    cr_expect_eq(c.counts.dropped[CORPUS_KEPT], 1);
    cr_expect_eq(c.counts.dropped[CORPUS_DROP_SHORT] + c.counts.dropped[CORPUS_DROP_EMPTY], 2);
    corpus_free(&c);
}

Test(corpus, errors_name_file_and_line)
{
    put("a.csv", HEADER "Action,One,19x6,A text.\n");
    Corpus c = {0};
    cr_expect_eq(corpus_read_dir(&c, dir), -1);
    cr_expect(strstr(err_msg(), "a.csv:2: year '19x6' is not a number") != NULL, "%s", err_msg());
    corpus_free(&c);
    put("a.csv", "genre,title,description\n");
    cr_expect_eq(corpus_read_dir(&c, dir), -1);
    cr_expect(strstr(err_msg(), "a.csv:1: missing column 'year'") != NULL, "%s", err_msg());
    corpus_free(&c);
}

/* Reads dir, which must succeed with these counts. */
static void expect_read(int files, int rows, int movies)
{
    Corpus c = {0};
    cr_assert_eq(corpus_read_dir(&c, dir), 0, "%s", err_msg());
    cr_expect_eq(c.counts.files, files, "files");
    cr_expect_eq(c.counts.rows, rows, "rows");
    cr_expect_eq(c.n, movies, "movies");
    corpus_free(&c);
}

/* A file saved with old Mac line ends (bare CR) reads like any other. */
Test(corpus, cr_only_line_ends)
{
    put("a.csv", "genre,title,year,description\rWar,One,2001,A text.\rWar,Two,2002,Another text.\r");
    expect_read(1, 2, 2);
}

/* A file with a header and no rows (blank lines are none) is an error, as
 * an empty file is: its genre would silently have no movies. */
Test(corpus, header_only_file_is_an_error)
{
    put("a.csv", HEADER "Action,One,2001,A text.\n");
    put("b.csv", HEADER "\n\r\n");
    Corpus c = {0};
    cr_expect_eq(corpus_read_dir(&c, dir), -1);
    cr_expect(strstr(err_msg(), "b.csv:1: no rows after the header") != NULL, "%s", err_msg());
    corpus_free(&c);
}

static int spelling_rows(const Corpus *c, const char *name)
{
    for (int i = 0; i < c->n_spellings; i++)
        if (!strcmp(c->spellings[i].name, name)) return c->spellings[i].rows;
    return -1;
}

/* Genre names that differ only in case or surrounding whitespace are one
 * genre, named by its most common spelling (a tie: the first seen, files
 * in name order); every spelling is kept with its rows. */
Test(corpus, genre_spellings_are_one_label)
{
    put("a.csv", HEADER " action ,One,2001,A text.\n"
                        "WAR,Five,2005,Text five.\n");
    put("b.csv", HEADER "Action,Two,2002,Text two.\n"
                        "Action,Three,2003,Text three.\n"
                        "ACTION,Four,2004,Text four.\n"
                        "war,Six,2006,Text six.\n");
    Corpus c = {0};
    cr_assert_eq(corpus_read_dir(&c, dir), 0, "%s", err_msg());
    cr_assert_eq(c.n_labels, 2, "%s, %s, ...", c.labels[0], c.labels[1]);
    cr_expect_str_eq(c.labels[0], "Action", "the most common spelling");
    cr_expect_str_eq(c.labels[1], "WAR", "a tie: the first seen");
    cr_expect_eq(find(&c, "One", 2001)->labels, 1ull);
    cr_expect_eq(find(&c, "Four", 2004)->labels, 1ull);
    cr_expect_eq(find(&c, "Six", 2006)->labels, 2ull);
    cr_expect_eq(c.n_spellings, 5);
    cr_expect_eq(spelling_rows(&c, "action"), 1, "trimmed");
    cr_expect_eq(spelling_rows(&c, "Action"), 2);
    cr_expect_eq(spelling_rows(&c, "ACTION"), 1);
    cr_expect_eq(spelling_rows(&c, "war"), 1);
    for (int i = 0; i < c.n_spellings; i++)
        cr_expect_eq(c.spellings[i].label, strcasecmp(c.spellings[i].name, "action") ? 1 : 0, "%s",
                     c.spellings[i].name);
    corpus_free(&c);
}

/* The extension is matched in any case: ACTION.CSV is read, not skipped. */
Test(corpus, csv_extension_in_any_case)
{
    put("a.csv", HEADER "War,One,2001,A text.\n");
    put("ACTION.CSV", HEADER "Action,Two,2002,Another text.\n");
    put("drama.Csv", HEADER "Drama,Three,2003,A third text.\n");
    put("notes.csv.txt", "not a csv\n");
    expect_read(3, 3, 3);
}

/* Two columns of a name the merge reads: which one holds the text is
 * anyone's guess, so it is an error naming both. */
Test(corpus, duplicated_column_is_an_error)
{
    put("a.csv", "genre,title,year,description,url,description\nAction,One,2001,first,u,second\n");
    Corpus c = {0};
    cr_expect_eq(corpus_read_dir(&c, dir), -1);
    cr_expect(strstr(err_msg(), "a.csv:1: column 'description' appears twice (columns 4 and 6)") != NULL, "%s",
              err_msg());
    corpus_free(&c);
    put("a.csv", "genre,Genre,title,year,description,url,url\nAction,Action,One,2001,A text.,u,v\n");
    cr_expect_eq(corpus_read_dir(&c, dir), 0, "column names are exact; columns not read may repeat: %s", err_msg());
    corpus_free(&c);
}
