"""The simulated detector: full-frame bias, wells, linearity, gain, read noise, bad pixels and
the flags its reference files carry."""

import numpy as np

from .. import dq
from .modes import AMP_WIDTH, FULL, NREF, dms_to_detector


def detector_properties(m, geo, rng):
    """Full-frame (2048 x 2048, DMS frame) detector properties, float32 unless stated."""
    f32 = np.float32
    shape = (FULL, FULL)

    def normal(scale):
        return f32(scale) * rng.standard_normal(shape, dtype=f32)

    def uniform(lo, hi):
        return f32(lo) + f32(hi - lo) * rng.random(shape, dtype=f32)

    yy, xx = np.meshgrid(
        np.arange(FULL, dtype=np.int32), np.arange(FULL, dtype=np.int32), indexing="ij"
    )
    row, col = dms_to_detector(yy, xx, m.fastaxis, m.slowaxis)
    amp = col // AMP_WIDTH
    col_pattern = rng.normal(0.0, 30.0, FULL).astype(f32)
    amp_offset = rng.uniform(-400.0, 400.0, 4).astype(f32)
    bias = (
        f32(12500.0)
        + amp_offset[amp]
        + col_pattern[col]
        + f32(40.0) * (col % 2).astype(f32)
        + f32(0.4) * row.astype(f32)
        + normal(20.0)
    )
    well = uniform(38000.0, 45000.0)
    sat_thresh = bias + well
    hard_sat = np.minimum(sat_thresh + uniform(300.0, 800.0), f32(65535.0))

    c1 = f32(1.0) + normal(0.002)
    c2 = f32(2.5e-6) * (f32(1.0) + normal(0.1))
    c3 = f32(2.0e-12) * (f32(1.0) + normal(0.2))
    c4 = np.full(shape, -1.0e-17, f32)
    coeffs = np.stack([np.zeros(shape, f32), c1, c2, c3, c4])

    gain = f32(m.gain) * (f32(1.0) + normal(0.03))
    readnoise = f32(m.readnoise) * (f32(1.0) + normal(0.1))

    refpix = (row < NREF) | (row >= FULL - NREF) | (col < NREF) | (col >= FULL - NREF)
    # mask in standard bits; MaskModel.save packs them into MASK_DQ_DEF's bit values
    mask = np.zeros((FULL, FULL), np.uint32)
    mask[refpix] |= dq.REFERENCE_PIXEL
    n_bad = FULL * FULL // 2000
    bad = pick_pixels(rng, ~refpix, 4 * n_bad)
    dead, hot, warm, unrel = np.array_split(bad, 4)
    mask.flat[dead] |= dq.DO_NOT_USE | dq.PIXEL["DEAD"]
    mask.flat[hot] |= dq.DO_NOT_USE | dq.PIXEL["HOT"]
    mask.flat[warm] |= dq.PIXEL["WARM"]
    mask.flat[unrel] |= dq.PIXEL["UNRELIABLE_SLOPE"]
    dark_rate = np.full((FULL, FULL), 0.01, f32)
    dark_rate.flat[hot] = rng.uniform(5.0, 50.0, hot.size)
    dark_rate.flat[warm] = rng.uniform(0.5, 5.0, warm.size)
    dark_rate[refpix] = 0.0
    response = np.ones((FULL, FULL), f32)
    response.flat[dead] = 0.0

    # saturation reference: NaN thresholds, most flagged NO_SAT_CHECK in the file, some not
    sat_ref = sat_thresh.copy()
    sat_dq = np.zeros((FULL, FULL), np.uint32)
    nan_sat = pick_pixels(rng, ~refpix, 200)
    sat_ref.flat[nan_sat] = np.nan
    sat_dq.flat[nan_sat[:150]] |= dq.NO_SAT_CHECK
    sat_dq.flat[pick_pixels(rng, ~refpix, 100)] |= dq.NO_SAT_CHECK  # finite but not to be checked

    # linearity reference: NO_LIN_CORR, NaN coefficients, zero linear term (standard bits;
    # LinearityModel.save packs them into LINEARITY_DQ_DEF's bit values)
    lin_dq = np.zeros((FULL, FULL), np.uint32)
    lin_coeffs = coeffs.copy()
    no_lin = pick_pixels(rng, ~refpix, 200)
    lin_dq.flat[no_lin] |= dq.NO_LIN_CORR
    lin_dq.flat[pick_pixels(rng, ~refpix, 200)] |= dq.PIXEL["NONLINEAR"]
    nan_lin = pick_pixels(rng, ~refpix, 100)
    lin_coeffs[2].flat[nan_lin] = np.nan
    zero_lin = pick_pixels(rng, ~refpix, 50)
    lin_coeffs[1].flat[zero_lin] = 0.0

    gain_ref = gain.copy()
    gain_ref.flat[pick_pixels(rng, ~refpix, 20)] = np.nan
    return {
        "bias": bias,
        "sat_thresh": sat_ref,
        "sat_dq": sat_dq,
        "hard_sat": hard_sat,
        "coeffs": coeffs,
        "lin_coeffs": lin_coeffs,
        "lin_dq": lin_dq,
        "gain": gain,
        "gain_ref": gain_ref,
        "readnoise": readnoise,
        "mask": mask,
        "mask_extra": unrel,  # flat indices that get the non-mnemonic raw bit 64
        "dark_rate": dark_rate,
        "response": response,
        "dead": dead,
        "hot": hot,
    }


def pick_pixels(rng, allowed, n):
    """``n`` distinct flat indices, sorted, among the True pixels of ``allowed``."""
    idx = np.flatnonzero(allowed)
    return np.sort(rng.choice(idx, size=min(n, idx.size), replace=False))
