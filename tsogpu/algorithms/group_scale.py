"""group_scale: rescale groups averaged on board with FRMDIVSR != NFRAMES.

Mirrors ``jwst/group_scale/group_scale_step.py: GroupScaleStep.process`` (skip rules) and
``jwst/group_scale/group_scale.py: do_correction`` (the scaling).

Operation order a kernel must copy: jwst computes ``scale = float(FRMDIVSR) / NFRAMES`` in
float64 on the host and applies ``data *= scale`` to float32 data; NumPy's rule for Python
scalars rounds ``scale`` to float32 first, so the product is one float32 multiply by
``float32(scale)``.
"""

import numpy as np


def needs_group_scale(nframes, frame_divisor):
    """Whether jwst would run group_scale for these keywords.

    jwst skips the step when NFRAMES is missing, when FRMDIVSR is missing (at once when
    NFRAMES is a power of 2, otherwise inside ``do_correction``), and when FRMDIVSR equals
    NFRAMES.

    Parameters
    ----------
    nframes : int or None
        NFRAMES.
    frame_divisor : int or None
        FRMDIVSR.

    Returns
    -------
    bool
    """
    if nframes is None or frame_divisor is None:
        return False
    return nframes != frame_divisor


def group_scale(data, nframes, frame_divisor):
    """Multiply every group by FRMDIVSR / NFRAMES.

    Parameters
    ----------
    data : ndarray of float32, shape (nints, ngroups, ny, nx)
    nframes : int
        NFRAMES.
    frame_divisor : int
        FRMDIVSR.

    Returns
    -------
    ndarray of float32, shape (nints, ngroups, ny, nx); a new array.
    """
    # float64 quotient on the host, rounded once to float32 (as numpy does for jwst's
    # in-place ``model.data *= scale``).
    scale = np.float32(float(frame_divisor) / nframes)
    return np.multiply(data, scale, dtype=np.float32)
