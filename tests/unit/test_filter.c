/* The data ablations (src/data/filter.h) on hand-made data whose results
 * are worked out by hand in each test. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "src/core/err.h"
#include "src/data/filter.h"

/* A dataset of n movies over L labels: texts[i], labels rows[i] ("101"). */
static void make(Dataset *d, LabelSet *ls, int n, int L, const char *const *texts, const char *const *rows,
                 const char *const *names)
{
    memset(d, 0, sizeof *d);
    d->n = n;
    d->n_labels = L;
    d->titles = malloc((size_t)n * sizeof *d->titles);
    d->texts = malloc((size_t)n * sizeof *d->texts);
    d->years = calloc((size_t)n, sizeof *d->years);
    d->y = malloc((size_t)n * L);
    for (int i = 0; i < n; i++) {
        char t[16];
        snprintf(t, sizeof t, "m%d", i);
        d->titles[i] = strdup(t);
        d->texts[i] = strdup(texts[i]);
        for (int c = 0; c < L; c++) d->y[i * L + c] = rows[i][c] == '1';
    }
    ls->n_labels = L;
    ls->names = malloc((size_t)L * sizeof *ls->names);
    for (int c = 0; c < L; c++) ls->names[c] = strdup(names[c]);
}

/* Dropping Beta: rows keep Alpha and Gamma in order; m1 (Beta alone) goes. */
Test(filter, dropped_labels_take_their_movies_left_without_one)
{
    const char *texts[] = {"a", "b", "c", "d"}, *rows[] = {"110", "010", "011", "001"};
    const char *names[] = {"Alpha", "Beta", "Gamma"};
    Dataset d;
    LabelSet ls;
    make(&d, &ls, 4, 3, texts, rows, names);
    int cols[] = {0, 2};
    dataset_keep_labels(&d, cols, 2);
    labels_keep(&ls, cols, 2);
    cr_expect_eq(d.n_labels, 2);
    cr_expect_eq(ls.n_labels, 2);
    cr_expect_str_eq(ls.names[1], "Gamma");
    cr_expect_eq(dataset_drop_unlabelled(&d), 1);
    cr_assert_eq(d.n, 3);
    const char *want_titles[] = {"m0", "m2", "m3"};
    const uint8_t want_y[] = {1, 0, 0, 1, 0, 1};
    for (int i = 0; i < 3; i++) cr_expect_str_eq(d.titles[i], want_titles[i]);
    cr_expect_eq(memcmp(d.y, want_y, 6), 0, "%d%d %d%d %d%d", d.y[0], d.y[1], d.y[2], d.y[3], d.y[4], d.y[5]);
    cr_expect_str_eq(d.texts[1], "c");
    uint8_t keep[] = {0, 1, 1};
    cr_expect_eq(dataset_keep(&d, keep), 1);
    cr_expect_str_eq(d.titles[0], "m2");
    cr_expect_eq(d.y[0], 0);
    cr_expect_eq(d.y[1], 1);
    dataset_free(&d);
    labels_free(&ls);
}

Test(filter, words_are_blank_separated_tokens)
{
    cr_expect_eq(text_words(""), 0);
    cr_expect_eq(text_words("  "), 0);
    cr_expect_eq(text_words("one"), 1);
    cr_expect_eq(text_words(" two  words\t"), 2);
    cr_expect_eq(text_words("a, b - c."), 4);
}

Test(filter, nonword_share_counts_urls_and_markup)
{
    const struct {
        const char *text;
        double share;
    } cases[] = {
        {"", 0},
        {"A man's 10-year-old son, R2-D2, lost/stolen L.A.'s $10,000 -- (really)!", 0},
        {"-- ... !", 0},                                              /* punctuation alone: neither */
        {"-- x@y.z --", 1},                                           /* ...not even in the denominator */
        {"https://images-na.ssl-images.com/M/MV5B@._V1_UX182_.jpg", 1}, /* ':', '@', '_' inside */
        {"see https://x.com/a?b=1 now", 1.0 / 3},
        {"<a href=\"/title/tt0052077/\">Plan 9</a> (1959)", 2.0 / 4},  /* "<a" is a; "9</a" is not */
        {"Attack of La Ni\xc3\x83\xc2\xb1" "a", 1.0 / 4},              /* mojibake: the symbol U+00B1 inside */
        {"Caf\xc3\xa9 \xe2\x80\x9cquoted\xe2\x80\x9d na\xc3\xafve", 0},
    };
    for (size_t k = 0; k < sizeof cases / sizeof *cases; k++)
        cr_expect_float_eq(text_nonword_share(cases[k].text), cases[k].share, 1e-12, "%s: %g", cases[k].text,
                           text_nonword_share(cases[k].text));
}

/* Three genres. "the" is in every movie: df 1 in each. "gun" is in one
 * of the two Alpha movies (1/2), one of the two Beta ones (1/2) and the
 * Gamma one (1): lowest 1/2. "man" is in both Alpha movies, one Beta one,
 * but Gamma's has "man's", another word: never chosen, nor "love", missing
 * from Gamma too. Case does not matter ("The", "THE"). A word counts once
 * per text: "gun" said three times does not make it commoner. */
Test(filter, common_words_rank_by_their_lowest_genre_frequency)
{
    const char *texts[] = {"The man with a gun gun gun", "the man and love", "THE gun, gun, gun love man", "the love story",
                           "The man's gun"};
    const char *rows[] = {"100", "100", "010", "010", "001"};
    const char *names[] = {"Alpha", "Beta", "Gamma"};
    Dataset d;
    LabelSet ls;
    make(&d, &ls, 5, 3, texts, rows, names);
    char **w;
    int n = common_words(&d, 10, &w);
    cr_assert_eq(n, 2, "%d words", n);
    cr_expect_str_eq(w[0], "the");
    cr_expect_str_eq(w[1], "gun");
    for (int i = 0; i < n; i++) free(w[i]);
    free(w);
    n = common_words(&d, 1, &w);
    cr_assert_eq(n, 1);
    cr_expect_str_eq(w[0], "the");
    free(w[0]);
    free(w);
    /* With Gamma's movie saying "man", "man" (1, 1/2, 1) ties "gun" at 1/2
     * and sorts after it. */
    free(d.texts[4]);
    d.texts[4] = strdup("the man gun");
    n = common_words(&d, 10, &w);
    cr_assert_eq(n, 3, "%d words", n);
    cr_expect_str_eq(w[1], "gun");
    cr_expect_str_eq(w[2], "man");
    for (int i = 0; i < n; i++) free(w[i]);
    free(w);
    dataset_free(&d);
    labels_free(&ls);
}

Test(filter, strip_words_removes_whole_words_in_any_case)
{
    char *words[] = {"the", "man"};
    const struct {
        const char *in, *out;
    } cases[] = {
        {"The man's THE end, the-end.", "man's end, -end."},
        {"Theme of a mantra", "Theme of a mantra"},
        {"the man", ""},
        {"  a   the  b ", "a b"},
    };
    for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
        char *got = strip_words(cases[k].in, words, 2);
        cr_expect_str_eq(got, cases[k].out, "%s", cases[k].in);
        free(got);
    }
    char *same = strip_words("The man", words, 0);
    cr_expect_str_eq(same, "The man");
    free(same);
}
