/* Float exp and erf for elementwise loops: straight-line code (no calls,
 * no branches, selects only) that the compiler vectorizes, where libm's
 * expf/erff stay one call per element. Maximum errors against double
 * precision on dense grids (tests/unit/test_vecmath.c checks the bounds):
 * vec_expf 0.99 ulp, also where the result is denormal; vec_erff 1.33 ulp
 * (glibc's erff: 0.92). NaN propagates; exp(+-inf)
 * and erf(+-inf) are exact.
 *
 * The functions that loop over them are compiled twice (VEC_CLONES,
 * src/core/clones.h), and both clones round alike: the same bits on every
 * CPU. */
#ifndef GENRE_OPS_VECMATH_H
#define GENRE_OPS_VECMATH_H

#include <math.h>
#include <stdint.h>

#include "src/core/clones.h"

static inline __attribute__((always_inline)) uint32_t vec_bits(float f)
{
    union { float f; uint32_t u; } v = {.f = f};
    return v.u;
}

static inline __attribute__((always_inline)) float vec_float(uint32_t u)
{
    union { uint32_t u; float f; } v = {.u = u};
    return v.f;
}

/* c ? a : b on the bits. GCC keeps floating-point exceptions exact by
 * default (-ftrapping-math), so it keeps a float ?: as a branch, which stops
 * vectorization; this select has no branch to keep. */
static inline __attribute__((always_inline)) float vec_select(int c, float a, float b)
{
    uint32_t m = 0u - (uint32_t)(c != 0);
    return vec_float((vec_bits(a) & m) | (vec_bits(b) & ~m));
}

/* e^x = 2^n e^r, n = round(x / ln 2), |r| <= ln 2 / 2, e^r by Cephes'
 * expf polynomial; 2^n applied as two powers of two so that n from -150 to
 * 128 (gradual underflow to overflow) needs no special case. */
static inline __attribute__((always_inline)) float vec_expf(float x)
{
    float xc = vec_select(x < -110.0f, -110.0f, x);
    xc = vec_select(x > 88.7228f, 88.7228f, xc); /* NaN stays */
    float k = xc * 1.44269504f + 12582912.0f; /* 1.5 * 2^23: rounds to an integer */
    float n = k - 12582912.0f;
    int32_t ni = (int32_t)(vec_bits(k) - 0x4B400000u), n1 = ni / 2, n2 = ni - n1;
    float r = xc - n * 0.693359375f; /* ln 2 in two parts: n * 0.693359375 is exact */
    r = r - n * -2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    float e = (p * r * r + r) + 1.0f;
    float y = e * vec_float((uint32_t)(n1 + 127) << 23) * vec_float((uint32_t)(n2 + 127) << 23);
    return vec_select(x > 88.7228f, INFINITY, y);
}

/* |x| < 0.921875: x + x P(x^2). Above: 1 - e^(Q(t) - t^2), t = |x| (clamped
 * to 4, where erf is 1 in float), with the sign of x. Coefficients: a
 * Lawson (near-minimax) fit by tests/reference/fit_erf.py, relative error
 * for P, absolute error of erf for Q. */
static inline __attribute__((always_inline)) float vec_erff(float x)
{
    float s = x * x, t = fabsf(x);
    float p = -5.99089020e-04f;
    p = p * s + 4.99318913e-03f;
    p = p * s + -2.67666243e-02f;
    p = p * s + 1.12818167e-01f;
    p = p * s + -3.76124948e-01f;
    p = p * s + 1.28379151e-01f;
    float small = x + x * p; /* erf(x) / x - 1 by P: the leading 1 adds exactly */
    float u = vec_select(t > 4.0f, 4.0f, t);
    float q = -2.11840124e-05f;
    q = q * u + 4.35475202e-04f;
    q = q * u + -4.17588884e-03f;
    q = q * u + 2.51319148e-02f;
    q = q * u + -1.08299054e-01f;
    q = q * u + 3.66670012e-01f;
    q = q * u + -1.12952316e+00f;
    q = q * u + 1.76357105e-04f;
    float big = copysignf(1.0f - vec_expf(q - u * u), x);
    return vec_select(t < 0.921875f, small, big);
}

#endif
