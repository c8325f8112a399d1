"""refpix: hand-built cases with worked-out answers, and random ramps against jwst 3.0.

Oracle tests (marked ``jwst``) run ``jwst.refpix.reference_pixels.correct_model`` (what
``RefPixStep`` calls, without CRDS) on an in-memory RampModel and demand the same status and
bit-identical float32 data and ZEROFRAME.
"""

import logging
import warnings

import numpy as np
import pytest
from numpy.testing import assert_array_equal

from tsogpu import dq
from tsogpu.algorithms import refpix
from tsogpu.config import Refpix
from tsogpu.errors import ConfigError
from tsogpu.segment import Exposure

DNU = dq.DO_NOT_USE
REF = dq.REFERENCE_PIXEL

logging.getLogger("jwst").setLevel(logging.ERROR)


def _exposure(instrument, detector, subarray, substrt, subsize, axes, noutputs, zero_frame=False):
    return Exposure(
        instrument=instrument,
        detector=detector,
        exp_type="TEST",
        readpatt="NRSRAPID",
        nints=2,
        ngroups=3,
        nframes=1,
        groupgap=0,
        tframe=1.0,
        tgroup=1.0,
        subarray=subarray,
        substrt1=substrt[0],
        substrt2=substrt[1],
        subsize1=subsize[0],
        subsize2=subsize[1],
        fastaxis=axes[0],
        slowaxis=axes[1],
        noutputs=noutputs,
        zero_frame=zero_frame,
    )


def _mask_pixeldq(exp):
    """REFERENCE_PIXEL where a mask reference puts it: the 4-pixel border of the full frame."""
    full = np.zeros((2048, 2048), dtype=np.uint32)
    full[:4, :] = full[-4:, :] = full[:, :4] = full[:, -4:] = REF
    r0, c0 = exp.substrt2 - 1, exp.substrt1 - 1
    return full[r0 : r0 + exp.subsize2, c0 : c0 + exp.subsize1].copy()


def _random_ramp(exp, nints=2, ngroups=3, seed=0):
    """Bias-like ramps with drifting offsets, a few hot outliers, float32."""
    rng = np.random.default_rng(seed)
    ny, nx = exp.subsize2, exp.subsize1
    data = rng.normal(1000.0, 5.0, (nints, ngroups, ny, nx))
    data += rng.normal(0.0, 20.0, (nints, ngroups, 1, 1))  # per-group drift
    data[..., ::2] += 3.0  # column-parity offset (DMS; some frames put it on rows)
    data += np.linspace(0.0, 7.0, ny)[None, None, :, None]  # slow row drift for side pixels
    hot = rng.random(data.shape) < 0.01
    data[hot] += rng.uniform(100.0, 5000.0, hot.sum())
    return data.astype(np.float32)


def _jwst_refpix(data, pixeldq, exp, params, zeroframe=None):
    """Run jwst's refpix (the code RefPixStep runs) on an in-memory RampModel."""
    pytest.importorskip("jwst")
    from jwst.refpix import reference_pixels as rp
    from stdatamodels.jwst import datamodels
    from stdatamodels.validate import ValidationWarning

    # Test subarray names are not in the schema's list; stdatamodels only warns about it.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ValidationWarning)
        model = datamodels.RampModel(
            data=data.copy(), pixeldq=pixeldq.copy(), groupdq=np.zeros(data.shape, np.uint8)
        )
        meta = model.meta
        meta.instrument.name, meta.instrument.detector = exp.instrument, exp.detector
        meta.subarray.name = exp.subarray
        meta.subarray.xstart, meta.subarray.ystart = exp.substrt1, exp.substrt2
        meta.subarray.xsize, meta.subarray.ysize = exp.subsize1, exp.subsize2
        meta.subarray.fastaxis, meta.subarray.slowaxis = exp.fastaxis, exp.slowaxis
        meta.exposure.noutputs = exp.noutputs
        meta.exposure.zero_frame = exp.zero_frame
        if zeroframe is not None:
            model.zeroframe = zeroframe.copy()
    conv = {
        "refpix_algorithm": "median",
        "sirs_kernel_model": None,
        "sigreject": 4.0,
        "gaussmooth": 1.0,
        "halfwidth": 30,
    }
    code = rp.correct_model(
        model,
        params.odd_even_columns,
        params.use_side_ref_pixels,
        params.side_smoothing_length,
        params.side_gain,
        params.odd_even_rows,
        conv,
        params.siglimit,
    )
    status = "COMPLETE" if code == rp.REFPIX_OK else "SKIPPED"  # as RefPixStep maps it
    zf = None if zeroframe is None else np.asarray(model.zeroframe)
    return np.asarray(model.data), zf, status


def _assert_bits_equal(actual, expected):
    """Same dtype, shape and bytes (so -0.0 != 0.0, and NaNs must match in place)."""
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.dtype == expected.dtype and actual.shape == expected.shape
    if actual.tobytes() != expected.tobytes():
        differ = actual.view(np.uint32) != expected.view(np.uint32)
        where = np.argwhere(differ)[:5]
        raise AssertionError(
            f"{differ.sum()} of {actual.size} values differ, first at {where.tolist()}: "
            f"{actual[tuple(where.T)]} vs {expected[tuple(where.T)]}"
        )


def _compare_with_jwst(exp, params, pixeldq=None, data=None, zeroframe=None):
    data = _random_ramp(exp) if data is None else data
    pixeldq = _mask_pixeldq(exp) if pixeldq is None else pixeldq
    expected, expected_zf, expected_status = _jwst_refpix(data, pixeldq, exp, params, zeroframe)
    out, zf, status = refpix.correct_refpix(data, pixeldq, exp, params, zeroframe=zeroframe)
    assert status == expected_status
    _assert_bits_equal(out, expected)
    if zeroframe is not None:
        _assert_bits_equal(zf, expected_zf)
    return out, status


# Exposures used below (SUBSTRT/SUBSIZE as (axis 1, axis 2), axes as (FASTAXIS, SLOWAXIS)).
SOSS_LIKE = _exposure("NIRISS", "NIS", "SUBSTRIP32", (1, 2017), (2048, 32), (-2, -1), 1)
NRS1_SUB2048 = _exposure("NIRSPEC", "NRS1", "SUB2048", (1, 1009), (2048, 32), (2, 1), 1)
NRS2_SUB2048 = _exposure("NIRSPEC", "NRS2", "SUB2048", (1, 1009), (2048, 32), (-2, -1), 1)
NRC_1AMP_CORNER = _exposure("NIRCAM", "NRCBLONG", "SUB64", (2, 1), (64, 64), (-1, 2), 1)
NRS1_SUB32 = _exposure("NIRSPEC", "NRS1", "SUB32", (1101, 901), (32, 32), (2, 1), 1)
NRS2_SUB512 = _exposure("NIRSPEC", "NRS2", "SUB512", (1000, 1300), (512, 32), (-2, -1), 1)
NRC_GRISM64 = _exposure("NIRCAM", "NRCALONG", "SUBGRISM64", (1, 1), (2048, 64), (-1, 2), 4)
NRC_GRISM_TOP = _exposure("NIRCAM", "NRCBLONG", "SUBGRISM32", (1, 2017), (2048, 32), (-1, 2), 4)
NRC_4AMP_PART = _exposure("NIRCAM", "NRCB1", "SUBX", (301, 5), (1500, 40), (1, -2), 4)


# ---------------------------------------------------------------------------------------
# Hand-built cases with the answer worked out


def test_one_output_constant_parity_offsets():
    """Odd/even detector-column offsets are removed exactly; parity is the DETECTOR column.

    FASTAXIS=-2, SLOWAXIS=-1 (NIRISS): detector columns run along DMS rows, reversed, so the
    parity alternates along DMS rows. Full-frame detector column of DMS row r is
    2047 - (substrt2 - 1 + r).
    """
    exp = _exposure("NIRISS", "NIS", "SUBSTRIP8", (1, 2041), (16, 8), (-2, -1), 1)
    ny, nx = 8, 16
    det_col = 2047 - (2040 + np.arange(ny))
    offset = np.where(det_col % 2 == 0, 100.0, 7.0)[:, None]  # even det col -> 100
    data = np.empty((1, 2, ny, nx), dtype=np.float32)
    data[0, 0] = 50.0 + offset
    data[0, 1] = 60.0 + offset + 1.5
    pixeldq = _mask_pixeldq(exp)  # refpix: DMS rows 4..7 (full rows 2044..2047), cols 0..3
    data[0, :, pixeldq != 0] -= 50.0  # reference pixels carry only the offsets
    data[0, 1, pixeldq != 0] -= 10.0
    out, _, status = refpix.correct_refpix(data, pixeldq, exp, Refpix())
    assert status == "COMPLETE"
    expected = np.empty_like(data)
    expected[0, 0] = 50.0
    expected[0, 1] = 60.0
    expected[0, :, pixeldq != 0] = 0.0
    assert_array_equal(out, expected)

    # Without odd/even: one mean of all refpix, (4*8 + 12*4) values.
    out, _, _ = refpix.correct_refpix(data, pixeldq, exp, Refpix(odd_even_columns=False))
    mean0 = np.mean(data[0, 0][pixeldq != 0], dtype=np.float64)
    assert_array_equal(out[0, 0], (data[0, 0] - np.float32(mean0)).astype(np.float32))


def test_one_output_without_reference_pixels_is_unchanged_but_complete():
    exp = _exposure("NIRCAM", "NRCA1", "SUB64P", (1001, 1001), (64, 64), (-1, 2), 1)
    data = _random_ramp(exp, 1, 2)
    out, _, status = refpix.correct_refpix(data, _mask_pixeldq(exp), exp, Refpix())
    assert status == "COMPLETE"
    assert_array_equal(out, data)


def test_nrs_edgeless_subarray_uses_first_and_last_four_dms_columns():
    exp = NRS1_SUB32  # FASTAXIS=2: DMS columns are detector rows, parity along DMS rows
    ny, nx = 32, 32
    data = np.full((1, 1, ny, nx), 10.0, dtype=np.float32)
    data[0, 0, 1::2, :] = 20.0  # odd DMS rows = odd detector columns (col0 = 900, even)
    data[0, 0, :, 4:-4] += 1000.0  # science pixels; the pseudo refpix hold only 10 / 20
    out, _, status = refpix.correct_refpix(data, np.zeros((ny, nx), np.uint32), exp, Refpix())
    assert status == "COMPLETE"
    expected = np.zeros_like(data)
    expected[0, 0, :, 4:-4] = 1000.0
    assert_array_equal(out, expected)
    # The rule is by subarray name only: another name gets no pseudo reference pixels.
    other = _exposure("NIRSPEC", "NRS1", "SUB32X", (1101, 901), (32, 32), (2, 1), 1)
    out, _, status = refpix.correct_refpix(data, np.zeros((ny, nx), np.uint32), other, Refpix())
    assert status == "COMPLETE"
    assert_array_equal(out, data)


def test_four_output_offsets_and_side_signal():
    """Per-amplifier parity offsets from the bottom rows, then a per-row side signal.

    FASTAXIS=1, SLOWAXIS=2: DMS = detector frame; the subarray is detector rows 0..39, all
    columns. Every pixel holds its amplifier/parity offset; the bottom rows hold nothing
    else (all equal: the reference values are the offsets exactly); side columns add
    s(row) = 2 * max(row - 3, 0); science pixels add 500. After the offsets go, the 11-row
    running median of the side columns is s(row) where the window lies in rows 3..39
    (rows 8..34); near row 0 the window is reflected (rows 5..1, 0, 1..5 for row 0) and
    near row 39 rows past the subarray are DO_NOT_USE.
    """
    exp = _exposure("NIRCAM", "NRCB1", "SUBX", (1, 1), (2048, 40), (1, 2), 4)
    ny, nx = 40, 2048
    cols = np.arange(nx)
    offset = np.array([10.0, 20.0, 30.0, 40.0])[cols // 512] + np.where(cols % 2, 1.0, 0.0)
    side_signal = 2.0 * np.maximum(np.arange(ny) - 3, 0)
    data = np.zeros((1, 1, ny, nx), dtype=np.float32)
    data[0, 0] = offset[None, :]
    data[0, 0, 4:, 4:-4] += 500.0
    data[0, 0, :, :4] += side_signal[:, None]
    data[0, 0, :, -4:] += side_signal[:, None]
    out, _, status = refpix.correct_refpix(data, _mask_pixeldq(exp), exp, Refpix())
    assert status == "COMPLETE"

    median = 2.0 * (np.arange(ny) - 3)
    for r in [*range(8), *range(35, ny)]:
        rows = np.abs(np.arange(r - 5, r + 6))
        median[r] = np.median(side_signal[rows[rows < ny]])
    assert median[0] == 0.0 and median[39] == 67.0  # s of rows 5..1,0..5 / rows 34..39
    expected = np.zeros((ny, nx))
    expected[4:, 4:-4] = 500.0
    expected[:, :4] = expected[:, -4:] = side_signal[:, None]
    expected -= median[:, None]
    assert_array_equal(out[0, 0], expected.astype(np.float32))


def test_amplifier_without_reference_values_is_left_alone():
    """An amplifier whose bottom refpix are all DO_NOT_USE is not corrected (no side)."""
    exp = _exposure("NIRCAM", "NRCB1", "SUBX", (1, 1), (2048, 8), (1, 2), 4)
    data = np.full((1, 1, 8, 2048), 5.0, dtype=np.float32)
    data[0, 0, 4:] = 9.0
    pixeldq = _mask_pixeldq(exp)
    pixeldq[:4, 512:1024] |= DNU  # amplifier B has no usable reference pixel
    pixeldq[:4, 1536:2048:2] |= DNU  # amplifier D lacks its even columns
    out, _, _ = refpix.correct_refpix(data, pixeldq, exp, Refpix(use_side_ref_pixels=False))
    assert_array_equal(out[0, 0, 4:, :512], 4.0)
    assert_array_equal(out[0, 0, 4:, 512:1024], 9.0)
    assert_array_equal(out[0, 0, 4:, 1024:1536], 4.0)
    assert_array_equal(out[0, 0, 4:, 1536:], 9.0)


# ---------------------------------------------------------------------------------------
# Skips, errors, input safety


def test_miri_subarray_and_out_of_frame_are_skipped():
    miri = _exposure("MIRI", "MIRIMAGE", "SLITLESSPRISM", (1, 529), (72, 416), (1, 2), 1)
    data = np.ones((1, 2, 416, 72), dtype=np.float32)
    out, zf, status = refpix.correct_refpix(data, np.zeros((416, 72), np.uint32), miri, Refpix())
    assert status == "SKIPPED" and zf is None
    assert_array_equal(out, data)
    assert out is not data

    outside = _exposure("NIRCAM", "NRCA1", "SUBX", (2040, 1), (16, 16), (-1, 2), 1)
    data = np.ones((1, 1, 16, 16), dtype=np.float32)
    out, _, status = refpix.correct_refpix(
        data, _mask_pixeldq(NRC_1AMP_CORNER)[:16, :16], outside, Refpix()
    )
    assert status == "SKIPPED"
    assert_array_equal(out, data)


def test_irs2_is_not_implemented():
    exp = _exposure("NIRSPEC", "NRS1", "FULL", (1, 1), (2048, 3200), (2, 1), 4)
    data = np.zeros((1, 1, 3200, 2048), dtype=np.float32)
    with pytest.raises(NotImplementedError, match="IRS2"):
        refpix.correct_refpix(data, np.zeros((3200, 2048), np.uint32), exp, Refpix())


def test_bad_smoothing_length_is_refused():
    data = np.zeros((1, 1, 64, 2048), dtype=np.float32)
    with pytest.raises(ConfigError, match="side_smoothing_length"):
        refpix.correct_refpix(
            data, _mask_pixeldq(NRC_GRISM64), NRC_GRISM64, Refpix(side_smoothing_length=1)
        )


@pytest.mark.parametrize("exp", [SOSS_LIKE, NRC_GRISM64], ids=["1-output", "4-output"])
def test_inputs_are_not_modified(exp):
    zexp = _exposure(
        exp.instrument,
        exp.detector,
        exp.subarray,
        (exp.substrt1, exp.substrt2),
        (exp.subsize1, exp.subsize2),
        (exp.fastaxis, exp.slowaxis),
        exp.noutputs,
        zero_frame=True,
    )
    data = _random_ramp(exp, 1, 2)
    pixeldq = _mask_pixeldq(exp)
    zeroframe = data[:, 0] - 1.0
    copies = [a.copy() for a in (data, pixeldq, zeroframe)]
    out, zf, _ = refpix.correct_refpix(data, pixeldq, zexp, Refpix(), zeroframe=zeroframe)
    for before, after in zip(copies, (data, pixeldq, zeroframe), strict=True):
        assert_array_equal(before, after)
    assert out.dtype == np.float32 and zf.dtype == np.float32
    assert not np.array_equal(out, data)


def test_zeroframe_untouched_without_zero_frame_keyword():
    data = _random_ramp(SOSS_LIKE, 1, 1)
    zeroframe = data[:, 0].copy()
    _, zf, _ = refpix.correct_refpix(
        data, _mask_pixeldq(SOSS_LIKE), SOSS_LIKE, Refpix(), zeroframe=zeroframe
    )
    assert_array_equal(zf, zeroframe)


# ---------------------------------------------------------------------------------------
# Building blocks against their NumPy/SciPy originals


def test_clipped_mean_equals_scipy_sigmaclip():
    stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(3)
    for n in (3, 7, 8, 100, 129, 1000, 4096):
        for dtype in (np.float32, np.float64):
            values = rng.normal(1000.0, 3.0, n)
            values[rng.random(n) < 0.05] += 500.0
            values = values.astype(dtype)
            clipped, _, _ = stats.sigmaclip(values, 3.0, 3.0)
            expected = clipped.mean()
            got = refpix.clipped_mean(values, 3.0)
            assert got.dtype == expected.dtype
            assert got.tobytes() == expected.tobytes(), (n, dtype)
    # all equal: float64 mean (jwst skips scipy there); empty: None; NaN: NaN
    same = np.full(5, 0.1, dtype=np.float32)
    assert refpix.clipped_mean(same, 3.0).dtype == np.float64
    assert refpix.clipped_mean(same, 3.0) == np.float64(np.float32(0.1))
    assert refpix.clipped_mean(same[:0], 3.0) is None
    assert np.isnan(refpix.clipped_mean(np.array([1, np.nan], np.float32), 3.0))


def _pairwise_sum(x):
    """NumPy's float32 pairwise summation as the module docstring states it for kernels."""
    n = len(x)
    if n < 8:
        total = np.float32(0.0)
        for value in x:
            total = np.float32(total + value)
        return total
    if n <= 128:
        acc = [np.float32(v) for v in x[:8]]
        i = 8
        while i < n - n % 8:
            for j in range(8):
                acc[j] = np.float32(acc[j] + x[i + j])
            i += 8
        total = np.float32(
            np.float32(np.float32(acc[0] + acc[1]) + np.float32(acc[2] + acc[3]))
            + np.float32(np.float32(acc[4] + acc[5]) + np.float32(acc[6] + acc[7]))
        )
        for value in x[i:]:
            total = np.float32(total + value)
        return total
    half = n // 2 - (n // 2) % 8
    return np.float32(_pairwise_sum(x[:half]) + _pairwise_sum(x[half:]))


def test_documented_summation_order_matches_numpy():
    rng = np.random.default_rng(4)
    for n in (1, 5, 8, 13, 64, 127, 128, 129, 300, 1024, 1031):
        x = (rng.normal(0.0, 1e3, n) + 1e5).astype(np.float32)
        assert _pairwise_sum(x) == np.add.reduce(x), n


@pytest.mark.parametrize("length", [11, 10, 3])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_running_median_equals_jwst_loop(length, dtype):
    """Vectorised side median against jwst's median_filter algorithm (np.median per row)."""
    rng = np.random.default_rng(5)
    nrows = 2048
    plane = rng.normal(0.0, 10.0, (nrows, 8)).astype(dtype)
    plane[rng.random(plane.shape) < 0.02] = np.nan
    usable = rng.random(plane.shape) > 0.3
    usable[100:130, :4] = False  # rows with nothing valid on the left
    rows, cols, valid = refpix._side_window(usable, (0, 0), nrows, (0, 4), length)
    got = refpix._running_median(plane, rows, cols, valid)
    # jwst: reflect by create_reflected (odd length), window of `length` rows from row i
    odd = length + (1 - length % 2)
    half = odd // 2
    data, ok = plane[:, :4], usable[:, :4]
    aug = np.concatenate([data[half:0:-1], data, data[-2 : -(half + 2) : -1]])
    aug_ok = np.concatenate([ok[half:0:-1], ok, ok[-2 : -(half + 2) : -1]])
    for i in range(nrows):
        window = aug[i : i + length][aug_ok[i : i + length]]
        expected = np.nan if window.size == 0 else np.median(window)
        assert np.float64(expected).tobytes() == got[i].tobytes() or (
            np.isnan(expected) and np.isnan(got[i])
        ), i


# ---------------------------------------------------------------------------------------
# Random ramps against jwst


@pytest.mark.jwst
@pytest.mark.parametrize(
    "exp",
    [SOSS_LIKE, NRS1_SUB2048, NRS2_SUB2048, NRC_1AMP_CORNER],
    ids=["soss", "nrs1-sub2048", "nrs2-sub2048", "nrc-1amp-odd-col0"],
)
@pytest.mark.parametrize("odd_even", [True, False], ids=["odd-even", "all-columns"])
def test_one_output_matches_jwst(exp, odd_even):
    _compare_with_jwst(exp, Refpix(odd_even_columns=odd_even))


@pytest.mark.jwst
@pytest.mark.parametrize("exp", [NRS1_SUB32, NRS2_SUB512], ids=["sub32", "sub512"])
@pytest.mark.parametrize("odd_even", [True, False], ids=["odd-even", "all-columns"])
def test_nrs_edgeless_matches_jwst(exp, odd_even):
    pixeldq = np.zeros((exp.subsize2, exp.subsize1), np.uint32)
    _compare_with_jwst(exp, Refpix(odd_even_columns=odd_even), pixeldq=pixeldq)


@pytest.mark.jwst
@pytest.mark.parametrize(
    "params",
    [
        Refpix(),
        Refpix(odd_even_columns=False),
        Refpix(use_side_ref_pixels=False),
        Refpix(side_gain=0.7, side_smoothing_length=10, siglimit=2.5),
    ],
    ids=["default", "all-columns", "no-side", "gain-even-length"],
)
def test_four_output_matches_jwst(params):
    _compare_with_jwst(NRC_GRISM64, params)


@pytest.mark.jwst
@pytest.mark.parametrize("exp", [NRC_GRISM_TOP, NRC_4AMP_PART], ids=["top-rows", "partial"])
def test_four_output_other_geometry_matches_jwst(exp):
    _compare_with_jwst(exp, Refpix())


@pytest.mark.jwst
@pytest.mark.parametrize("exp", [SOSS_LIKE, NRC_GRISM64], ids=["1-output", "4-output"])
def test_do_not_use_reference_pixels_match_jwst(exp):
    rng = np.random.default_rng(7)
    pixeldq = _mask_pixeldq(exp)
    pixeldq[(rng.random(pixeldq.shape) < 0.1) & (pixeldq != 0)] |= DNU
    if exp.noutputs == 4:
        pixeldq[20:40, :4] |= DNU  # left side empty there: right side alone
        pixeldq[45:60, :4] |= DNU
        pixeldq[50:60, -4:] |= DNU  # both sides empty: no side correction in rows ~55
        pixeldq[:4, 512:1024] |= DNU  # amplifier B uncorrected
    out, _ = _compare_with_jwst(exp, Refpix(), pixeldq=pixeldq)
    assert np.isfinite(out).all()


@pytest.mark.jwst
@pytest.mark.parametrize(
    "exp", [SOSS_LIKE, NRC_GRISM64, NRS1_SUB32], ids=["1-output", "4-output", "sub32"]
)
def test_zeroframe_matches_jwst(exp):
    zexp = _exposure(
        exp.instrument,
        exp.detector,
        exp.subarray,
        (exp.substrt1, exp.substrt2),
        (exp.subsize1, exp.subsize2),
        (exp.fastaxis, exp.slowaxis),
        exp.noutputs,
        zero_frame=True,
    )
    data = _random_ramp(exp)
    zeroframe = (data[:, 0] - 3.0).astype(np.float32)
    zeroframe[:, 5:9, 10:20] = 0.0
    zeroframe[0, 0, 0] = 0.0  # a zero reference pixel still enters the mean
    pixeldq = _mask_pixeldq(exp) if exp.subarray != "SUB32" else np.zeros((32, 32), np.uint32)
    _compare_with_jwst(zexp, Refpix(), pixeldq=pixeldq, data=data, zeroframe=zeroframe)


@pytest.mark.jwst
def test_skips_match_jwst():
    miri = _exposure("MIRI", "MIRIMAGE", "SLITLESSPRISM", (1, 529), (72, 416), (1, 2), 1)
    data = np.ones((1, 2, 416, 72), dtype=np.float32)
    _compare_with_jwst(miri, Refpix(), pixeldq=np.zeros((416, 72), np.uint32), data=data)
    outside = _exposure("NIRCAM", "NRCA1", "SUBX", (2040, 1), (16, 16), (-1, 2), 1)
    data = np.ones((1, 1, 16, 16), dtype=np.float32)
    _compare_with_jwst(outside, Refpix(), pixeldq=np.zeros((16, 16), np.uint32), data=data)
    nothing = _exposure("NIRCAM", "NRCA1", "SUB64P", (1001, 1001), (64, 64), (-1, 2), 1)
    out, status = _compare_with_jwst(nothing, Refpix())
    assert status == "COMPLETE"


@pytest.mark.jwst
@pytest.mark.slow
def test_full_frame_matches_jwst():
    exp = _exposure("NIRCAM", "NRCB1", "FULL", (1, 1), (2048, 2048), (-1, 2), 4)
    data = _random_ramp(exp, nints=1, ngroups=2)
    _compare_with_jwst(exp, Refpix(), data=data)
