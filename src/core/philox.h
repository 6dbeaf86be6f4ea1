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

#include "src/core/hostdev.h"

/* One block: 4 random 32-bit words for counter ctr under key. */
void philox4x32_10(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4]);

/* The same inline, for host and device (hostdev.h): the CUDA kernels
 * (kernels/dropout.cu) compile these very lines, so a GPU draws the CPU's
 * bits from one source. */

/* The ten rounds on counter c (in place) under key (k0, k1). */
HOSTDEV void philox_rounds(uint32_t c[4], uint32_t k0, uint32_t k1)
{
    for (int round = 0; round < 10; round++) {
        uint64_t p0 = (uint64_t)0xD2511F53u * c[0], p1 = (uint64_t)0xCD9E8D57u * c[2];
        uint32_t n0 = (uint32_t)(p1 >> 32) ^ c[1] ^ k0, n2 = (uint32_t)(p0 >> 32) ^ c[3] ^ k1;
        c[1] = (uint32_t)p1;
        c[3] = (uint32_t)p0;
        c[0] = n0;
        c[2] = n2;
        k0 += 0x9E3779B9u;
        k1 += 0xBB67AE85u;
    }
}

/* Block `block` of `stream` under key `seed`, the convention above. */
HOSTDEV void philox_block(uint64_t seed, uint64_t stream, uint64_t block, uint32_t out[4])
{
    out[0] = (uint32_t)block;
    out[1] = (uint32_t)(block >> 32);
    out[2] = (uint32_t)stream;
    out[3] = (uint32_t)(stream >> 32);
    philox_rounds(out, (uint32_t)seed, (uint32_t)(seed >> 32));
}

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
