"""The coefficients of vec_erff (src/ops/vecmath.h): near-minimax polynomial
fits by Lawson's iteratively reweighted least squares against Python's
double-precision math.erf / math.erfc. Needs numpy; prints float-rounded
coefficients, highest degree last (vecmath.h evaluates them from the top).

    python3 tests/reference/fit_erf.py
"""
import math

import numpy as np

BREAK = 0.921875  # below: erf(x) = x + x P(x^2); above: 1 - exp(Q(t) - t^2)


def lawson(A, y, scale, iters=200):
    """Coefficients c minimising max |A c - y| * scale (nearly)."""
    w = np.ones(len(y))
    for _ in range(iters):
        sw = np.sqrt(w) * scale
        c, *_ = np.linalg.lstsq(A * sw[:, None], y * sw, rcond=None)
        e = np.abs(A @ c - y) * scale
        w = w * e
        w /= w.sum()
    return c, e.max()


def show(name, c, e):
    print(f"{name}: max weighted error {e:.3g}")
    print("  " + ", ".join(f"{np.float32(v):.8e}" for v in c))


def main():
    erf, erfc = np.vectorize(math.erf), np.vectorize(math.erfc)
    # P: erf(x) / x - 1 in s = x^2, error relative to erf(x) / x (Chebyshev nodes)
    x = np.cos(np.linspace(0, np.pi, 4000)) * BREAK / 2 + BREAK / 2 + 1e-9
    s = x * x
    A = np.stack([s**k for k in range(6)], 1)
    show("P (degree 5 in x^2)", *lawson(A, erf(x) / x - 1, x / erf(x)))
    # Q: log(erfc(t)) + t^2 in t, error of erf = erfc(t) * error of Q
    t = np.linspace(BREAK, 4.0, 6000)
    A = np.stack([t**k for k in range(8)], 1)
    show("Q (degree 7 in t)", *lawson(A, np.log(erfc(t)) + t * t, erfc(t)))


if __name__ == "__main__":
    main()
