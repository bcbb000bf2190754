"""Independent numpy reference of interpolation code 5 for the RooFit-class tests."""
from __future__ import annotations

import numpy as np


def code5(lo, hi, a):
    """Code 5: 1 + sum_{i=1..6} c_i a^i matching r^|a| to second order at a = +-1, exponential outside.

    ``lo``/``hi`` are the ratios at a = -1/+1 (arrays broadcast), ``a`` a scalar.
    """
    lo, hi = np.asarray(lo, float), np.asarray(hi, float)
    if a >= 1:
        return hi**a
    if a <= -1:
        return lo ** (-a)
    rows = []
    for x in (1.0, -1.0):
        rows.append([x**i for i in range(1, 7)])
        rows.append([i * x ** (i - 1) for i in range(1, 7)])
        rows.append([i * (i - 1) * x ** (i - 2) if i >= 2 else 0.0 for i in range(1, 7)])
    lp, lm = np.log(hi), np.log(lo)
    rhs = np.stack([hi - 1, hi * lp, hi * lp**2, lo - 1, -lo * lm, lo * lm**2])
    c = np.linalg.solve(np.array(rows), rhs.reshape(6, -1)).reshape(rhs.shape)
    return 1 + sum(c[i - 1] * a**i for i in range(1, 7))
