/* Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2,
 * 3"): a counter-based generator. Output depends only on (key, counter), so
 * any element of any stream can be computed independently, in any order, on
 * the CPU or a GPU, and gives the same bits (cuRAND uses the same rounds).
 *
 * Convention for genre: key = seed, counter = (index / 4 as 64 bits, stream
 * as 64 bits), word index % 4 of the block. `stream` names the use (a dropout
 * site at a step, a parameter's initialisation), `index` the element. */
#ifndef GENRE_PHILOX_H
#define GENRE_PHILOX_H

#include <stdint.h>

/* One block: 4 random 32-bit words for counter ctr under key. */
void philox4x32_10(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4]);

/* Blocks first .. first + PHILOX_LANES - 1 of `stream` under key `seed`
 * (the convention above), word w of block first + l in out[w][l]: the
 * rounds run lane-parallel (vectorized), for loops that use every word of
 * many blocks (dropout.h). */
#define PHILOX_LANES 16
void philox_blocks(uint64_t seed, uint64_t stream, uint64_t first,
                   uint32_t out[4][PHILOX_LANES]);

/* Uniform in [0, 1) (24-bit resolution) for element `index` of `stream`. */
float philox_uniform(uint64_t seed, uint64_t stream, uint64_t index);

/* Standard normal for element `index` of `stream` (Box-Muller). */
float philox_normal(uint64_t seed, uint64_t stream, uint64_t index);

#endif
