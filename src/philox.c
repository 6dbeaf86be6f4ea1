#include <math.h>

#include "philox.h"

static inline uint32_t mulhilo(uint32_t a, uint32_t b, uint32_t *hi)
{
    uint64_t p = (uint64_t)a * b;
    *hi = (uint32_t)(p >> 32);
    return (uint32_t)p;
}

void philox4x32_10(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4])
{
    uint32_t c0 = ctr[0], c1 = ctr[1], c2 = ctr[2], c3 = ctr[3], k0 = key[0], k1 = key[1];
    for (int round = 0; round < 10; round++) {
        uint32_t hi0, hi1;
        uint32_t lo0 = mulhilo(0xD2511F53u, c0, &hi0);
        uint32_t lo1 = mulhilo(0xCD9E8D57u, c2, &hi1);
        c0 = hi1 ^ c1 ^ k0;
        c1 = lo1;
        c2 = hi0 ^ c3 ^ k1;
        c3 = lo0;
        k0 += 0x9E3779B9u;
        k1 += 0xBB67AE85u;
    }
    out[0] = c0, out[1] = c1, out[2] = c2, out[3] = c3;
}

void philox_block(uint64_t seed, uint64_t stream, uint64_t block, uint32_t out[4])
{
    uint32_t ctr[4] = {(uint32_t)block, (uint32_t)(block >> 32), (uint32_t)stream,
                       (uint32_t)(stream >> 32)};
    uint32_t key[2] = {(uint32_t)seed, (uint32_t)(seed >> 32)};
    philox4x32_10(ctr, key, out);
}

static inline float to_uniform(uint32_t w) { return (float)(w >> 8) * (1.0f / 16777216.0f); }

/* Element `index` is word index % 4 of block index / 4. */
float philox_uniform(uint64_t seed, uint64_t stream, uint64_t index)
{
    uint32_t w[4];
    philox_block(seed, stream, index >> 2, w);
    return to_uniform(w[index & 3]);
}

float philox_normal(uint64_t seed, uint64_t stream, uint64_t index)
{
    /* Two uniforms from two elements of the same stream; (0, 1] for the log. */
    float u1 = 1.0f - philox_uniform(seed, stream, 2 * index);
    float u2 = philox_uniform(seed, stream, 2 * index + 1);
    return sqrtf(-2.0f * logf(u1)) * cosf(6.2831853071795865f * u2);
}
