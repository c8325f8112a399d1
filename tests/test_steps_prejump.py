"""Pre-jump steps: hand-built catalogue cases, and random arrays against jwst/stcal.

Oracle tests (marked ``jwst``) compare DQ exactly and float data bit for bit
(``assert_array_equal`` on float32 arrays; NaNs must sit in the same places).
"""

import logging

import numpy as np
import pytest
from numpy.testing import assert_array_equal

from tsogpu import dq
from tsogpu.algorithms import (
    dark_current,
    dq_init,
    gain_scale,
    group_scale,
    linearity,
    saturation,
    superbias,
)

DNU = dq.DO_NOT_USE
SAT = dq.SATURATED
ADF = dq.AD_FLOOR
NSC = dq.NO_SAT_CHECK
NLC = dq.NO_LIN_CORR

logging.getLogger("stcal").setLevel(logging.ERROR)
logging.getLogger("jwst").setLevel(logging.ERROR)


def _ramp(nints, ngroups, ny, nx, value=0.0):
    data = np.full((nints, ngroups, ny, nx), value, dtype=np.float32)
    gdq = np.zeros(data.shape, dtype=np.uint8)
    pdq = np.zeros((ny, nx), dtype=np.uint32)
    return data, gdq, pdq


def _assert_bits_equal(a, b):
    """Same dtype, shape and bytes (so -0.0 != 0.0 and NaN payloads count)."""
    a = np.asarray(a)
    b = np.asarray(b)
    assert a.dtype == b.dtype, (a.dtype, b.dtype)
    assert a.shape == b.shape
    if a.tobytes() != b.tobytes():
        diff = a.view(f"u{a.itemsize}") != b.view(f"u{b.itemsize}")
        first = np.argwhere(diff)[:5].tolist()
        raise AssertionError(f"{diff.sum()} of {a.size} differ; first at {first}")


# ---------------------------------------------------------------------------------------
# group_scale


@pytest.mark.parametrize(
    ("nframes", "frmdivsr", "expected"),
    [
        (None, 4, False),  # NFRAMES missing
        (4, None, False),  # FRMDIVSR missing, NFRAMES power of 2
        (5, None, False),  # FRMDIVSR missing, not a power of 2: skipped in do_correction
        (4, 4, False),
        (5, 4, True),
        (3, 2, True),
    ],
)
def test_needs_group_scale(nframes, frmdivsr, expected):
    assert group_scale.needs_group_scale(nframes, frmdivsr) is expected


def test_group_scale_values():
    data, _, _ = _ramp(1, 2, 2, 2, 10.0)
    out = group_scale.group_scale(data, 5, 4)
    assert out.dtype == np.float32
    assert_array_equal(out, np.full(data.shape, 8.0, dtype=np.float32))


# ---------------------------------------------------------------------------------------
# dq_init


def test_dq_init_catalogue():
    _, gdq, pdq = _ramp(2, 3, 1, 3)
    pdq[0, 2] = dq.PIXEL["HOT"]
    gdq[1, 2, 0, 1] = SAT
    mask = np.array([[0, DNU | dq.PIXEL["DEAD"], dq.PIXEL["HOT"]]], dtype=np.uint32)
    new_pdq, new_gdq = dq_init.dq_init(pdq, gdq, mask)
    assert new_pdq.dtype == np.uint32 and new_gdq.dtype == np.uint8
    assert_array_equal(new_pdq, [[0, DNU | dq.PIXEL["DEAD"], dq.PIXEL["HOT"]]])
    # DO_NOT_USE reaches every group of pixel 1; HOT/DEAD never reach GROUPDQ
    assert (new_gdq[:, :, 0, 1] & DNU).all()
    assert new_gdq[1, 2, 0, 1] == SAT | DNU
    assert not new_gdq[:, :, 0, 0].any() and not new_gdq[:, :, 0, 2].any()


# ---------------------------------------------------------------------------------------
# saturation: catalogue


def _sat(data, thresh=1000.0, sat_dq=None, **kw):
    _, gdq, pdq = _ramp(*data.shape)
    ny, nx = data.shape[-2:]
    st = np.full((ny, nx), thresh, dtype=np.float32)
    sdq = np.zeros((ny, nx), dtype=np.uint32) if sat_dq is None else sat_dq
    return saturation.flag_saturation(data, gdq, pdq, st, sdq, **kw)


def test_saturation_from_group_1_and_stays():
    data, _, _ = _ramp(1, 4, 1, 5, 100.0)
    data[0, 1:, 0, 2] = [1000.0, 500.0, 500.0]  # >= threshold in group 1, drops afterwards
    gdq, pdq, zf = _sat(data, n_pix_grow_sat=0)
    assert_array_equal(gdq[0, :, 0, 2], [0, SAT, SAT, SAT])
    assert not gdq[0, :, 0, [0, 1, 3, 4]].any()
    assert zf is None and not pdq.any()


def test_saturation_threshold_is_inclusive_and_float32():
    data, _, _ = _ramp(1, 1, 1, 3)
    data[0, 0, 0] = [999.99994, 1000.0, np.nan]  # just below, equal, NaN never flagged
    gdq, _, _ = _sat(data, n_pix_grow_sat=0)
    assert_array_equal(gdq[0, 0, 0], [0, SAT, 0])


def test_saturation_ad_floor_not_grown_and_not_carried():
    data, _, _ = _ramp(1, 3, 3, 3, 100.0)
    data[0, 1, 1, 1] = 0.0
    data[0, 2, 1, 1] = -5.0
    gdq, _, _ = _sat(data, n_pix_grow_sat=1)
    assert_array_equal(gdq[0, :, 1, 1], [0, ADF | DNU, ADF | DNU])
    gdq[0, :, 1, 1] = 0
    assert not gdq.any()


def test_saturation_growth_square_clipped():
    data, _, _ = _ramp(1, 2, 5, 6, 100.0)
    data[0, 1, 0, 0] = 2000.0  # corner pixel in group 1
    gdq, _, _ = _sat(data, n_pix_grow_sat=2)
    expected = np.zeros((5, 6), dtype=np.uint8)
    expected[0:3, 0:3] = SAT
    assert_array_equal(gdq[0, 1], expected)
    assert not gdq[0, 0].any()


def test_saturation_growth_of_input_sat_bits():
    # SATURATED bits already in GROUPDQ are grown too (stcal grows the whole plane)
    data, gdq, pdq = _ramp(1, 1, 3, 3, 100.0)
    gdq[0, 0, 1, 1] = SAT
    st = np.full((3, 3), 1000.0, dtype=np.float32)
    out, _, _ = saturation.flag_saturation(data, gdq, pdq, st, pdq, n_pix_grow_sat=1)
    assert (out[0, 0] == SAT).all()


def test_saturation_nan_and_no_sat_check_thresholds():
    data, _, _ = _ramp(1, 2, 1, 3, 65535.0)  # the A/D maximum
    sdq = np.array([[NSC, 0, 0]], dtype=np.uint32)
    _, gdq, pdq = _ramp(1, 2, 1, 3)
    st = np.array([[100.0, np.nan, 100.0]], dtype=np.float32)
    st_copy = st.copy()
    gdq, pdq, _ = saturation.flag_saturation(data, gdq, pdq, st, sdq, n_pix_grow_sat=0)
    # unchecked pixels get threshold 65536, above any A/D value
    assert_array_equal(gdq[0, :, 0, 0], [0, 0])
    assert_array_equal(gdq[0, :, 0, 1], [0, 0])
    assert_array_equal(gdq[0, :, 0, 2], [SAT, SAT])
    assert_array_equal(pdq, [[NSC, NSC, 0]])
    assert_array_equal(st, st_copy)


def test_saturation_pixeldq_gets_all_reference_bits():
    data, _, _ = _ramp(1, 1, 1, 2, 10.0)
    _, gdq, pdq = _ramp(1, 1, 1, 2)
    pdq[0, 0] = DNU
    sdq = np.array([[dq.PIXEL["HOT"], dq.PIXEL["DEAD"]]], dtype=np.uint32)
    st = np.full((1, 2), 100.0, dtype=np.float32)
    _, new_pdq, _ = saturation.flag_saturation(data, gdq, pdq, st, sdq)
    assert_array_equal(new_pdq, [[DNU | dq.PIXEL["HOT"], dq.PIXEL["DEAD"]]])


def test_saturation_frame_averaged_backward_pass():
    # NFRAMES=4: group 1 averages frames 5..8, dilution 6.5/8 = 0.8125 -> 812.5 DN
    data, _, _ = _ramp(1, 3, 3, 3, 100.0)
    data[0, :, 1, 1] = [500.0, 900.0, 1200.0]
    gdq, _, _ = _sat(data, nframes=4, n_pix_grow_sat=1)
    assert gdq[0, 1, 1, 1] == DNU  # partial saturation: DO_NOT_USE, not SATURATED
    assert (gdq[0, 1] == DNU).all()  # and grown
    assert (gdq[0, 2] == SAT).all()
    assert not gdq[0, 0].any()  # 500 < 1000 * 2.5/4
    # without the read pattern, nothing but SATURATED
    gdq, _, _ = _sat(data, nframes=4, n_pix_grow_sat=1, use_readpatt=False)
    assert not gdq[0, 1].any()
    # NFRAMES=1: dilution is 1, no backward pass
    gdq, _, _ = _sat(data, nframes=1, n_pix_grow_sat=1)
    assert not gdq[0, 1].any()


def test_saturation_backward_compare_is_float64():
    # NFRAMES=3, group 2 averages frames 7..9: dilution 8/9. float32(T) * float32(8/9)
    # rounds to exactly this data value, but stcal compares in float64, where the data is
    # below the diluted threshold: no DO_NOT_USE.
    thresh = np.float32("24744.387")
    value = np.float32("21995.01")
    assert thresh * np.float32(8.0 / 9.0) == value
    assert np.float64(value) < np.float64(thresh) * (8.0 / 9.0)
    data, _, _ = _ramp(1, 4, 1, 1)
    data[0, :, 0, 0] = [100.0, 200.0, value, 30000.0]
    gdq, _, _ = _sat(data, thresh=thresh, nframes=3, n_pix_grow_sat=0)
    assert_array_equal(gdq[0, :, 0, 0], [0, 0, 0, SAT])


def test_saturation_backward_pass_skips_dnu_groups():
    data, _, _ = _ramp(1, 3, 1, 1, 100.0)
    data[0, :, 0, 0] = [500.0, 900.0, 1200.0]
    _, gdq, pdq = _ramp(1, 3, 1, 1)
    gdq[0, 1, 0, 0] = dq.JUMP_DET
    st = np.full((1, 1), 1000.0, dtype=np.float32)
    out, _, _ = saturation.flag_saturation(data, gdq, pdq, st, pdq, nframes=4, n_pix_grow_sat=0)
    assert out[0, 1, 0, 0] == dq.JUMP_DET | DNU


def test_saturation_group2_test():
    # nframes=4, bias=50: group 0 predicts (100-50)/2.5*12+50 = 290 < 1000 by group 2;
    # group 1 jumped by 600 > (1000-100)/4 = 225 but 700 < 812.5 (no backward flag);
    # group 2 saturates. -> group 1 DO_NOT_USE, not grown.
    data, _, _ = _ramp(1, 3, 3, 3, 100.0)
    data[0, :, 1, 1] = [100.0, 700.0, 1100.0]
    bias = np.full((3, 3), 50.0, dtype=np.float32)
    gdq, _, _ = _sat(data, nframes=4, n_pix_grow_sat=0, bias=bias)
    assert_array_equal(gdq[0, :, 1, 1], [0, DNU, SAT])
    gdq[0, :, 1, 1] = 0
    assert not gdq.any()
    bias[1, 1] = np.nan  # NaN bias: test cannot pass
    gdq, _, _ = _sat(data, nframes=4, n_pix_grow_sat=0, bias=bias)
    assert_array_equal(gdq[0, :, 1, 1], [0, 0, SAT])


def test_saturation_zeroframe():
    data, _, _ = _ramp(2, 2, 3, 4, 100.0)
    zf = np.full((2, 3, 4), 50.0, dtype=np.float32)
    zf[0, 0, 0] = 1000.0  # saturated: zeroed with its grown neighbours
    zf[1, 2, 3] = -1.0  # A/D floor: zeroed alone
    zf[1, 0, 0] = np.nan  # NaN stays
    _, _, new_zf = _sat(data, zeroframe=zf, n_pix_grow_sat=1)
    expected = np.full((2, 3, 4), 50.0, dtype=np.float32)
    expected[0, 0:2, 0:2] = 0.0
    expected[1, 2, 3] = 0.0
    expected[1, 0, 0] = np.nan
    assert_array_equal(new_zf, expected)
    assert zf[0, 0, 0] == 1000.0


# ---------------------------------------------------------------------------------------
# superbias


def test_superbias_catalogue():
    data, _, pdq = _ramp(1, 2, 1, 3, 100.0)
    bias = np.array([[10.0, np.nan, -5.0]], dtype=np.float32)
    bdq = np.array([[0, dq.PIXEL["UNRELIABLE_BIAS"], 0]], dtype=np.uint32)
    zf = np.array([[[0.0, 20.0, -0.0]]], dtype=np.float32)
    out, new_pdq, new_zf = superbias.subtract_superbias(data, pdq, bias, bdq, zf)
    assert_array_equal(out[0, :, 0], [[90.0, 100.0, 105.0]] * 2)
    assert_array_equal(new_pdq, bdq)
    _assert_bits_equal(new_zf, np.array([[[0.0, 20.0, 0.0]]], dtype=np.float32))


# ---------------------------------------------------------------------------------------
# linearity


def test_linearity_coefficient_rules():
    # pixel 0: good quadratic; 1: NO_LIN_CORR in ref DQ; 2: NaN coefficient; 3: zero linear
    coeffs = np.zeros((3, 1, 4), dtype=np.float32)
    coeffs[:, 0, 0] = [1.0, 2.0, 0.5]
    coeffs[:, 0, 1] = [1.0, 2.0, 0.5]
    coeffs[:, 0, 2] = [1.0, np.nan, 0.5]
    coeffs[:, 0, 3] = [1.0, 0.0, 0.5]
    lin_dq = np.array([[0, NLC, 0, 0]], dtype=np.uint32)
    data, gdq, pdq = _ramp(1, 2, 1, 4, 4.0)
    gdq[0, 1, 0, 0] = SAT
    out, new_pdq, _ = linearity.correct_linearity(data, gdq, pdq, coeffs, lin_dq)
    assert_array_equal(out[0, :, 0, 0], [1.0 + 8.0 + 8.0, 4.0])  # SAT group untouched
    assert_array_equal(out[0, :, 0, 1:], [[4.0, 4.0, 4.0]] * 2)
    assert_array_equal(new_pdq, [[0, NLC, NLC, NLC]])


def test_linearity_horner_order_float32():
    # Horner in float32, stcal's order, differs from a float64 evaluation rounded once
    rng = np.random.default_rng(5)
    coeffs = rng.normal(size=(5, 4, 4)).astype(np.float32) * np.float32(1e-3)
    x = rng.uniform(0, 4e4, size=(1, 1, 4, 4)).astype(np.float32)
    _, gdq, pdq = _ramp(1, 1, 4, 4)
    out, _, _ = linearity.correct_linearity(x, gdq, pdq, coeffs, pdq)
    r = coeffs[4] * x[0, 0]
    for j in (3, 2, 1):
        r = (r + coeffs[j]) * x[0, 0]
    r = r + coeffs[0]
    _assert_bits_equal(out[0, 0], r)


def test_linearity_zeroframe_keeps_zero():
    coeffs = np.zeros((2, 1, 2), dtype=np.float32)
    coeffs[0] = 1.0
    coeffs[1] = 2.0
    data, gdq, pdq = _ramp(1, 1, 1, 2, 3.0)
    zf = np.array([[[0.0, 3.0]]], dtype=np.float32)
    _, _, new_zf = linearity.correct_linearity(data, gdq, pdq, coeffs, pdq, zeroframe=zf)
    assert_array_equal(new_zf, [[[0.0, 7.0]]])


def test_linearity_read_level_identity_inverse():
    # With a linear forward polynomial the read-level path equals the group-level one
    # up to float64 rounding: averaging reads of a straight line is exact.
    coeffs = np.zeros((2, 2, 2), dtype=np.float32)
    coeffs[1] = 1.0
    inv = coeffs.copy()
    data, gdq, pdq = _ramp(1, 4, 2, 2)
    data[0, :] = np.array([10.0, 30.0, 50.0, 70.0], dtype=np.float32)[:, None, None]
    out, _, _ = linearity.correct_linearity(data, gdq, pdq, coeffs, pdq, inv_coeffs=inv, nframes=4)
    assert_array_equal(out, data)


def test_linearity_read_level_needs_two_groups():
    coeffs = np.zeros((2, 1, 1), dtype=np.float32)
    coeffs[1] = 1.0
    data, gdq, pdq = _ramp(1, 1, 1, 1, 5.0)
    with pytest.raises(ValueError, match="ngroups"):
        linearity.correct_linearity(data, gdq, pdq, coeffs, pdq, inv_coeffs=coeffs, nframes=2)


# ---------------------------------------------------------------------------------------
# dark_current


def test_dark_direct_and_dq():
    data, _, pdq = _ramp(2, 2, 1, 2, 100.0)
    dark = np.array([[[1.0, np.nan]], [[2.0, 3.0]], [[9.0, 9.0]]], dtype=np.float32)
    ddq = np.array([[0, dq.PIXEL["HOT"]]], dtype=np.uint32)
    out, new_pdq = dark_current.subtract_dark(
        data, pdq, dark, ddq, nframes=1, groupgap=0, dark_nframes=1, dark_groupgap=0
    )
    assert_array_equal(out[1, :, 0], [[99.0, 100.0], [98.0, 97.0]])
    assert_array_equal(new_pdq, ddq)


def test_dark_frame_averaging():
    # science NFRAMES=2, GROUPGAP=1: group g averages dark frames 3g, 3g+1
    data, _, pdq = _ramp(1, 2, 1, 1, 100.0)
    dark = np.arange(1, 7, dtype=np.float32).reshape(6, 1, 1)
    out, _ = dark_current.subtract_dark(
        data, pdq, dark, pdq, nframes=2, groupgap=1, dark_nframes=1, dark_groupgap=0
    )
    assert_array_equal(out[0, :, 0, 0], [100.0 - 1.5, 100.0 - 4.5])


def test_dark_extrapolation():
    data, _, pdq = _ramp(1, 4, 1, 1, 100.0)
    dark = np.array([1.0, 2.0], dtype=np.float32).reshape(2, 1, 1)
    out, _ = dark_current.subtract_dark(
        data, pdq, dark, pdq, nframes=1, groupgap=0, dark_nframes=1, dark_groupgap=0
    )
    assert_array_equal(out[0, :, 0, 0], [99.0, 98.0, 97.0, 96.0])


def test_dark_skip():
    data, _, pdq = _ramp(1, 2, 1, 1, 100.0)
    dark = np.ones((8, 1, 1), dtype=np.float32)
    kw = dict(nframes=1, groupgap=0, dark_nframes=2, dark_groupgap=0)
    assert dark_current.subtract_dark(data, pdq, dark, pdq, **kw) is None
    kw = dict(nframes=4, groupgap=0, dark_nframes=1, dark_groupgap=1)
    assert dark_current.subtract_dark(data, pdq, dark, pdq, **kw) is None


def test_average_dark_current_priority():
    arr = np.full((2, 3), 0.5, dtype=np.float32)
    f = dark_current.average_dark_current
    assert_array_equal(f((2, 3), 0.25, arr, 1.0), np.full((2, 3), 0.25, np.float32))
    # jwst 3.0 ignores a non-zero AVDRKCUR image unless the ramp has its own of that shape
    assert_array_equal(f((2, 3), None, arr, 1.0), np.zeros((2, 3)))
    assert_array_equal(f((2, 3), None, arr, 1.0, ramp_avg_array=np.ones((2, 3))), arr)
    assert_array_equal(f((2, 3), None, np.zeros((2, 3), np.float32), 1.0), np.ones((2, 3)))
    assert_array_equal(f((2, 3), None, None, None), np.zeros((2, 3)))
    assert_array_equal(f((2, 3), None, np.ones((3, 3), np.float32), 1.0), np.zeros((2, 3)))
    assert f((2, 3), None, None, 0.1).dtype == np.float32


# ---------------------------------------------------------------------------------------
# gain_scale


def test_gain_scale_catalogue():
    sci = np.array([[1.0, np.nan]], dtype=np.float32)
    err = np.array([[0.5, 1.0]], dtype=np.float32)
    vp = np.array([[4.0, 1.0]], dtype=np.float32)
    s, e, p, r = gain_scale.gain_scale(sci, err, vp, None, 2.0)
    assert_array_equal(s, [[2.0, np.nan]])
    assert_array_equal(e, [[1.0, 2.0]])
    assert_array_equal(p, [[16.0, 4.0]])
    assert r is None
    assert s.dtype == e.dtype == p.dtype == np.float32


# ---------------------------------------------------------------------------------------
# inputs are never modified


def _snapshot(args):
    return [None if a is None else (a.dtype, a.tobytes()) for a in args]


def test_inputs_not_modified():
    rng = np.random.default_rng(11)
    nints, ngroups, ny, nx = 2, 4, 6, 7
    data = rng.uniform(-50, 1500, size=(nints, ngroups, ny, nx)).astype(np.float32)
    gdq = rng.integers(0, 4, size=data.shape).astype(np.uint8)
    pdq = rng.integers(0, 4, size=(ny, nx)).astype(np.uint32)
    thresh = rng.uniform(900, 1100, size=(ny, nx)).astype(np.float32)
    thresh[0, 0] = np.nan
    sdq = np.zeros((ny, nx), dtype=np.uint32)
    sdq[1, 1] = NSC
    bias = rng.uniform(0, 50, size=(ny, nx)).astype(np.float32)
    bias[2, 2] = np.nan
    zf = rng.uniform(-50, 1500, size=(nints, ny, nx)).astype(np.float32)
    zf[0, 0, 0] = 0.0
    coeffs = rng.normal(size=(3, ny, nx)).astype(np.float32)
    coeffs[:, 3, 3] = np.nan
    coeffs[1, 4, 4] = 0.0
    lin_dq = np.zeros((ny, nx), dtype=np.uint32)
    lin_dq[0, 1] = NLC
    dark = rng.uniform(0, 5, size=(3, ny, nx)).astype(np.float32)
    dark[0, 0, 0] = np.nan
    arrays = [data, gdq, pdq, thresh, sdq, bias, zf, coeffs, lin_dq, dark]
    before = _snapshot(arrays)

    group_scale.group_scale(data, 5, 4)
    dq_init.dq_init(pdq, gdq, sdq)
    saturation.flag_saturation(data, gdq, pdq, thresh, sdq, bias=bias, zeroframe=zf, nframes=4)
    superbias.subtract_superbias(data, pdq, bias, sdq, zf)
    linearity.correct_linearity(data, gdq, pdq, coeffs, lin_dq, zeroframe=zf)
    linearity.correct_linearity(
        data, gdq, pdq, coeffs, lin_dq, zeroframe=zf, inv_coeffs=coeffs, nframes=2
    )
    dark_current.subtract_dark(
        data, pdq, dark, lin_dq, nframes=2, groupgap=1, dark_nframes=1, dark_groupgap=0
    )
    dark_current.average_dark_current((ny, nx), None, bias, None)
    gain_scale.gain_scale(bias, bias, bias, bias, 1.5)
    assert _snapshot(arrays) == before


# ---------------------------------------------------------------------------------------
# oracle: random arrays against jwst / stcal

# (nframes, groupgap, ngroups): NIRISS/NIRSpec-like NFRAMES=1, NIRCam-like 2/4/5 with gaps
PATTERNS = [(1, 0, 5), (2, 0, 4), (4, 1, 5), (5, 0, 3), (8, 12, 4), (4, 0, 2)]


def _subarray_meta(model, ny, nx):
    model.meta.instrument.name = "NIRCAM"
    model.meta.subarray.xstart = 1
    model.meta.subarray.ystart = 1
    model.meta.subarray.xsize = nx
    model.meta.subarray.ysize = ny
    return model


def _ramp_model(data, gdq, pdq, nframes, groupgap, zeroframe=None):
    from stdatamodels.jwst import datamodels

    nints, ngroups, ny, nx = data.shape
    m = datamodels.RampModel(data=data.copy(), groupdq=gdq.copy(), pixeldq=pdq.copy())
    m.meta.exposure.nframes = nframes
    m.meta.exposure.ngroups = ngroups
    m.meta.exposure.groupgap = groupgap
    m.meta.exposure.zero_frame = zeroframe is not None
    if zeroframe is not None:
        m.zeroframe = zeroframe.copy()
    return _subarray_meta(m, ny, nx)


def _random_ramps(rng, nints, ngroups, ny, nx, nframes, thresh_level=10000.0):
    """Raw-DN ramps with a bias, a spread of rates, jumps, floors and NaNs."""
    frames = np.arange(ngroups) * nframes + (nframes + 1) / 2.0
    bias = rng.uniform(8000, 12000, size=(ny, nx))
    rate = rng.exponential(thresh_level / 25.0 / nframes, size=(nints, 1, ny, nx))
    data = bias + rate * frames[None, :, None, None]
    jump = rng.random((nints, ngroups, ny, nx)) < 0.08
    data += np.cumsum(jump * rng.uniform(1000, 40000, size=jump.shape), axis=1)
    data += rng.normal(0, 10, size=data.shape)
    data[rng.random(data.shape) < 0.02] = 0.0
    data[rng.random(data.shape) < 0.01] = -3.0
    data[rng.random(data.shape) < 0.005] = np.nan
    return data.astype(np.float32), bias.astype(np.float32)


@pytest.mark.jwst
@pytest.mark.parametrize("use_readpatt", [True, False])
@pytest.mark.parametrize("n_grow", [0, 1, 2])
@pytest.mark.parametrize(("nframes", "groupgap", "ngroups"), PATTERNS)
def test_saturation_vs_jwst(nframes, groupgap, ngroups, n_grow, use_readpatt):
    pytest.importorskip("jwst")
    from jwst.saturation.saturation import flag_saturation
    from stdatamodels.jwst import datamodels

    rng = np.random.default_rng(1000 * nframes + 10 * ngroups + n_grow)
    nints, ny, nx = 2, 12, 11
    data, bias = _random_ramps(rng, nints, ngroups, ny, nx, nframes)
    bias[rng.random(bias.shape) < 0.05] = np.nan
    gdq = np.zeros(data.shape, dtype=np.uint8)
    gdq[rng.random(data.shape) < 0.05] = DNU
    gdq[rng.random(data.shape) < 0.01] = SAT
    pdq = rng.choice(np.array([0, DNU, dq.PIXEL["HOT"]], dtype=np.uint32), size=(ny, nx))
    thresh = rng.uniform(40000, 60000, size=(ny, nx)).astype(np.float32)
    thresh[rng.random(thresh.shape) < 0.03] = np.nan
    sdq = np.zeros((ny, nx), dtype=np.uint32)
    sdq[rng.random(sdq.shape) < 0.05] = NSC
    sdq[rng.random(sdq.shape) < 0.05] |= dq.PIXEL["DEAD"]
    zf = (data[:, 0] - rng.uniform(0, 100, size=(nints, ny, nx))).astype(np.float32)
    zf[rng.random(zf.shape) < 0.05] = 0.0

    model = _ramp_model(data, gdq, pdq, nframes, groupgap, zeroframe=zf)
    ref = _subarray_meta(datamodels.SaturationModel(data=thresh.copy(), dq=sdq.copy()), ny, nx)
    bias_model = _subarray_meta(datamodels.SuperBiasModel(data=bias.copy()), ny, nx)
    expected = flag_saturation(model, ref, n_grow, use_readpatt, bias_model=bias_model)

    gdq_out, pdq_out, zf_out = saturation.flag_saturation(
        data,
        gdq,
        pdq,
        thresh,
        sdq,
        bias=bias,
        zeroframe=zf,
        nframes=nframes,
        n_pix_grow_sat=n_grow,
        use_readpatt=use_readpatt,
    )
    assert_array_equal(gdq_out, expected.groupdq)
    assert gdq_out.dtype == expected.groupdq.dtype
    assert_array_equal(pdq_out, expected.pixeldq)
    _assert_bits_equal(zf_out, expected.zeroframe)
    # the test exercised what it claims to
    assert (gdq_out & SAT).any() and (gdq_out & ADF).any()


@pytest.mark.jwst
def test_saturation_vs_stcal_backward_and_group2_hit():
    """Dense partial-saturation cases so the backward pass and group-2 test really fire."""
    stcal_sat = pytest.importorskip("stcal.saturation.saturation")
    from stdatamodels.jwst.datamodels import dqflags

    rng = np.random.default_rng(7)
    nints, ngroups, ny, nx, nframes = 2, 5, 16, 16, 4
    thresh = rng.uniform(900, 1100, size=(ny, nx)).astype(np.float32)
    bias = rng.uniform(0, 100, size=(ny, nx)).astype(np.float32)
    # values near thresh * dilution, and big jumps into saturation at group 2
    data = rng.uniform(300, 1300, size=(nints, ngroups, ny, nx)).astype(np.float32)
    data = np.sort(data, axis=1)
    # left half: a low first group, so a jump to saturation by group 2 meets the group-2 test
    data[:, 0, :, : nx // 2] = rng.uniform(50, 200, size=(nints, ny, nx // 2))
    gdq = np.zeros(data.shape, dtype=np.uint8)
    pdq = np.zeros((ny, nx), dtype=np.uint32)
    sdq = np.zeros((ny, nx), dtype=np.uint32)
    pattern = saturation.read_pattern(ngroups, nframes)
    exp_gdq, exp_pdq, _ = stcal_sat.flag_saturated_pixels(
        data.copy(),
        gdq.copy(),
        pdq.copy(),
        thresh.copy(),
        sdq.copy(),
        65535.0,
        dqflags.pixel,
        n_pix_grow_sat=0,
        read_pattern=pattern,
        bias=bias.copy(),
    )
    out, out_pdq, _ = saturation.flag_saturation(
        data, gdq, pdq, thresh, sdq, bias=bias, nframes=nframes, n_pix_grow_sat=0
    )
    assert_array_equal(out, exp_gdq)
    assert_array_equal(out_pdq, exp_pdq)
    partial = ((out & DNU) != 0) & ((out & SAT) == 0)
    assert partial[:, 0].any() and partial[:, 1].any() and partial[:, 2:].any()
    # group-1 DO_NOT_USE below the diluted threshold can only come from the group-2 test
    below = data[:, 1].astype(np.float64) < thresh * (6.5 / 8.0)
    assert (partial[:, 1] & below).any()


@pytest.mark.jwst
@pytest.mark.parametrize("with_zeroframe", [True, False])
def test_superbias_vs_jwst(with_zeroframe):
    pytest.importorskip("jwst")
    from jwst.superbias import bias_sub
    from stdatamodels.jwst import datamodels

    rng = np.random.default_rng(3)
    nints, ngroups, ny, nx = 2, 3, 9, 10
    data = rng.uniform(0, 60000, size=(nints, ngroups, ny, nx)).astype(np.float32)
    data[0, 0, 0, 0] = np.nan
    gdq = np.zeros(data.shape, dtype=np.uint8)
    pdq = rng.integers(0, 3, size=(ny, nx)).astype(np.uint32)
    bias = rng.uniform(5000, 20000, size=(ny, nx)).astype(np.float32)
    bias[rng.random(bias.shape) < 0.1] = np.nan
    bdq = rng.choice(np.array([0, dq.PIXEL["UNRELIABLE_BIAS"]], np.uint32), size=(ny, nx))
    zf = None
    if with_zeroframe:
        zf = rng.uniform(0, 60000, size=(nints, ny, nx)).astype(np.float32)
        zf[rng.random(zf.shape) < 0.1] = 0.0
        zf[0, 1, 1] = -0.0
    model = _ramp_model(data, gdq, pdq, 1, 0, zeroframe=zf)
    bias_model = _subarray_meta(datamodels.SuperBiasModel(data=bias.copy(), dq=bdq.copy()), ny, nx)
    expected = bias_sub.do_correction(model, bias_model)
    out, out_pdq, out_zf = superbias.subtract_superbias(data, pdq, bias, bdq, zf)
    _assert_bits_equal(out, expected.data)
    assert_array_equal(out_pdq, expected.pixeldq)
    if with_zeroframe:
        _assert_bits_equal(out_zf, expected.zeroframe)
    else:
        assert out_zf is None


@pytest.mark.jwst
@pytest.mark.parametrize("with_inverse", [True, False])
@pytest.mark.parametrize(("nframes", "groupgap", "ngroups"), PATTERNS)
def test_linearity_vs_jwst(nframes, groupgap, ngroups, with_inverse):
    pytest.importorskip("jwst")
    from jwst.linearity.linearity import do_correction
    from stdatamodels.jwst import datamodels

    rng = np.random.default_rng(100 * nframes + ngroups + with_inverse)
    nints, ny, nx, ncoeffs = 2, 70, 9, 5  # 70 rows: two of stcal's 64-row tiles
    data, _ = _random_ramps(rng, nints, ngroups, ny, nx, nframes)
    data -= np.float32(10000.0)  # after superbias
    gdq = np.zeros(data.shape, dtype=np.uint8)
    gdq[rng.random(data.shape) < 0.05] = DNU
    sat_start = rng.integers(0, ngroups + 3, size=(nints, 1, ny, nx))
    gdq[np.arange(ngroups)[None, :, None, None] >= sat_start] |= SAT
    pdq = rng.integers(0, 2, size=(ny, nx)).astype(np.uint32)
    # realistic NIR coefficients: c1 ~ 1, small higher-order terms
    scale = np.array([1.0, 1.0, 1e-6, 1e-11, 1e-16])[:, None, None]
    coeffs = (
        rng.normal([0.0, 1.0, 2.0, -1.0, 0.5], 0.1, size=(ny, nx, ncoeffs)).T.transpose(0, 2, 1)
        * scale
    ).astype(np.float32)
    inv = (
        rng.normal([0.0, 1.0, -2.0, 1.0, -0.5], 0.1, size=(ny, nx, ncoeffs)).T.transpose(0, 2, 1)
        * scale
    ).astype(np.float32)
    coeffs[:, 0, 0] = np.nan
    coeffs[2, 1, 1] = np.nan
    coeffs[1, 2, 2] = 0.0
    inv[3, 3, 3] = np.nan
    inv[1, 4, 4] = 0.0
    lin_dq = np.zeros((ny, nx), dtype=np.uint32)
    lin_dq[5, 5] = NLC
    lin_dq[6, 6] = dq.PIXEL["NONLINEAR"]
    zf = (data[:, 0] - np.float32(5.0)).astype(np.float32)
    zf[rng.random(zf.shape) < 0.1] = 0.0

    model = _ramp_model(data, gdq, pdq, nframes, groupgap, zeroframe=zf)
    kw = dict(coeffs=coeffs.copy(), dq=lin_dq.copy())
    if with_inverse:
        kw["inv_coeffs"] = inv.copy()
    lin_model = _subarray_meta(datamodels.LinearityModel(**kw), ny, nx)
    expected = do_correction(model, lin_model)

    out, out_pdq, out_zf = linearity.correct_linearity(
        data,
        gdq,
        pdq,
        coeffs,
        lin_dq,
        zeroframe=zf,
        inv_coeffs=inv if with_inverse else None,
        nframes=nframes,
    )
    _assert_bits_equal(out, expected.data)
    assert_array_equal(out_pdq, expected.pixeldq)
    _assert_bits_equal(out_zf, expected.zeroframe)
    changed = (out != data) & ~np.isnan(out)
    assert changed.any()


def _stcal_dark(data, gdq, pdq, dark, ddq, nframes, groupgap, dnf, dgg):
    from stcal.dark_current import dark_class, dark_sub

    sci = dark_class.ScienceData()
    sci.data, sci.groupdq, sci.pixeldq = data.copy(), gdq.copy(), pdq.copy()
    sci.exp_nframes, sci.exp_groupgap, sci.exp_intstart = nframes, groupgap, 1
    drk = dark_class.DarkData()
    drk.data, drk.groupdq = dark.copy(), ddq.copy()
    drk.exp_nframes, drk.exp_groupgap, drk.exp_ngroups = dnf, dgg, dark.shape[0]
    out, _ = dark_sub.do_correction_data(sci, drk)
    return out


@pytest.mark.jwst
@pytest.mark.parametrize(
    ("nframes", "groupgap", "ngroups", "dnf", "dgg", "ngroups_dark"),
    [
        (1, 0, 5, 1, 0, 8),  # direct
        (1, 0, 6, 1, 0, 4),  # direct after extrapolation (float64 dark)
        (4, 1, 3, 1, 0, 20),  # frame averaging
        (4, 1, 3, 1, 0, 7),  # averaging after extrapolation
        (5, 0, 3, 1, 0, 15),
        (2, 0, 4, 2, 0, 10),  # NFRAMES equal to the dark's: direct
        (8, 12, 2, 1, 0, 40),  # averaging with a long gap
        (1, 2, 3, 1, 0, 9),  # NFRAMES 1, GROUPGAP differs: frame copies
        (1, 0, 3, 2, 0, 10),  # dark NFRAMES larger: skipped
        (2, 0, 3, 1, 1, 10),  # dark GROUPGAP larger: skipped
    ],
)
def test_dark_vs_stcal(nframes, groupgap, ngroups, dnf, dgg, ngroups_dark):
    pytest.importorskip("stcal")
    rng = np.random.default_rng(ngroups_dark * 7 + nframes)
    nints, ny, nx = 2, 7, 9
    data = rng.uniform(-100, 40000, size=(nints, ngroups, ny, nx)).astype(np.float32)
    # rows 0-3 at the dark's own level, so float32 rounding of the dark would show
    data[:, :, :4] = rng.uniform(-30, 30, size=(nints, ngroups, 4, nx))
    data[0, 0, 0, 0] = np.nan
    gdq = np.zeros(data.shape, dtype=np.uint8)
    pdq = rng.integers(0, 3, size=(ny, nx)).astype(np.uint32)
    dark = np.cumsum(rng.uniform(0, 3.3, size=(ngroups_dark, ny, nx)), axis=0)
    dark = dark.astype(np.float32)
    dark[rng.random(dark.shape) < 0.03] = np.nan
    ddq = rng.choice(np.array([0, dq.PIXEL["HOT"], dq.PIXEL["WARM"]], np.uint32), size=(ny, nx))

    expected = _stcal_dark(data, gdq, pdq, dark, ddq, nframes, groupgap, dnf, dgg)
    result = dark_current.subtract_dark(
        data,
        pdq,
        dark,
        ddq,
        nframes=nframes,
        groupgap=groupgap,
        dark_nframes=dnf,
        dark_groupgap=dgg,
    )
    if expected.cal_step == "SKIPPED":
        assert result is None
        return
    out, out_pdq = result
    _assert_bits_equal(out, expected.data)
    assert_array_equal(out_pdq, expected.pixeldq)


@pytest.mark.jwst
@pytest.mark.parametrize(
    ("param", "array", "keyword"),
    [
        (0.3, "ones", 1.0),
        (None, "ones", 1.0),
        (None, "zeros", 0.7),
        (None, None, 0.7),
        (None, None, None),
        (None, "wrong_shape", 0.7),
    ],
)
@pytest.mark.parametrize("ramp_own", [False, True])
def test_average_dark_current_vs_jwst(param, array, keyword, ramp_own):
    pytest.importorskip("jwst")
    from jwst.dark_current.dark_current_step import DarkCurrentStep
    from stdatamodels.jwst import datamodels

    ny, nx = 4, 5
    arrays = {
        "ones": np.full((ny, nx), 0.0123, np.float32),
        "zeros": np.zeros((ny, nx), np.float32),
        "wrong_shape": np.ones((ny + 1, nx), np.float32),
        None: None,
    }
    data, gdq, pdq = _ramp(1, 2, ny, nx)
    model = _ramp_model(data, gdq, pdq, 1, 0)
    ramp_avg = np.full((ny, nx), 0.5, np.float32) if ramp_own else None
    if ramp_own:
        model.average_dark_current = ramp_avg.copy()
    dark_model = datamodels.DarkModel(data=np.zeros((2, ny, nx), np.float32))
    if arrays[array] is not None:
        dark_model.average_dark_current = arrays[array]
    dark_model.meta.exposure.average_dark_current = keyword
    step = DarkCurrentStep(average_dark_current=param)
    step.set_average_dark_current(model, dark_model)
    expected = model.average_dark_current
    if expected is None:  # jwst leaves the RampModel default: zeros
        expected = np.zeros((ny, nx), np.float32)
    result = dark_current.average_dark_current(
        (ny, nx), param, arrays[array], keyword, ramp_avg_array=ramp_avg
    )
    _assert_bits_equal(result, np.asarray(expected, dtype=np.float32))


@pytest.mark.jwst
@pytest.mark.parametrize(("nframes", "frmdivsr"), [(5, 4), (3, 2), (6, 4), (4, 4)])
def test_group_scale_vs_jwst(nframes, frmdivsr):
    pytest.importorskip("jwst")
    from jwst.group_scale import group_scale as jwst_group_scale

    rng = np.random.default_rng(nframes)
    data = rng.uniform(0, 65535, size=(2, 3, 5, 6)).astype(np.float32)
    gdq = np.zeros(data.shape, np.uint8)
    model = _ramp_model(data, gdq, np.zeros((5, 6), np.uint32), nframes, 0)
    model.meta.exposure.frame_divisor = frmdivsr
    jwst_group_scale.do_correction(model)
    _assert_bits_equal(group_scale.group_scale(data, nframes, frmdivsr), model.data)


@pytest.mark.jwst
@pytest.mark.parametrize(("nframes", "frmdivsr"), [(None, 4), (4, None), (5, None), (4, 4), (5, 4)])
def test_needs_group_scale_vs_jwst_step(nframes, frmdivsr):
    pytest.importorskip("jwst")
    from jwst.group_scale import GroupScaleStep

    data, gdq, pdq = _ramp(1, 2, 3, 3, 7.0)
    model = _ramp_model(data, gdq, pdq, 1, 0)
    model.meta.exposure.nframes = nframes
    model.meta.exposure.frame_divisor = frmdivsr
    result = GroupScaleStep().run(model)
    ran = result.meta.cal_step.group_scale == "COMPLETE"
    assert group_scale.needs_group_scale(nframes, frmdivsr) is ran


@pytest.mark.jwst
def test_dq_init_vs_jwst():
    pytest.importorskip("jwst")
    from jwst.dq_init.dq_initialization import do_dqinit
    from stdatamodels.jwst import datamodels

    rng = np.random.default_rng(9)
    nints, ngroups, ny, nx = 2, 3, 6, 5
    data = np.zeros((nints, ngroups, ny, nx), np.float32)
    gdq = rng.choice(np.array([0, SAT, dq.JUMP_DET], np.uint8), size=data.shape)
    pdq = rng.integers(0, 2**31, size=(ny, nx)).astype(np.uint32)
    mask = rng.integers(0, 2**32, size=(ny, nx), dtype=np.uint64).astype(np.uint32)
    model = _ramp_model(data, gdq, pdq, 1, 0)
    mask_model = _subarray_meta(datamodels.MaskModel(dq=mask.copy()), ny, nx)
    expected = do_dqinit(model, mask_model)
    new_pdq, new_gdq = dq_init.dq_init(pdq, gdq, mask)
    _assert_bits_equal(new_pdq, expected.pixeldq)
    _assert_bits_equal(new_gdq, expected.groupdq)


@pytest.mark.jwst
@pytest.mark.parametrize("factor", [2.0, 1.37, 0.7123456789])
def test_gain_scale_vs_jwst(factor):
    pytest.importorskip("jwst")
    from jwst.gain_scale.gain_scale import do_correction
    from stdatamodels.jwst import datamodels

    rng = np.random.default_rng(4)
    arrays = [rng.uniform(-10, 1000, size=(3, 4, 5)).astype(np.float32) for _ in range(4)]
    arrays[0][0, 0, 0] = np.nan
    model = datamodels.CubeModel(
        data=arrays[0].copy(),
        err=arrays[1].copy(),
        var_poisson=arrays[2].copy(),
        var_rnoise=arrays[3].copy(),
    )
    expected = do_correction(model, factor)
    out = gain_scale.gain_scale(*arrays, factor)
    for got, want in zip(
        out, (expected.data, expected.err, expected.var_poisson, expected.var_rnoise), strict=True
    ):
        _assert_bits_equal(got, want)
