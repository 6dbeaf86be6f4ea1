/* A small seeded generator for shuffles and sampling (xoshiro256**, seeded
 * through splitmix64): the same seed gives the same stream on every machine,
 * which reproducible splits and resumable training rely on. Not for dropout:
 * that uses a counter-based generator so a GPU can reproduce it. */
#ifndef GENRE_RNG_H
#define GENRE_RNG_H

#include <stdint.h>

typedef struct { uint64_t s[4]; } Rng;

void rng_seed(Rng *r, uint64_t seed);
uint64_t rng_next(Rng *r);
/* Uniform in [0, n), unbiased. */
uint64_t rng_below(Rng *r, uint64_t n);
/* Uniform in [0, 1). */
double rng_uniform(Rng *r);
/* Fisher-Yates shuffle of n ints. */
void rng_shuffle(Rng *r, int *a, int n);

#endif
