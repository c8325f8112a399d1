"""MIRI dark_current (4-D, integration-dependent darks) and refpix (reference columns of a
full frame; subarrays skipped).

Hand-built cases with the answer worked out; the oracle (marked ``jwst``): stcal's
``dark_sub.do_correction`` on an in-memory RampModel and DarkMIRIModel, and jwst's
``reference_pixels.correct_model`` (what RefPixStep calls) on a RampModel; the kernels
against NumPy bit for bit (``kernels`` fixture: host build, and the GPU where present).
"""

import logging
import warnings

import numpy as np
import pytest
from numpy.testing import assert_array_equal
from test_kernels_prejump import _assert_all_same, _assert_same, _dev, _Poisoned, _specials
from test_refpix import _assert_bits_equal, _exposure, _jwst_refpix

from tsogpu import dq
from tsogpu.algorithms import dark_current, refpix, refpix_miri
from tsogpu.config import Refpix
from tsogpu.errors import InputError
from tsogpu.launchers import dark_current as kdark_current
from tsogpu.launchers import refpix as krefpix

F32 = np.float32
DNU = dq.DO_NOT_USE
HOT = dq.PIXEL["HOT"]
WARM = dq.PIXEL["WARM"]

logging.getLogger("stcal").setLevel(logging.ERROR)
pytestmark = pytest.mark.filterwarnings(
    "ignore:invalid value encountered:RuntimeWarning",
    "ignore:overflow encountered:RuntimeWarning",
    "ignore:Mean of empty slice:RuntimeWarning",
    "ignore:Degrees of freedom:RuntimeWarning",
)

DIRECT = dict(nframes=1, groupgap=0, dark_nframes=1, dark_groupgap=0)


@pytest.fixture
def k(kernels):
    return _Poisoned(kernels)


def _level_dark(nd, ngroups, ny=1, nx=2):
    """dark[n, g] = 10 * (n + 1) + g everywhere: the integration and group can be read off."""
    n = np.arange(nd, dtype=F32)[:, None, None, None]
    g = np.arange(ngroups, dtype=F32)[None, :, None, None]
    return np.broadcast_to(10 * (n + 1) + g, (nd, ngroups, ny, nx)).astype(F32)


def _random_case(seed, nints, ngroups, nd, ndg, ny=5, nx=7):
    rng = np.random.default_rng(seed)
    data = rng.uniform(-100, 40000, size=(nints, ngroups, ny, nx)).astype(F32)
    data = _specials(rng, data, 0.01)
    pdq = rng.integers(0, 2**32, (ny, nx), dtype=np.uint64).astype(np.uint32)
    dark = np.cumsum(rng.uniform(0, 3.3, size=(nd, ndg, ny, nx)), axis=1).astype(F32)
    dark += np.arange(nd, dtype=F32)[:, None, None, None] * F32(0.37)
    dark[rng.random(dark.shape) < 0.05] = np.nan
    ddq = (rng.random((nd, 1, ny, nx)) < 0.2) * np.uint32(HOT)
    ddq = ddq.astype(np.uint32) | ((rng.random((nd, 1, ny, nx)) < 0.1) * np.uint32(DNU)).astype(
        np.uint32
    )
    return data, pdq, dark, ddq


# ---------------------------------------------------------------------------------------
# dark_current: hand-built


def test_dark_integrations_past_the_dark_use_its_last():
    data = np.full((4, 3, 1, 2), 100.0, dtype=F32)
    pdq = np.zeros((1, 2), np.uint32)
    dark = _level_dark(2, 3)
    out, _ = dark_current.subtract_dark(data, pdq, dark, pdq[None, None], **DIRECT)
    # integration 0: dark integration 0 (10, 11, 12); 1, 2, 3: the last (20, 21, 22)
    assert_array_equal(out[:, :, 0, 0], [[90, 89, 88]] + [[80, 79, 78]] * 3)


@pytest.mark.parametrize(
    ("int_start", "nd", "want"),
    [
        (0, 3, [10, 20]),  # the segment's first chunk
        (1, 3, [20, 30]),  # a chunk starting at integration 1
        (2, 3, [30, 30]),
        (5, 3, [30, 30]),  # a later segment: the last dark integration
        (0, 1, [10, 10]),  # one dark integration: always it
    ],
)
def test_dark_chunk_int_start(int_start, nd, want):
    data = np.zeros((2, 1, 1, 2), dtype=F32)
    pdq = np.zeros((1, 2), np.uint32)
    out, _ = dark_current.subtract_dark(
        data, pdq, _level_dark(nd, 1), pdq[None, None], int_start=int_start, **DIRECT
    )
    assert_array_equal(-out[:, 0, 0, 0], want)
    assert_array_equal(
        dark_current.dark_integrations(2, int_start, nd), [w // 10 - 1 for w in want]
    )


def test_dark_chunks_equal_the_whole_segment():
    data, pdq, dark, ddq = _random_case(3, 7, 4, 3, 6)
    kw = dict(nframes=1, groupgap=1, dark_nframes=1, dark_groupgap=0)  # frame copies
    whole, whole_dq = dark_current.subtract_dark(data, pdq, dark, ddq, **kw)
    for lo, hi in [(0, 1), (1, 3), (3, 7)]:
        part, part_dq = dark_current.subtract_dark(data[lo:hi], pdq, dark, ddq, int_start=lo, **kw)
        _assert_bits_equal(part, whole[lo:hi])
        assert_array_equal(part_dq, whole_dq)


def test_dark_dq_is_the_or_of_each_integrations_first_plane():
    pdq = np.array([[1, 0, 0]], dtype=np.uint32)
    ddq = np.zeros((2, 2, 1, 3), dtype=np.uint32)
    ddq[0, 0, 0, 1] = HOT
    ddq[1, 0, 0, 2] = WARM
    ddq[1, 1, 0, 0] = DNU  # a later DQ plane: stcal never reads it
    data = np.zeros((1, 1, 1, 3), dtype=F32)
    _, new_pdq = dark_current.subtract_dark(data, pdq, np.zeros((2, 1, 1, 3), F32), ddq, **DIRECT)
    assert_array_equal(new_pdq, [[1, HOT, WARM]])
    assert_array_equal(dark_current.dark_dq_image(ddq), [[0, HOT, WARM]])


def test_dark_4d_extrapolated_per_integration():
    # two dark groups per integration, four science groups: each integration extrapolated on
    # its own rate (float64), then integration 0 for data[0] and 1 for data[1]
    dark = np.array([[1.0, 2.0], [5.0, 8.0]], dtype=F32).reshape(2, 2, 1, 1)
    data = np.full((2, 4, 1, 1), 100.0, dtype=F32)
    pdq = np.zeros((1, 1), np.uint32)
    out, _ = dark_current.subtract_dark(data, pdq, dark, pdq, **DIRECT)
    assert_array_equal(out[:, :, 0, 0], [[99, 98, 97, 96], [95, 92, 89, 86]])


# ---------------------------------------------------------------------------------------
# dark_current: stcal as the oracle


def _stcal_dark(data, pdq, dark, ddq, kw, intstart):
    """stcal ``dark_sub.do_correction`` on in-memory models (as DarkCurrentStep calls it)."""
    pytest.importorskip("stcal")
    datamodels = pytest.importorskip("stdatamodels.jwst.datamodels")
    from stcal.dark_current import dark_sub

    ramp = datamodels.RampModel(
        data=data.copy(), pixeldq=pdq.copy(), groupdq=np.zeros(data.shape, np.uint8)
    )
    ramp.meta.exposure.nframes, ramp.meta.exposure.groupgap = kw["nframes"], kw["groupgap"]
    ramp.meta.exposure.integration_start = intstart
    darkm = datamodels.DarkMIRIModel(data=dark.copy(), dq=ddq.copy())
    darkm.meta.exposure.nframes = kw["dark_nframes"]
    darkm.meta.exposure.groupgap = kw["dark_groupgap"]
    darkm.meta.exposure.ngroups = dark.shape[1]
    out, _ = dark_sub.do_correction(ramp, darkm)
    if out.cal_step == "SKIPPED":
        return None
    return np.asarray(out.data, dtype=F32), np.asarray(out.pixeldq)


def _assert_same_values(actual, expected):
    """Bit-equal but for NaN payloads (NaN where NaN): the mean of an empty slice in stcal
    (frame averaging) and scipy (a clipped mean of NaN values) is NumPy's 0/0 NaN, negative
    on x86; tsogpu's is the positive np.nan."""
    assert actual.dtype == expected.dtype and actual.shape == expected.shape
    nan = np.isnan(expected)
    assert_array_equal(np.isnan(actual), nan)
    _assert_bits_equal(actual[~nan], expected[~nan])


# (nframes, groupgap, dark_nframes, dark_groupgap, science groups, dark groups)
MIRI_DARK_CASES = [
    (1, 0, 1, 0, 5, 8),  # direct: MIRI's readouts
    (1, 0, 1, 0, 6, 4),  # direct after extrapolation (float64 darks)
    (4, 1, 1, 0, 3, 20),  # frame averaging
    (4, 1, 1, 0, 3, 7),  # averaging after extrapolation
    (4, 0, 2, 0, 3, 6),  # dark groups as frames: shortened and empty slices (NaN)
    (1, 2, 1, 0, 3, 4),  # NFRAMES 1, GROUPGAP differs: frame copies after extrapolation
    (1, 0, 2, 0, 3, 10),  # dark NFRAMES larger: skipped
]


@pytest.mark.jwst
@pytest.mark.parametrize(("nf", "gg", "dnf", "dgg", "ngroups", "ndg"), MIRI_DARK_CASES)
@pytest.mark.parametrize(
    ("nints", "nd", "intstart"),
    [(4, 2, 1), (3, 3, 1), (2, 3, 1), (1, 1, 1), (3, 2, 5)],
    ids=["4ints-2dark", "3ints-3dark", "2ints-3dark", "1dark", "segment2"],
)
def test_dark_matches_stcal(nf, gg, dnf, dgg, ngroups, ndg, nints, nd, intstart):
    data, pdq, dark, ddq = _random_case(nints * 31 + ndg, nints, ngroups, nd, ndg)
    kw = dict(nframes=nf, groupgap=gg, dark_nframes=dnf, dark_groupgap=dgg)
    want = _stcal_dark(data, pdq, dark, ddq, kw, intstart)
    got = dark_current.subtract_dark(data, pdq, dark, ddq, int_start=intstart - 1, **kw)
    if want is None:
        assert got is None
        return
    _assert_same_values(got[0], want[0])
    assert_array_equal(got[1], want[1])
    assert got[1].dtype == np.uint32


@pytest.mark.jwst
def test_dark_chunks_match_stcal_on_the_segment():
    """Chunks of a segment (int_start = INTSTART - 1 + the chunk's first integration) give
    stcal's segment, for a first segment and a later one."""
    data, pdq, dark, ddq = _random_case(11, 5, 3, 2, 3)
    for intstart in (1, 6):
        want = _stcal_dark(data, pdq, dark, ddq, DIRECT, intstart)[0]
        for lo, hi in [(0, 1), (1, 2), (2, 5)]:
            got, _ = dark_current.subtract_dark(
                data[lo:hi], pdq, dark, ddq, int_start=intstart - 1 + lo, **DIRECT
            )
            _assert_bits_equal(got, want[lo:hi])


# ---------------------------------------------------------------------------------------
# dark_current: kernels against NumPy


@pytest.mark.parametrize(("nf", "gg", "dnf", "dgg", "ngroups", "ndg"), MIRI_DARK_CASES)
@pytest.mark.parametrize(("nints", "nd", "int_start"), [(4, 2, 0), (3, 3, 1), (2, 3, 7), (3, 1, 0)])
def test_kernels_dark_4d(kernels, k, nf, gg, dnf, dgg, ngroups, ndg, nints, nd, int_start):
    data, pdq, dark, ddq = _random_case(nints * 17 + ndg + nd, nints, ngroups, nd, ndg)
    kw = dict(nframes=nf, groupgap=gg, dark_nframes=dnf, dark_groupgap=dgg, int_start=int_start)
    want = dark_current.subtract_dark(data, pdq, dark, ddq, **kw)
    got = kdark_current.subtract_dark(k, *_dev(kernels, data, pdq, dark, ddq), **kw)
    if want is None:
        assert got is None
        return
    _assert_all_same(kernels, got, want, ("data", "pixeldq"))


def test_kernels_dark_4d_with_2d_dq(kernels, k):
    data, pdq, dark, ddq = _random_case(5, 3, 2, 2, 2)
    want = dark_current.subtract_dark(data, pdq, dark, ddq[0, 0], int_start=1, **DIRECT)
    got = kdark_current.subtract_dark(
        k, *_dev(kernels, data, pdq, dark, ddq[0, 0]), int_start=1, **DIRECT
    )
    _assert_all_same(kernels, got, want, ("data", "pixeldq"))


# ---------------------------------------------------------------------------------------
# refpix: hand-built

MIRI_FULL = _exposure("MIRI", "MIRIMAGE", "FULL", (1, 1), (1032, 1024), (1, 2), 4)
MIRI_SLITLESS = _exposure("MIRI", "MIRIMAGE", "SLITLESSPRISM", (1, 529), (72, 416), (1, 2), 1)
NY, NX = refpix_miri.MIRI_SHAPE
REF_COLUMNS = [0, 1, 2, 3, 1028, 1029, 1030, 1031]


def _offsets(ngroups):
    """offset[g, parity, amp]: a bias drift per group, amplifier and row parity."""
    g = np.arange(ngroups, dtype=F32)[:, None, None]
    parity = np.arange(2, dtype=F32)[None, :, None]
    amp = np.arange(4, dtype=F32)[None, None, :]
    return (3 * g + 5 * parity * g + 7 * amp + 2 * g * amp).astype(F32)


def _drifting_frame(ngroups, scene):
    """One integration: scene * g + the offsets; reference columns carry only the offsets."""
    off = _offsets(ngroups)
    rows = np.arange(NY) % 2
    cols = np.arange(NX) % 4
    data = np.empty((1, ngroups, NY, NX), dtype=F32)
    for g in range(ngroups):
        data[0, g] = scene * F32(g) + off[g][rows[:, None], cols[None, :]]
        data[0, g][:, REF_COLUMNS] = off[g][rows[:, None], cols[None, REF_COLUMNS]]
    return data


def test_refpix_removes_each_amplifier_and_row_parity_drift():
    scene = np.float32(np.arange(NX) % 13 + 1)[None, :] * np.ones((NY, 1), F32)
    data = _drifting_frame(4, scene)
    pdq = np.zeros((NY, NX), np.uint32)
    out, zf, status = refpix.correct_refpix(data, pdq, MIRI_FULL, Refpix())
    assert status == "COMPLETE" and zf is None
    # what is left: the scene's ramp plus group 0's offsets (the first read comes back)
    expected = data[0, 0][None] + scene[None] * np.arange(4, dtype=F32)[:, None, None]
    expected[:, :, REF_COLUMNS] = data[0, 0][:, REF_COLUMNS]
    assert_array_equal(out[0], expected)
    # without odd_even_rows one mean per column: half the row-parity offset stays
    out, _, _ = refpix.correct_refpix(data, pdq, MIRI_FULL, Refpix(odd_even_rows=False))
    parity_left = (np.arange(NY) % 2 - 0.5) * 5.0
    assert_array_equal(out[0, 1] - expected[1], np.broadcast_to(parity_left[:, None], (NY, NX)))


def test_refpix_dnu_reference_pixels_are_left_out():
    scene = np.full((NY, NX), 2.0, F32)
    data = _drifting_frame(2, scene)
    pdq = np.zeros((NY, NX), np.uint32)
    pdq[10:20, 1028] = DNU
    data[0, 1, 10:20, 1028] = 1e6  # would pull amplifier A's mean away if it were used
    out, _, _ = refpix.correct_refpix(data, pdq, MIRI_FULL, Refpix())
    assert_array_equal(out[0, 1, 30:40, 4:8], data[0, 0, 30:40, 4:8] + 2.0)


def test_refpix_no_usable_set_corrects_nothing_but_rounds():
    # every odd-row pixel of amplifier C's right column is DO_NOT_USE: jwst corrects nothing,
    # yet subtracts the first read and adds it back (rounding twice)
    data = np.zeros((1, 2, NY, NX), dtype=F32)
    data[0, 0] = 1.0
    data[0, 1] = 1e-8
    pdq = np.zeros((NY, NX), np.uint32)
    pdq[0::2, 1030] = DNU
    out, _, status = refpix.correct_refpix(data, pdq, MIRI_FULL, Refpix())
    assert status == "COMPLETE"
    assert_array_equal(out[0, 0], 1.0)
    assert_array_equal(out[0, 1], 0.0)  # float32((1e-8 - 1) + 1)


def test_refpix_one_group_and_chunks():
    rng = np.random.default_rng(5)
    data = rng.normal(5000.0, 3.0, (3, 2, NY, NX)).astype(F32)
    pdq = np.zeros((NY, NX), np.uint32)
    whole, _, _ = refpix.correct_refpix(data, pdq, MIRI_FULL, Refpix())
    for lo, hi in [(0, 1), (1, 3)]:
        part, _, _ = refpix.correct_refpix(data[lo:hi], pdq, MIRI_FULL, Refpix(), first_plane=False)
        _assert_bits_equal(part, whole[lo:hi])
    one, _, status = refpix.correct_refpix(data[:, :1], pdq, MIRI_FULL, Refpix())
    assert status == "COMPLETE"
    _assert_bits_equal(one, data[:, :1])


def test_refpix_miri_subarray_skipped_and_oversize_refused():
    data = np.ones((1, 2, 416, 72), dtype=F32)
    out, zf, status = refpix.correct_refpix(
        data, np.zeros((416, 72), np.uint32), MIRI_SLITLESS, Refpix()
    )
    assert status == "SKIPPED" and zf is None and out is not data
    assert_array_equal(out, data)
    with pytest.raises(InputError, match="larger than the full frame"):
        refpix.correct_refpix(
            np.zeros((1, 1, 1024, 1040), F32),
            np.zeros((1024, 1040), np.uint32),
            MIRI_FULL,
            Refpix(),
        )


# ---------------------------------------------------------------------------------------
# refpix: jwst as the oracle, and the kernels against NumPy


def _miri_ramp(seed, nints=2, ngroups=3, specials=False):
    """Full-frame ramps: per-group, per-amplifier and row-parity drifts, hot pixels, DNU."""
    rng = np.random.default_rng(seed)
    data = rng.normal(10000.0, 4.0, (nints, ngroups, NY, NX))
    data += rng.normal(0.0, 30.0, (nints, ngroups, 1, 1))
    data += rng.normal(0.0, 5.0, (nints, ngroups, 1, 4)).repeat(NX // 4, axis=-1)
    data[..., 1::2, :] += rng.normal(0.0, 2.0, (nints, ngroups, 1, 1))
    hot = rng.random(data.shape) < 0.01
    data[hot] += rng.uniform(100.0, 5000.0, hot.sum())
    data = data.astype(F32)
    pdq = np.zeros((NY, NX), np.uint32)
    pdq[rng.random(pdq.shape) < 0.02] |= DNU
    pdq[rng.random(pdq.shape) < 0.02] |= HOT
    if specials:
        data[0, 1, 7, 2] = np.nan  # a NaN reference value: that set's mean is NaN
        data[1, 2, 100, 1029] = np.inf
        data[1, 0, 50, 50] = np.nan  # a NaN first read: every group of that pixel NaN
        data[0, :, 10:30, 1031] = 123.0  # equal values: a float64 mean for some sets
    return data, pdq


ORACLE_CASES = {
    "default": (dict(), dict()),
    "rows-together": (dict(odd_even_rows=False), dict()),
    "siglimit-2": (dict(siglimit=2.0), dict(seed=2, ngroups=4, nints=1)),
    "specials": (dict(), dict(seed=3, specials=True)),
    "one-group": (dict(), dict(seed=4, ngroups=1)),
}


@pytest.mark.jwst
@pytest.mark.parametrize("case", list(ORACLE_CASES))
def test_refpix_matches_jwst(case):
    params, ramp = ORACLE_CASES[case]
    data, pdq = _miri_ramp(**{"seed": 1, **ramp})
    params = Refpix(**params)
    want, _, want_status = _jwst_refpix(data, pdq, MIRI_FULL, params)
    got, _, status = refpix.correct_refpix(data, pdq, MIRI_FULL, params)
    assert status == want_status == "COMPLETE"
    _assert_same_values(got, want)  # a NaN reference mean: scipy's NaN is NumPy's 0/0


@pytest.mark.jwst
def test_refpix_skips_and_bad_sets_match_jwst():
    data = np.ones((1, 2, 416, 72), dtype=F32)
    pdq = np.zeros((416, 72), np.uint32)
    want, _, want_status = _jwst_refpix(data, pdq, MIRI_SLITLESS, Refpix())
    got, _, status = refpix.correct_refpix(data, pdq, MIRI_SLITLESS, Refpix())
    assert status == want_status == "SKIPPED"
    _assert_bits_equal(got, want)
    data, pdq = _miri_ramp(6)
    pdq[1::2, 3] |= DNU  # amplifier D's left column has no usable even row
    want, _, _ = _jwst_refpix(data, pdq, MIRI_FULL, Refpix())
    got, _, _ = refpix.correct_refpix(data, pdq, MIRI_FULL, Refpix())
    _assert_bits_equal(got, want)


@pytest.mark.jwst
def test_refpix_zeroframe_matches_jwst():
    exp = _exposure("MIRI", "MIRIMAGE", "FULL", (1, 1), (1032, 1024), (1, 2), 4, zero_frame=True)
    data, pdq = _miri_ramp(7, nints=1, ngroups=2)
    zf = data[:, 0].copy()
    zf[0, :3, :3] = [[0.0, -0.0, np.inf], [-np.inf, np.nan, 1.0], [2.0, 0.0, 5.0]]
    want, want_zf, _ = _jwst_refpix(data, pdq, exp, Refpix(), zeroframe=zf)
    got, got_zf, _ = refpix.correct_refpix(data, pdq, exp, Refpix(), zeroframe=zf)
    _assert_bits_equal(got, want)
    _assert_bits_equal(got_zf, want_zf)


KERNEL_CASES = {
    "default": (dict(), dict()),
    "rows-together": (dict(odd_even_rows=False), dict(seed=8)),
    "specials": (dict(siglimit=2.5), dict(seed=3, specials=True)),
    "one-group": (dict(), dict(seed=4, ngroups=1)),
}


@pytest.mark.parametrize("case", list(KERNEL_CASES))
def test_kernels_refpix_miri(kernels, k, case):
    params, ramp = KERNEL_CASES[case]
    data, pdq = _miri_ramp(**{"seed": 1, **ramp})
    params = Refpix(**params)
    want = refpix.correct_refpix(data, pdq, MIRI_FULL, params)
    got = krefpix.correct_refpix(k, *_dev(kernels, data, pdq), MIRI_FULL, params)
    assert got[2] == want[2]
    _assert_same(kernels, got[0], want[0], "data")
    assert got[1] is None


def test_kernels_refpix_miri_bad_set_zeroframe_and_subarray(kernels, k):
    exp = _exposure("MIRI", "MIRIMAGE", "FULL", (1, 1), (1032, 1024), (1, 2), 4, zero_frame=True)
    data, pdq = _miri_ramp(9, nints=1, ngroups=2)
    pdq[:, 1029] |= DNU
    data[0, 1, 0, 0] = 1e-8
    data[0, 0, 0, 0] = 1.0
    zf = data[:, 0].copy()
    zf[0, :2, :3] = [[0.0, -0.0, np.inf], [-np.inf, np.nan, 1.0]]
    want = refpix.correct_refpix(data, pdq, exp, Refpix(), zeroframe=zf)
    d, p = _dev(kernels, data, pdq)
    got = krefpix.correct_refpix(k, d, p, exp, Refpix(), zeroframe=kernels.put(zf))
    _assert_all_same(kernels, got[:2], want[:2], ("data", "zeroframe"))
    data = np.ones((1, 2, 416, 72), dtype=F32)
    pdq = np.zeros((416, 72), np.uint32)
    got = krefpix.correct_refpix(k, *_dev(kernels, data, pdq), MIRI_SLITLESS, Refpix())
    assert got[2] == "SKIPPED"
    _assert_same(kernels, got[0], data, "subarray")


def test_refpix_inputs_are_not_modified():
    data, pdq = _miri_ramp(10, nints=1, ngroups=2)
    before = data.copy(), pdq.copy()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        refpix.correct_refpix(data, pdq, MIRI_FULL, Refpix())
    _assert_bits_equal(data, before[0])
    assert_array_equal(pdq, before[1])


@pytest.mark.jwst
def test_dark_differs_from_stcal_only_where_documented():
    """stcal gives a segment with INTSTART > 1 the last dark integration throughout; tsogpu
    indexes by exposure integration. They differ only for a segment starting before the
    dark's last integration (here INTSTART 2 with a 3-integration dark)."""
    data = np.zeros((2, 1, 1, 2), dtype=F32)
    pdq = np.zeros((1, 2), np.uint32)
    dark = _level_dark(3, 1)
    ddq = np.zeros((3, 1, 1, 2), np.uint32)
    want = _stcal_dark(data, pdq, dark, ddq, DIRECT, 2)[0]
    got, _ = dark_current.subtract_dark(data, pdq, dark, ddq, int_start=1, **DIRECT)
    assert_array_equal(-want[:, 0, 0, 0], [30, 30])
    assert_array_equal(-got[:, 0, 0, 0], [20, 30])
    want = _stcal_dark(data, pdq, dark, ddq, DIRECT, 3)[0]  # INTSTART 3: the same
    got, _ = dark_current.subtract_dark(data, pdq, dark, ddq, int_start=2, **DIRECT)
    _assert_bits_equal(got, want)
