/* vec_expf and vec_erff (src/ops/vecmath.h) against double-precision exp
 * and erf on dense grids (2^21 + 1 points each): the error bounds the header
 * states, in units in the last place of the float result. */
#include <criterion/criterion.h>
#include <float.h>
#include <math.h>

#include "src/ops/vecmath.h"

#define GRID (1 << 21)

/* The spacing of floats at |y| (the smallest denormal below FLT_MIN). */
static double ulp(double y)
{
    int e;
    frexp(y, &e);
    return fmax(ldexp(1.0, e - 24), ldexp(1.0, -149));
}

/* The largest error of f against ref over GRID + 1 points from lo to hi, in
 * ulps; *where gets its x. */
static double worst_ulps(float (*f)(float), double (*ref)(double), float lo, float hi,
                         float *where)
{
    double worst = 0;
    for (int i = 0; i <= GRID; i++) {
        float x = lo + (hi - lo) * (float)i / (float)GRID;
        double r = ref(x), e = fabs((double)f(x) - r) / ulp(r);
        if (e > worst) worst = e, *where = x;
    }
    return worst;
}

static float exp_f(float x) { return vec_expf(x); }
static float erf_f(float x) { return vec_erff(x); }

Test(vecmath, expf_within_1_ulp)
{
    float at = 0;
    double e = worst_ulps(exp_f, exp, -87.33f, 88.72f, &at);
    cr_expect_leq(e, 1.0, "vec_expf: %.3f ulp at %.9g", e, at);
    /* below FLT_MIN the result is a denormal or 0: off by under one denormal step */
    e = worst_ulps(exp_f, exp, -120.0f, -87.34f, &at);
    cr_expect_leq(e, 1.0, "vec_expf (denormal range): %.3f ulp at %.9g", e, at);
}

Test(vecmath, erff_within_1_5_ulp)
{
    float at = 0;
    double e = worst_ulps(erf_f, erf, -6.0f, 6.0f, &at);
    cr_expect_leq(e, 1.5, "vec_erff: %.3f ulp at %.9g", e, at);
    e = worst_ulps(erf_f, erf, -1e-3f, 1e-3f, &at); /* tiny |x|: relative accuracy kept */
    cr_expect_leq(e, 1.5, "vec_erff near 0: %.3f ulp at %.9g", e, at);
}

Test(vecmath, special_values)
{
    cr_expect(isnan(vec_expf(NAN)) && isnan(vec_erff(NAN)));
    cr_expect_eq(vec_expf(INFINITY), INFINITY);
    cr_expect_eq(vec_expf(-INFINITY), 0.0f);
    cr_expect_eq(vec_expf(100.0f), INFINITY);
    cr_expect_eq(vec_expf(0.0f), 1.0f);
    cr_expect_eq(vec_erff(INFINITY), 1.0f);
    cr_expect_eq(vec_erff(-INFINITY), -1.0f);
    cr_expect_eq(vec_erff(0.0f), 0.0f);
    cr_expect_eq(vec_erff(1e30f), 1.0f);
}
