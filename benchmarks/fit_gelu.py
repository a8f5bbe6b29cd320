"""Derives the constants of core/models/gpt.py's GELU: run once, paste the printed coefficients.

GELU(x) = x Phi(x), Phi the standard normal distribution function. NumPy has no erf, so:

float64 ("exact", error at the level of float64 rounding), two pieces:
    |x| < 2:   Phi(x) = 1/2 + x R(x^2)                      R: polynomial fitted to (Phi(x) - 1/2) / x
    |x| >= 2:  tail(a) = 1 - Phi(a) = t exp(Q(s) - a^2/2)   a = |x|, t = 1 / (1 + a / 4), s = 2 t / t1 - 1
               Phi(x) = tail(|x|) for x < 0, 1 - tail(|x|) for x > 0 (so the left tail keeps its
               relative precision: no 1 + erf cancellation)
    Q is fitted to ln(tail(a) / t) + a^2 / 2 over all a >= 2 (t in (0, t1], t1 = 1 / (1 + 2/4)):
    bounded as a -> infinity (tail ~ phi(a) / a), so one polynomial covers the whole tail.

float32 ("fast"): Phi(x) ~ (1 + tanh(x P(x^2))) / 2, P fitted (weighted minimax, Lawson's iteration)
on |x| <= X so the error in Phi is below float32 resolution; one tanh instead of an exp and a long
polynomial. Beyond X the model evaluates P unclipped: x P(x^2) only grows there (the last line
printed checks it), so tanh saturates.

Needs mpmath (a dependency of sympy, which comes with PyTorch); not part of the product.

    python benchmarks/fit_gelu.py
"""

import mpmath as mp
import numpy as np

mp.mp.dps = 40


def Phi(x):
    return mp.ncdf(x)


def fit_small(bound, n):
    """R (highest degree first) with Phi(x) = 1/2 + x R(x^2) on |x| <= bound."""

    def f(w):
        return (Phi(mp.sqrt(w)) - mp.mpf(1) / 2) / mp.sqrt(w) if w > 0 else 1 / mp.sqrt(2 * mp.pi)

    poly, err = mp.chebyfit(f, [0, mp.mpf(bound) ** 2], n, error=True)
    return [float(c) for c in poly], float(err)


def fit_tail(bound, k, n):
    """Q (highest degree first, in s in [-1, 1]) with tail(a) = t exp(Q(s) - a^2/2) for a >= bound."""
    t1 = 1 / (1 + k * mp.mpf(bound))

    def h(s):
        t = (s + 1) * t1 / 2
        if t == 0:  # a -> infinity: tail ~ phi(a) / a, t ~ 1 / (k a)
            return mp.log(k / mp.sqrt(2 * mp.pi))
        a = (1 / t - 1) / k
        return mp.log(mp.ncdf(-a) / t) + a * a / 2

    poly, err = mp.chebyfit(h, [-1, 1], n, error=True)
    return [float(c) for c in poly], float(err), float(t1)


def fit_fast(n, X, iters=3000):
    """P (lowest degree first) with (1 + tanh(x P(x^2))) / 2 ~ Phi(x) on [0, X]: weighted Lawson."""
    xs = np.linspace(1e-3, X, 8000)
    ph = np.array([float(Phi(v)) for v in xs])
    q = np.array([float(Phi(-v)) for v in xs])
    ustar = 0.5 * np.log(ph / q)  # atanh(2 Phi - 1)
    w = 2 * ph * q  # d Phi / d u: an error in u costs this much in Phi
    A = np.stack([xs * (xs**2) ** k for k in range(n)], axis=1)
    sc = np.abs(A).max(axis=0)
    A1 = A / sc
    lw = np.ones_like(xs) / len(xs)
    best = (np.inf, None)
    for _ in range(iters):
        W = w * np.sqrt(lw)
        c, *_ = np.linalg.lstsq(A1 * W[:, None], ustar * W, rcond=None)
        err = np.abs(w * (A1 @ c - ustar))
        if err.max() < best[0]:
            best = (err.max(), c / sc)
        lw = lw * err
        lw /= lw.sum()
    return best[1], best[0]


if __name__ == "__main__":
    small, e1 = fit_small(2.0, 14)
    print("small piece error", e1)
    print("_PHI_SMALL = (", ", ".join(repr(c) for c in small), ")")
    tail, e2, t1 = fit_tail(2.0, 0.25, 20)
    print("tail piece error (in the exponent)", e2, "t1", t1)
    print("_PHI_TAIL = (", ", ".join(repr(c) for c in tail), ")")
    fast, e3 = fit_fast(7, 5.5)
    print("fast fit error in Phi", e3, "leading", fast[-1])
    print("_PHI_FAST = (", ", ".join(repr(float(c)) for c in fast[::-1]), ")  # highest degree first")
    # the fast polynomial, continued past X unclipped: does u = x P(x^2) stay above 9 (tanh = 1 in float32)?
    xs = np.geomspace(5.5, 1e6, 20000)
    u = xs * np.polyval(fast[::-1], xs * xs)
    print("unclipped: min u beyond X", u.min(), "monotone", bool(np.all(np.diff(u) > 0)))
