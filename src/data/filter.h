/* Data ablations on a prepared dataset, applied by the trainer as it loads
 * the data (train's drop_labels, min_words, max_words, max_nonword_share,
 * strip_common_words), so that a sweep can put them on an axis without
 * preparing the data again. Each is a pure function of the data and its
 * setting: a resumed run makes the same choices.
 *
 * Words and tokens, precisely:
 *   - a text's *tokens* are its maximal runs of non-blank bytes (blank:
 *     space, tab, CR, LF); text_words counts them, as stats.json's
 *     description_words does;
 *   - a token is a *word* for text_nonword_share when, with its leading
 *     and trailing punctuation and symbols (Unicode P* and S*) removed, it
 *     is letters, marks and digits (L*, M*, N*) joined by ' ’ - ‐ – — . & /
 *     alone ("10-year-old", "R2-D2", "lost/stolen", "L.A.'s"); what is left
 *     of a URL or of HTML markup ("href=\"/title/tt0052077/\">Plan",
 *     "https://...@._V1_.jpg") is not. A token of punctuation alone counts
 *     as neither;
 *   - for strip_common_words a *word* is a maximal run of letters, marks
 *     and digits, apostrophes (' ’) between two of them included ("don't",
 *     "father's"), compared case-folded. */
#ifndef GENRE_FILTER_H
#define GENRE_FILTER_H

#include <stdint.h>

#include "src/data/dataset.h"

/* Keeps label columns cols[0..n) of d, in that order. */
void dataset_keep_labels(Dataset *d, const int *cols, int n);
/* The names of cols[0..n) of ls, in that order, into ls. */
void labels_keep(LabelSet *ls, const int *cols, int n);
/* Keeps the movies i with keep[i] (in order); returns how many went. */
int dataset_keep(Dataset *d, const uint8_t *keep);
/* Drops the movies without any label; returns how many went. */
int dataset_drop_unlabelled(Dataset *d);

/* The number of tokens of s. */
int text_words(const char *s);
/* Non-word tokens / (word + non-word tokens) of s; 0 when s has none. */
double text_nonword_share(const char *s);

/* The k words of d's texts most common to every label: ranked by their
 * smallest document frequency over the labels with movies (the share of
 * a label's movies whose text has the word), largest first, ties by the
 * case-folded word's bytes; a word missing from some label's texts is
 * never chosen. The case-folded words into *words (caller frees each and
 * the array); returns how many (<= k). -1 with err_set on invalid UTF-8. */
int common_words(const Dataset *d, int k, char ***words);

/* s without the words (case-folded) in words[0..n), blanks collapsed
 * (clean_whitespace). Caller frees. */
char *strip_words(const char *s, char *const *words, int n);

#endif
