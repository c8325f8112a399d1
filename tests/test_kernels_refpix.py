"""refpix kernels (kernels/refpix.cu, tsogpu/launchers/refpix.py) against the NumPy backend.

Every case runs ``tsogpu.algorithms.refpix.correct_refpix`` and the launcher on the same
inputs and demands the same status, errors and float32 bits (on the device NaN payloads are
not compared, NaN positions are). The launcher's scratch and outputs are poisoned with NaN
first, so an element a kernel leaves unwritten shows up.
"""

from dataclasses import replace

import numpy as np
import pytest
from test_refpix import _exposure, _mask_pixeldq  # the same geometries as the NumPy tests

from tsogpu import dq
from tsogpu.algorithms import refpix
from tsogpu.config import Refpix
from tsogpu.errors import ConfigError, InputError
from tsogpu.launchers import refpix as cuda_refpix

DNU = dq.DO_NOT_USE
REF = dq.REFERENCE_PIXEL

# NaN/inf inputs make the NumPy reference warn; the kernels are silent.
pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")


class _PoisonXP:
    """The array module, with ``empty`` returning NaN (float) or 0x5a (integer) filled arrays."""

    def __init__(self, xp):
        self._xp = xp

    def __getattr__(self, name):
        return getattr(self._xp, name)

    def empty(self, shape, dtype=np.float64):
        a = self._xp.empty(shape, dtype=dtype)
        a.fill(np.nan if np.dtype(dtype).kind == "f" else 0x5A)
        return a


class _Poisoned:
    def __init__(self, kernels):
        self.name, self.launch, self.xp = kernels.name, kernels.launch, _PoisonXP(kernels.xp)
        self.put, self.get = kernels.put, kernels.get


@pytest.fixture
def k(kernels):
    return _Poisoned(kernels)


def _random_ramp(exp, nints=2, ngroups=3, seed=0, nans=True):
    """Bias-like ramps with drifts, parity offsets, hot outliers and (optionally) NaNs."""
    rng = np.random.default_rng(seed)
    ny, nx = exp.subsize2, exp.subsize1
    data = rng.normal(1000.0, 5.0, (nints, ngroups, ny, nx))
    data += rng.normal(0.0, 20.0, (nints, ngroups, 1, 1))
    data[..., ::2] += 3.0
    data[..., ::2, :] -= 2.0
    data += np.linspace(0.0, 7.0, ny)[None, None, :, None]
    hot = rng.random(data.shape) < 0.01
    data[hot] += rng.uniform(100.0, 5000.0, hot.sum())
    data = data.astype(np.float32)
    if nans:
        data[rng.random(data.shape) < 0.002] = np.nan
    return data


def _flag(pixeldq, seed, fraction=0.05):
    """DO_NOT_USE on a random fraction of the reference pixels (and of the others)."""
    rng = np.random.default_rng(seed)
    out = pixeldq.copy()
    out[rng.random(out.shape) < fraction] |= DNU
    return out


def _assert_same(actual, expected, strict_nan):
    """Same dtype, shape, NaN positions and bits (NaN payloads too when ``strict_nan``)."""
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.dtype == expected.dtype and actual.shape == expected.shape
    nan_a, nan_e = np.isnan(actual), np.isnan(expected)
    assert np.array_equal(nan_a, nan_e), f"NaN at {np.argwhere(nan_a != nan_e)[:5].tolist()}"
    a, e = (actual, expected) if strict_nan else (actual[~nan_a], expected[~nan_e])
    bits = {4: np.uint32, 8: np.uint64}[actual.itemsize]
    differ = a.view(bits) != e.view(bits)
    if differ.any():
        where = np.argwhere(differ)[:5]
        raise AssertionError(
            f"{differ.sum()} of {a.size} values differ, first at {where.tolist()}: "
            f"{a[tuple(where.T)]} vs {e[tuple(where.T)]}"
        )


def _compare(k, data, pixeldq, exp, params, zeroframe=None, first_plane=True):
    """Run both backends; assert identical results and unchanged inputs."""
    expected = refpix.correct_refpix(
        data, pixeldq, exp, params, zeroframe=zeroframe, first_plane=first_plane
    )
    inputs = [a for a in (data, pixeldq, zeroframe) if a is not None]
    dev = [k.put(a.copy()) for a in inputs]
    got = cuda_refpix.correct_refpix(
        k,
        dev[0],
        dev[1],
        exp,
        params,
        zeroframe=dev[2] if zeroframe is not None else None,
        first_plane=first_plane,
    )
    strict = k.name == "host"
    assert got[2] == expected[2]
    _assert_same(k.get(got[0]), expected[0], strict)
    if zeroframe is None:
        assert got[1] is None
    else:
        _assert_same(k.get(got[1]), expected[1], strict)
    for before, after in zip(inputs, dev, strict=True):
        assert np.asarray(k.get(after)).tobytes() == before.tobytes()
    return expected


# Exposures (SUBSTRT/SUBSIZE as (axis 1, axis 2), axes as (FASTAXIS, SLOWAXIS)).
SOSS_LIKE = _exposure("NIRISS", "NIS", "SUBSTRIP32", (1, 2017), (2048, 32), (-2, -1), 1)
NRS1_SUB2048 = _exposure("NIRSPEC", "NRS1", "SUB2048", (1, 1009), (2048, 32), (2, 1), 1)
NRS2_SUB2048 = _exposure("NIRSPEC", "NRS2", "SUB2048", (1, 1009), (2048, 32), (-2, -1), 1)
NRC_1AMP_CORNER = _exposure("NIRCAM", "NRCBLONG", "SUB64", (2, 1), (64, 64), (-1, 2), 1)
NRC_1AMP_FLIPPED = _exposure("NIRCAM", "NRCB1", "SUBX", (1985, 3), (64, 48), (1, -2), 1)
NRS1_SUB32 = _exposure("NIRSPEC", "NRS1", "SUB32", (1101, 901), (32, 32), (2, 1), 1)
NRS2_SUB512 = _exposure("NIRSPEC", "NRS2", "SUB512", (1000, 1300), (512, 32), (-2, -1), 1)
NRC_GRISM64 = _exposure("NIRCAM", "NRCALONG", "SUBGRISM64", (1, 1), (2048, 64), (-1, 2), 4)
NRC_GRISM_TOP = _exposure("NIRCAM", "NRCBLONG", "SUBGRISM32", (1, 2017), (2048, 32), (-1, 2), 4)
NRC_4AMP_PART = _exposure("NIRCAM", "NRCB1", "SUBX", (301, 5), (1500, 40), (1, -2), 4)
NRS_4AMP = _exposure("NIRSPEC", "NRS1", "SUB2048", (1, 1009), (2048, 32), (2, 1), 4)
NIS_4AMP = _exposure("NIRISS", "NIS", "SUBSTRIP96", (1, 1803), (2048, 96), (-2, -1), 4)

ONE_OUTPUT = {
    "soss": SOSS_LIKE,
    "nrs1": NRS1_SUB2048,
    "nrs2": NRS2_SUB2048,
    "nrc-odd-col0": NRC_1AMP_CORNER,
    "nrc-flipped": NRC_1AMP_FLIPPED,
}
FOUR_OUTPUT = {
    "grism64": NRC_GRISM64,
    "grism-top": NRC_GRISM_TOP,
    "partial": NRC_4AMP_PART,
    "nrs-transposed": NRS_4AMP,
    "nis-transposed": NIS_4AMP,
}
PARAMS = {
    "default": Refpix(),
    "all-columns": Refpix(odd_even_columns=False),
    "no-side": Refpix(use_side_ref_pixels=False),
    "no-side-all-columns": Refpix(use_side_ref_pixels=False, odd_even_columns=False),
    "gain-even-length": Refpix(side_gain=0.7, side_smoothing_length=10, siglimit=2.5),
    "length-2": Refpix(side_smoothing_length=2, siglimit=1.5),
}


# ---------------------------------------------------------------------------------------
# Building blocks: NumPy's summation order and clipped_mean


def test_pairwise_sums_equal_numpy(k):
    """rp_sum against np.add.reduce (float32, float64) and np.sum(float32, dtype=float64),
    which NumPy reduces through buffers of np.getbufsize() values."""
    rng = np.random.default_rng(11)
    sizes = [*range(0, 140), 255, 256, 257, 1000, 1031, 4096, 8191, 8192, 8193, 9000, 20000]
    arrays = [
        (rng.normal(0.0, 1.0, n) * 10.0 ** rng.uniform(0, 7, n)).astype(np.float32) for n in sizes
    ]
    arrays.append(np.full(9, -0.0, np.float32))
    arrays.append(np.array([np.inf, 1.0, -np.inf], np.float32))
    start = np.concatenate([[0], np.cumsum([a.size for a in arrays])]).astype(np.int64)
    x = k.put(np.concatenate(arrays))
    cases = [
        (0, 0, [np.add.reduce(a) for a in arrays]),
        (1, 0, [np.add.reduce(a.astype(np.float64)) for a in arrays]),
        (1, np.getbufsize(), [np.sum(a, dtype=np.float64) for a in arrays]),
    ]
    for f64, chunk, expected in cases:
        out = k.xp.empty(len(arrays), dtype=np.float64)
        k.launch(
            "tso_rp_sum_check", len(arrays), x, k.put(start), np.int64(len(arrays)),
            np.int64(chunk), np.int32(f64), out,
        )  # fmt: skip
        want = np.array(expected, dtype=np.float64)
        _assert_same(k.get(out), want, strict_nan=k.name == "host")
    # the chunking is real: a float64 sum of float32 values in one run differs somewhere
    assert not np.array_equal(cases[1][2], cases[2][2])


@pytest.mark.parametrize("f64", [False, True], ids=["float32", "float64"])
def test_clipped_mean_equals_numpy(k, f64):
    """tso_rp_clipped_means on one plane holding each value set, against clipped_mean."""
    rng = np.random.default_rng(12)
    sets = []
    for n in (1, 2, 3, 7, 8, 9, 64, 100, 128, 129, 300, 1000, 1024, 2048, 5000, 10000):
        for trial in range(3):
            v = rng.normal(1000.0, 3.0, n)
            v[rng.random(n) < 0.05] += rng.uniform(-500.0, 500.0)
            if trial == 1:
                v = rng.normal(0.0, 1.0, n) * 10.0 ** rng.uniform(-3, 6, n)
            sets.append(v.astype(np.float32))
    sets += [
        np.full(5, 0.1, np.float32),  # all equal: float64 mean
        np.full(20000, 0.1, np.float32),
        np.array([-0.0, 0.0, -0.0], np.float32),
        np.array([1.0, np.nan, 2.0], np.float32),
        np.array([1.0, np.inf, 2.0], np.float32),
        np.zeros(0, np.float32),
        np.array([5.0, 5.0, 5.0, 5.0, 5.0, 5.0, 5.0, 6.0], np.float32),
        np.r_[np.full(100, 3.0), [1e30]].astype(np.float32),
    ]
    values = np.concatenate(sets)
    sizes = [s.size for s in sets]
    set_start = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    nsets = len(sets)
    out = k.xp.empty(nsets, dtype=np.float64)
    kinds = k.xp.empty(nsets, dtype=np.int32)
    scratch = k.xp.empty(max(1, values.size), dtype=np.float32)
    for siglimit in (3.0, 1.7):
        k.launch(
            "tso_rp_clipped_means", nsets, k.put(values), np.int64(values.size), np.int64(0),
            np.int64(1), k.put(np.arange(values.size, dtype=np.int64)), k.put(set_start),
            np.int64(nsets), np.int64(0 if f64 else 1), np.int64(np.getbufsize()),
            np.float64(siglimit), scratch, out, kinds,
        )  # fmt: skip
        got_v, got_k = k.get(out), k.get(kinds)
        for i, s in enumerate(sets):
            want = refpix.clipped_mean(s.astype(np.float64) if f64 else s, siglimit)
            if want is None:
                assert got_k[i] == 0
                continue
            assert got_k[i] == (1 if want.dtype == np.float32 else 2), i
            _assert_same(got_v[i : i + 1], np.array([want], np.float64), k.name == "host")


# ---------------------------------------------------------------------------------------
# Random ramps: 1-output subarrays


@pytest.mark.parametrize("odd_even", [True, False], ids=["odd-even", "all-columns"])
@pytest.mark.parametrize("name", list(ONE_OUTPUT))
def test_one_output(k, name, odd_even):
    exp = ONE_OUTPUT[name]
    params = Refpix(odd_even_columns=odd_even, siglimit=2.5 if odd_even else 3.0)
    data = _random_ramp(exp, seed=list(ONE_OUTPUT).index(name))
    _compare(k, data, _mask_pixeldq(exp), exp, params)
    _compare(k, data, _flag(_mask_pixeldq(exp), 1), exp, params, first_plane=False)


@pytest.mark.parametrize("odd_even", [True, False], ids=["odd-even", "all-columns"])
@pytest.mark.parametrize("exp", [NRS1_SUB32, NRS2_SUB512], ids=["sub32", "sub512"])
def test_nrs_edgeless(k, exp, odd_even):
    pixeldq = np.zeros((exp.subsize2, exp.subsize1), np.uint32)
    data = _random_ramp(exp, seed=3)
    _compare(k, data, pixeldq, exp, Refpix(odd_even_columns=odd_even))
    _compare(k, data, _flag(pixeldq, 2, 0.1), exp, Refpix(odd_even_columns=odd_even))


def test_one_output_long_sets_and_constant_reference(k):
    """SOSS SUBSTRIP256: > np.getbufsize() reference values in one set; then reference
    pixels all equal (the float64 mean branch) in some planes."""
    exp = _exposure("NIRISS", "NIS", "SUBSTRIP256", (1, 1793), (2048, 256), (-2, -1), 1)
    data = _random_ramp(exp, nints=1, ngroups=2, seed=4)
    pixeldq = _mask_pixeldq(exp)
    assert (pixeldq != 0).sum() > np.getbufsize()
    _compare(k, data, pixeldq, exp, Refpix(odd_even_columns=False))
    data[0, 1][pixeldq != 0] = np.float32(1234.567)
    data[0, 0][(pixeldq != 0) & (np.arange(2048) % 2 == 0)[None, :]] = np.float32(-0.3)
    _compare(k, data, pixeldq, exp, Refpix(odd_even_columns=False))
    _compare(k, data, pixeldq, exp, Refpix())


def test_one_output_without_reference_pixels_copies(k):
    exp = _exposure("NIRCAM", "NRCA1", "SUB64P", (1001, 1001), (64, 64), (-1, 2), 1, True)
    data = _random_ramp(exp, 1, 2)
    zeroframe = data[:, 0] - np.float32(1.0)
    zeroframe[0, :3, :3] = 0.0
    zeroframe[0, 5, 5] = -0.0
    _compare(k, data, _mask_pixeldq(exp), exp, Refpix(), zeroframe=zeroframe)


# ---------------------------------------------------------------------------------------
# Random ramps: full frame and 4-output subarrays


@pytest.mark.parametrize("params", list(PARAMS))
@pytest.mark.parametrize("name", list(FOUR_OUTPUT))
def test_four_output(k, name, params):
    exp = FOUR_OUTPUT[name]
    data = _random_ramp(exp, seed=len(name) + len(params))
    pixeldq = _mask_pixeldq(exp)
    _compare(k, data, pixeldq, exp, PARAMS[params])
    _compare(k, data, _flag(pixeldq, 5), exp, PARAMS[params], first_plane=False)


def test_four_output_flag_patterns(k):
    """Amplifiers without (even) reference values, side windows with nothing valid, NaN and
    inf reference pixels, constant reference rows."""
    exp = NRC_GRISM64
    data = _random_ramp(exp, nints=2, ngroups=2, seed=8)
    pixeldq = _flag(_mask_pixeldq(exp), 9, 0.1)
    pixeldq[20:40, :4] |= DNU
    pixeldq[45:60, :4] |= DNU
    pixeldq[50:60, -4:] |= DNU
    pixeldq[:4, 512:1024] |= DNU  # amplifier B: no reference value
    pixeldq[:4, 1536:2048:2] |= DNU  # amplifier D: no even columns
    data[0, 0, :4, 1024:1536] = np.float32(7.25)  # constant: float64 means
    data[0, 1, :4, 100] = np.inf
    data[1, 0, 30, :4] = np.nan  # NaN in the side windows
    data[1, 1, :4, 1100:1110] = np.nan
    for params in PARAMS.values():
        for first_plane in (True, False):
            _compare(k, data, pixeldq, exp, params, first_plane=first_plane)


def test_negative_zero_planes(k):
    """Planes of -0.0: the float64 mean of equal values is +0.0 (NumPy's identity), and the
    median's leading 0.0 makes a -0.0 side median +0.0, so the output is -0.0 - +0.0."""
    for exp in (NRC_GRISM64, SOSS_LIKE):
        data = np.full((1, 2, exp.subsize2, exp.subsize1), -0.0, dtype=np.float32)
        data[0, 1, ::3] = np.float32(2.5)
        for params in (Refpix(), Refpix(side_smoothing_length=3)):
            for first_plane in (True, False):
                out = _compare(k, data, _mask_pixeldq(exp), exp, params, first_plane=first_plane)
                assert np.signbit(out[0][0, 0]).any()


@pytest.mark.parametrize(
    ("axes", "first_plane"),
    [((-1, 2), True), ((2, 1), False), ((-2, -1), True), ((1, -2), False)],
    ids=["nircam", "nrs1", "niriss", "flipped-rows"],
)
def test_full_frame(k, axes, first_plane):
    exp = _exposure("NIRCAM", "NRCB1", "FULL", (1, 1), (2048, 2048), axes, 4)
    data = _random_ramp(exp, nints=1, ngroups=2, seed=abs(axes[0]) * 3 + axes[1])
    pixeldq = _flag(_mask_pixeldq(exp), 6, 0.02)
    params = Refpix() if first_plane else Refpix(odd_even_columns=False, side_gain=0.5)
    _compare(k, data, pixeldq, exp, params, first_plane=first_plane)


def test_full_frame_without_side_pixels(k):
    exp = _exposure("NIRSPEC", "NRS2", "FULL", (1, 1), (2048, 2048), (-2, -1), 4)
    data = _random_ramp(exp, nints=1, ngroups=2, seed=7)
    _compare(k, data, _mask_pixeldq(exp), exp, Refpix(use_side_ref_pixels=False))


# ---------------------------------------------------------------------------------------
# ZEROFRAME


@pytest.mark.parametrize("first_plane", [True, False], ids=["first", "later"])
@pytest.mark.parametrize(
    "exp",
    [SOSS_LIKE, NRC_GRISM64, NRS1_SUB32, NIS_4AMP],
    ids=["1-output", "4-output", "sub32", "nis"],
)
def test_zeroframe(k, exp, first_plane):
    zexp = replace(exp, zero_frame=True)
    data = _random_ramp(exp, seed=10)
    zeroframe = (data[:, 0] - np.float32(3.0)).astype(np.float32)
    zeroframe[:, 5:9, 10:20] = 0.0
    zeroframe[0, 0, 0] = 0.0  # a zero reference pixel still enters the mean
    zeroframe[1, 1, 1] = -0.0
    if exp.subarray == "SUB32":
        pixeldq = np.zeros((32, 32), np.uint32)
    else:
        pixeldq = _mask_pixeldq(exp)
    for params in (Refpix(), Refpix(use_side_ref_pixels=False)):
        _compare(k, data, pixeldq, zexp, params, zeroframe=zeroframe, first_plane=first_plane)
    # ZEROFRAME given but ZEROFRAM false: copied, untouched
    _compare(k, data, pixeldq, exp, Refpix(), zeroframe=zeroframe, first_plane=first_plane)


# ---------------------------------------------------------------------------------------
# Skips and errors


def test_skips(k):
    miri = _exposure("MIRI", "MIRIMAGE", "SLITLESSPRISM", (1, 529), (72, 416), (1, 2), 1)
    data = np.ones((1, 2, 416, 72), dtype=np.float32)
    _compare(k, data, np.zeros((416, 72), np.uint32), miri, Refpix())
    outside = _exposure("NIRCAM", "NRCA1", "SUBX", (2040, 1), (16, 16), (-1, 2), 1)
    data = _random_ramp(outside, 1, 1)
    _compare(k, data, np.zeros((16, 16), np.uint32), outside, Refpix(), zeroframe=data[:, 0])


def test_errors_match(k):
    def both_raise(exc, match, data, pixeldq, exp, params):
        with pytest.raises(exc, match=match):
            refpix.correct_refpix(data, pixeldq, exp, params)
        with pytest.raises(exc, match=match):
            cuda_refpix.correct_refpix(k, k.put(data), k.put(pixeldq), exp, params)

    irs2 = _exposure("NIRSPEC", "NRS1", "FULL", (1, 1), (2048, 3200), (2, 1), 4)
    data = np.zeros((1, 1, 3200, 2048), dtype=np.float32)
    both_raise(NotImplementedError, "IRS2", data, np.zeros((3200, 2048), np.uint32), irs2, Refpix())
    miri = _exposure("MIRI", "MIRIMAGE", "FULL", (1, 1), (1032, 1024), (1, 2), 4)
    data = np.zeros((1, 1, 1024, 1040), dtype=np.float32)
    both_raise(InputError, "MIRI", data, np.zeros((1024, 1040), np.uint32), miri, Refpix())
    data = np.zeros((1, 1, 64, 2048), dtype=np.float32)
    pixeldq = _mask_pixeldq(NRC_GRISM64)
    bad = Refpix(side_smoothing_length=1)
    both_raise(ConfigError, "side_smoothing_length", data, pixeldq, NRC_GRISM64, bad)
    wrong = replace(NRC_GRISM64, subsize2=63)
    both_raise(InputError, "SUBSIZE2", data, pixeldq, wrong, Refpix())
    # 1-output, odd_even_columns, reference pixels in one detector-column parity only
    data = np.zeros((1, 1, 32, 2048), dtype=np.float32)
    pixeldq = _mask_pixeldq(SOSS_LIKE)
    pixeldq[1::2, :] = 0  # NIRISS: detector columns run along DMS rows
    both_raise(InputError, "parity", data, pixeldq, SOSS_LIKE, Refpix())


# ---------------------------------------------------------------------------------------
# Simulated segments


@pytest.mark.parametrize(
    ("mode", "kwargs"),
    [
        ("nrs_bots", dict(ncols=128)),
        ("niriss_soss", dict(ncols=256, nrows=64)),
        ("nircam_grism", dict()),
    ],
)
def test_simulated_segments(k, simulated, mode, kwargs):
    from tsogpu.algorithms import dq_init, superbias
    from tsogpu.io.reffiles import load_reference
    from tsogpu.io.uncal import read_uncal

    sim = simulated(mode, nints=3, ngroups=5, seed=5, **kwargs)
    seg = read_uncal(sim.uncal)
    exp = seg.exposure
    mask = load_reference("mask", sim.refs["mask"], exp)
    bias = load_reference("superbias", sim.refs["superbias"], exp)
    pixeldq, _ = dq_init.dq_init(seg.pixeldq, seg.groupdq, mask.arrays["dq"])
    data, pixeldq, zeroframe = superbias.subtract_superbias(
        seg.data, pixeldq, bias.arrays["data"], bias.arrays["dq"], zeroframe=seg.zeroframe
    )
    assert (pixeldq & REF).any()
    assert (zeroframe is not None) == (mode == "nircam_grism")
    for first_plane in (True, False):
        _, _, status = _compare(
            k, data, pixeldq, exp, Refpix(), zeroframe=zeroframe, first_plane=first_plane
        )
        assert status == "COMPLETE"
    _compare(k, data, pixeldq, exp, Refpix(odd_even_columns=False, use_side_ref_pixels=False))
