/* The merge behind genre prepare: a directory of per-genre CSV files (a
 * header naming genre, title, year and description once each; other
 * columns are ignored) read into one list of movies, each with its set of
 * genres.
 *
 * Rows are one movie when their titles, case-folded and with a trailing
 * " 1946" or " (1946)" equal to the year removed, and their years agree.
 * Files are read in name order, so the merge is reproducible: a movie keeps
 * the title as first seen and the longest cleaned description
 * (clean_description) among its rows. A row without a title is skipped and
 * counted; any other bad row is an error naming file and line, and so is a
 * file with no rows (empty, or a header alone).
 *
 * Genre names are trimmed (clean_whitespace) and compared case-folded, so
 * " action ", "Action" and "ACTION" are one genre; it is named by its most
 * common spelling (in rows), a tie going to the one seen first. */
#ifndef GENRE_CORPUS_H
#define GENRE_CORPUS_H

#include <stdint.h>

#define CORPUS_MAX_LABELS 64 /* label sets are 64-bit masks */

/* Why corpus_clean left a movie out (Movie.dropped). */
enum { CORPUS_KEPT, CORPUS_DROP_EMPTY, CORPUS_DROP_SHORT, CORPUS_DROP_DUP_TEXT, CORPUS_N_DROP };

typedef struct {
    char *title;     /* as first seen, trailing year removed */
    int year;
    char *text;      /* the longest cleaned description among its rows */
    uint64_t labels; /* bit l: genre labels[l] */
    int dropped;     /* CORPUS_KEPT or a CORPUS_DROP_ reason */
} Movie;

typedef struct {
    int files, rows;
    int missing_title;           /* rows skipped for an empty title */
    int duplicate_rows;          /* rows repeating a movie in the same genre */
    int other_genre_rows;        /* rows adding a genre to a movie already seen */
    int dropped[CORPUS_N_DROP];  /* movies per corpus_clean outcome */
} CorpusCounts;

/* One way a genre was written in the genre column, trimmed. */
typedef struct {
    char *name;
    int label;                   /* the genre it was read as */
    int rows;
} Spelling;

typedef struct {
    Movie *movies;               /* in order of first sight */
    int n, cap;
    char *labels[CORPUS_MAX_LABELS]; /* genre names, sorted */
    int n_labels;
    Spelling *spellings;         /* every spelling seen, in order of first sight */
    int n_spellings;
    CorpusCounts counts;
} Corpus;

/* Reads every *.csv file of dir (.CSV, .Csv: the extension in any case)
 * into c (zeroed by the caller). 0, or -1
 * with err_set naming the directory, or the file and line; either way c is
 * then freed with corpus_free. */
int corpus_read_dir(Corpus *c, const char *dir);

/* Drops movies with an empty description or one shorter than min_chars
 * characters, then folds each movie whose description repeats an earlier
 * kept movie's into that one (genres unioned): one text, one example. */
void corpus_clean(Corpus *c, int min_chars);

void corpus_free(Corpus *c);

#endif
