"""gain_scale: multiply rate products by the GAINFACT gain factor.

Mirrors ``jwst/gain_scale/gain_scale.py: do_correction``.

Operation order a kernel must copy: jwst's factor is a Python float and its arrays are
float32, so ``data *= f`` is one float32 multiply by ``float32(f)``, and the variances get
``float32(f**2)`` where ``f**2`` is squared in float64 before rounding (not
``float32(f) * float32(f)``).
"""

import numpy as np


def gain_scale(sci, err, var_poisson, var_rnoise, factor):
    """Scale a rate (or rateints) product by the gain factor.

    Parameters
    ----------
    sci, err : ndarray of float32, shape (ny, nx) or (nints, ny, nx)
    var_poisson, var_rnoise : ndarray of float32, same shape, or None
        None (or an empty array) is returned unchanged, as jwst skips absent variances.
    factor : float
        GAINFACT.

    Returns
    -------
    sci, err, var_poisson, var_rnoise : new float32 arrays (or the None/empty input).
    """
    f = float(factor)
    f32 = np.float32(f)
    f2_32 = np.float32(f**2)
    new_sci = np.multiply(sci, f32, dtype=np.float32)
    new_err = np.multiply(err, f32, dtype=np.float32)
    out_vars = []
    for var in (var_poisson, var_rnoise):
        if var is None or np.size(var) == 0:
            out_vars.append(var)
        else:
            out_vars.append(np.multiply(var, f2_32, dtype=np.float32))
    return new_sci, new_err, out_vars[0], out_vars[1]
