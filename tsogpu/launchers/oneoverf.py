"""Launchers of kernels/oneoverf.cu: the sky-pixel reference correction
(``tsogpu.algorithms.oneoverf``), bit for bit. Each function takes the kernels object ``k``
first, then the parameters of the NumPy function of the same name. Inputs are never modified.
"""

import numpy as np

from ..algorithms import oneoverf as alg
from .marshal import contiguous, dqv, i64, to_host

# Scratch for the gathered sky values, in float32 words: the (plane, label) items are taken
# in batches that fit (an item needs as many words as its label's largest pixel count).
SCRATCH_WORDS = 1 << 24


def label_medians(k, data, groupdq, sky, labels, nlabels, image=None):
    """``tsogpu.algorithms.oneoverf.label_medians``."""
    xp = k.xp
    data = contiguous(k, data, np.float32)
    gdq = contiguous(k, groupdq, np.uint8)
    nints, ngroups, ny, nx = data.shape
    start, order = alg.members(to_host(labels), nlabels)
    width = int(np.diff(start).max()) if nlabels else 0
    levels = xp.empty((nints, ngroups, nlabels), np.float32)
    items = nints * ngroups * nlabels
    if items == 0:
        return levels
    nb = max(1, min(items, SCRATCH_WORDS // max(width, 1)))
    scratch = xp.empty(nb * max(width, 1), np.float32)
    args = (data, gdq, contiguous(k, sky, np.uint8), xp.asarray(start), xp.asarray(order), dqv(k))
    use_image = image is not None
    image = contiguous(k, image, np.float32) if use_image else xp.zeros(1, np.float32)
    args += (image, i64(use_image))
    for j0 in range(0, items, nb):
        n = min(nb, items - j0)
        k.launch(
            "tso_oof_medians", n, *args, levels, scratch, i64(nlabels), i64(ny * nx),
            i64(width), i64(j0), i64(n),
        )  # fmt: skip
    return levels


def subtract_levels(k, data, labels, levels):
    """``tsogpu.algorithms.oneoverf.subtract_levels``."""
    data = contiguous(k, data, np.float32)
    levels = contiguous(k, levels, np.float32)
    ny, nx = data.shape[2:]
    out = k.xp.empty(data.shape, np.float32)
    k.launch(
        "tso_oof_subtract", data.size, data, contiguous(k, labels, np.int32), levels, out,
        i64(levels.shape[-1]), i64(ny * nx), i64(data.size),
    )  # fmt: skip
    return out


def correct_sky(k, data, groupdq, pixeldq, exposure, method, trace_mask):
    """``tsogpu.algorithms.oneoverf.correct_sky`` (levels returned as arrays of ``k.xp``)."""
    lay = alg.layout(data.shape[2:], exposure)
    sky = alg.sky_pixels(to_host(pixeldq), trace_mask)
    nints, ngroups = data.shape[:2]
    offsets = None
    if method == "roeba":
        off = label_medians(k, data, groupdq, sky, lay.parities, 2 * lay.namps)
        data = subtract_levels(k, data, lay.parities, off)
        offsets = off.reshape(nints, ngroups, lay.namps, 2)
    lines = label_medians(k, data, groupdq, sky, lay.lines, lay.namps * lay.nlines)
    data = subtract_levels(k, data, lay.lines, lines)
    levels = lines.reshape(nints, ngroups, lay.namps, lay.nlines)
    return data, alg.Levels(levels, offsets, lay.line_axis)
