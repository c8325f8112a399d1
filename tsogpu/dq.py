"""JWST data-quality bit values: the single source of truth for tsogpu.

The values equal ``stdatamodels.jwst.datamodels.dqflags.pixel`` (and ``.group`` for the
low eight bits, which are the only ones that can occur in the uint8 GROUPDQ array).
CUDA kernels receive these values as arguments, never as literals.
"""

import numpy as np

PIXEL = {
    "GOOD": 0,
    "DO_NOT_USE": 1 << 0,
    "SATURATED": 1 << 1,
    "JUMP_DET": 1 << 2,
    "DROPOUT": 1 << 3,
    "OUTLIER": 1 << 4,
    "PERSISTENCE": 1 << 5,
    "AD_FLOOR": 1 << 6,
    "CHARGELOSS": 1 << 7,
    "RESERVED_4": 1 << 8,
    "NON_SCIENCE": 1 << 9,
    "DEAD": 1 << 10,
    "HOT": 1 << 11,
    "WARM": 1 << 12,
    "LOW_QE": 1 << 13,
    "RC": 1 << 14,
    "TELEGRAPH": 1 << 15,
    "NONLINEAR": 1 << 16,
    "BAD_REF_PIXEL": 1 << 17,
    "NO_FLAT_FIELD": 1 << 18,
    "NO_GAIN_VALUE": 1 << 19,
    "NO_LIN_CORR": 1 << 20,
    "NO_SAT_CHECK": 1 << 21,
    "UNRELIABLE_BIAS": 1 << 22,
    "UNRELIABLE_DARK": 1 << 23,
    "UNRELIABLE_SLOPE": 1 << 24,
    "UNRELIABLE_FLAT": 1 << 25,
    "OPEN": 1 << 26,
    "ADJ_OPEN": 1 << 27,
    "FLUX_ESTIMATED": 1 << 28,
    "MSA_FAILED_OPEN": 1 << 29,
    "OTHER_BAD_PIXEL": 1 << 30,
    "REFERENCE_PIXEL": 1 << 31,
}

GROUP = {
    name: PIXEL[name]
    for name in (
        "GOOD",
        "DO_NOT_USE",
        "SATURATED",
        "JUMP_DET",
        "DROPOUT",
        "PERSISTENCE",
        "AD_FLOOR",
        "CHARGELOSS",
    )
}

GOOD = PIXEL["GOOD"]
DO_NOT_USE = PIXEL["DO_NOT_USE"]
SATURATED = PIXEL["SATURATED"]
JUMP_DET = PIXEL["JUMP_DET"]
AD_FLOOR = PIXEL["AD_FLOOR"]
CHARGELOSS = PIXEL["CHARGELOSS"]
NO_GAIN_VALUE = PIXEL["NO_GAIN_VALUE"]
NO_LIN_CORR = PIXEL["NO_LIN_CORR"]
NO_SAT_CHECK = PIXEL["NO_SAT_CHECK"]
REFERENCE_PIXEL = PIXEL["REFERENCE_PIXEL"]

PIXELDQ_DTYPE = np.uint32
GROUPDQ_DTYPE = np.uint8


def remap(dq, dq_def):
    """Translate a reference file's DQ array to standard bits through its DQ_DEF table.

    Mirrors ``stdatamodels.dynamicdq.dynamic_mask``: for each (VALUE, NAME) row, every
    pixel with ``dq & VALUE`` gets the standard bit of NAME; names that are not standard
    mnemonics (exact case) are dropped. Without a table the raw array is returned as uint32.

    Parameters
    ----------
    dq : ndarray of integer, any shape
    dq_def : iterable of (value, name) pairs, or None

    Returns
    -------
    ndarray of uint32, same shape as ``dq``; a new array.
    """
    raw = np.asarray(dq).astype(np.uint32)
    if dq_def is None:
        return raw
    out = np.zeros_like(raw)
    for value, name in dq_def:
        bit = PIXEL.get(str(name).strip())
        if bit is None or bit == 0:
            continue
        out[(raw & np.uint32(value)) != 0] |= np.uint32(bit)
    return out
