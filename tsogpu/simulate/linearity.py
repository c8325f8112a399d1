"""The linearity reference polynomial and its inverses (measured DN from linear DN)."""

import numpy as np


def polynomial(coeffs, x):
    """Horner evaluation of ``sum_j coeffs[j] * x**j`` along axis 0 of ``coeffs``."""
    r = coeffs[-1] * x
    for c in coeffs[-2:0:-1]:
        r = (r + c) * x
    return r + coeffs[0]


def series_inverse(coeffs, s):
    """Third-order series reversion of the linearity polynomial (c0 = 0), float32."""
    b2 = coeffs[2] / coeffs[1]
    b3 = coeffs[3] / coeffs[1]
    t = s / coeffs[1]
    return t * (np.float32(1.0) - t * (b2 - t * (np.float32(2.0) * b2 * b2 - b3)))


def inverse_linearity(coeffs, s, m_cap):
    """Solve ``poly(m) = s`` for the measured signal m, capped at ``m_cap``.

    float32 throughout: two Newton steps from the series start reach ~1e-6 relative, far
    below the read noise.
    """
    c1, c2, c3, c4 = coeffs[1], coeffs[2], coeffs[3], coeffs[4]
    m = series_inverse(coeffs, s)
    for _ in range(2):
        f = (((c4 * m + c3) * m + c2) * m + c1) * m - s
        fp = ((np.float32(4.0) * c4 * m + np.float32(3.0) * c3) * m + np.float32(2.0) * c2) * m
        m -= f / (fp + c1)
    return np.minimum(m, m_cap, out=m)


def inverse_coeffs(coeffs):
    """Series reversion of ``S = c1 m + c2 m^2 + c3 m^3 + c4 m^4`` (c0 = 0): float32 (5, ...)."""
    c1, c2, c3, c4 = coeffs[1], coeffs[2], coeffs[3], coeffs[4]
    b2, b3, b4 = c2 / c1, c3 / c1, c4 / c1
    d1 = 1.0 / c1
    d2 = -b2 * d1**2
    d3 = (2.0 * b2**2 - b3) * d1**3
    d4 = (-5.0 * b2**3 + 5.0 * b2 * b3 - b4) * d1**4
    return np.stack([np.zeros_like(c1), d1, d2, d3, d4]).astype(np.float32)
