#include <math.h>

#include "src/core/clones.h"
#include "src/core/philox.h"

void philox4x32_10(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4])
{
    out[0] = ctr[0], out[1] = ctr[1], out[2] = ctr[2], out[3] = ctr[3];
    philox_rounds(out, key[0], key[1]);
}

VEC_CLONES void philox_blocks(uint64_t seed, uint64_t stream, uint64_t first,
                              uint32_t out[4][PHILOX_LANES])
{
    /* philox4x32_10 with each counter word an array over the lanes, so the
     * rounds vectorize (32 x 32 -> 64-bit multiplies lane by lane). */
    uint32_t c0[PHILOX_LANES], c1[PHILOX_LANES], c2[PHILOX_LANES], c3[PHILOX_LANES];
    uint32_t k0 = (uint32_t)seed, k1 = (uint32_t)(seed >> 32);
    for (int l = 0; l < PHILOX_LANES; l++) {
        c0[l] = (uint32_t)(first + l);
        c1[l] = (uint32_t)((first + l) >> 32);
        c2[l] = (uint32_t)stream;
        c3[l] = (uint32_t)(stream >> 32);
    }
    for (int round = 0; round < 10; round++) {
        for (int l = 0; l < PHILOX_LANES; l++) {
            uint64_t p0 = (uint64_t)0xD2511F53u * c0[l], p1 = (uint64_t)0xCD9E8D57u * c2[l];
            uint32_t n0 = (uint32_t)(p1 >> 32) ^ c1[l] ^ k0, n2 = (uint32_t)(p0 >> 32) ^ c3[l] ^ k1;
            c1[l] = (uint32_t)p1;
            c3[l] = (uint32_t)p0;
            c0[l] = n0;
            c2[l] = n2;
        }
        k0 += 0x9E3779B9u;
        k1 += 0xBB67AE85u;
    }
    for (int l = 0; l < PHILOX_LANES; l++) {
        out[0][l] = c0[l];
        out[1][l] = c1[l];
        out[2][l] = c2[l];
        out[3][l] = c3[l];
    }
}

static inline float to_uniform(uint32_t w) { return (float)(w >> 8) * (1.0f / 16777216.0f); }

/* Element `index` is word index % 4 of block index / 4. */
float philox_uniform(uint64_t seed, uint64_t stream, uint64_t index)
{
    uint32_t ctr[4] = {(uint32_t)(index >> 2), (uint32_t)(index >> 34), (uint32_t)stream,
                       (uint32_t)(stream >> 32)};
    uint32_t key[2] = {(uint32_t)seed, (uint32_t)(seed >> 32)}, w[4];
    philox4x32_10(ctr, key, w);
    return to_uniform(w[index & 3]);
}

float philox_normal(uint64_t seed, uint64_t stream, uint64_t index)
{
    /* Two uniforms from two elements of the same stream; (0, 1] for the log. */
    float u1 = 1.0f - philox_uniform(seed, stream, 2 * index);
    float u2 = philox_uniform(seed, stream, 2 * index + 1);
    return sqrtf(-2.0f * logf(u1)) * cosf(6.2831853071795865f * u2);
}
