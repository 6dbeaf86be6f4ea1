/* Description lengths in buckets for "Jaccard by length" tables and
 * charts: edges at rounded quantiles of the lengths, so that buckets hold
 * about equal numbers of movies (at most LENGTH_BUCKETS_MAX, none empty).
 * Bucket b holds lengths in (upper[b - 1], upper[b]]; the last has no
 * upper bound. */
#ifndef GENRE_EVAL_LENGTHS_H
#define GENRE_EVAL_LENGTHS_H

#include <stddef.h>

#define LENGTH_BUCKETS_MAX 6

typedef struct {
    int n;
    int upper[LENGTH_BUCKETS_MAX];
    int min, max, at_max;          /* at_max: lengths equal to the longest */
    int count[LENGTH_BUCKETS_MAX]; /* lengths in each bucket */
} LengthBuckets;

/* The buckets of lengths[0..n), n >= 1. */
void length_buckets(LengthBuckets *lb, const int *lengths, int n);

/* The bucket of a length. */
int length_bucket_of(const LengthBuckets *lb, int len);

/* "<= 30", "31-40", "> 60" (with the typographic signs; lengths are whole numbers). */
void length_bucket_name(char *out, size_t cap, const LengthBuckets *lb, int b);

/* The mean of values[i] over the i of each bucket, into mean[0..lb->n). */
void length_bucket_means(const LengthBuckets *lb, const int *lengths, const double *values, int n, double *mean);

#endif
