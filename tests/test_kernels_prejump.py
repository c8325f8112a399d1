"""The pre-jump steps' kernels (kernels/<step>.cu, tsogpu/launchers/<step>.py) against the
NumPy pre-jump steps, bit for bit.

Each launcher runs on the same inputs as its NumPy function (tsogpu/algorithms/): random
arrays over every branch, hand-built cases, and simulated segments of the three modes run
through the NumPy pipeline step by step. Outputs must have the same dtype, shape and bytes.
Arrays the launchers allocate are filled with poison first, so an element a kernel fails to
write shows up.
"""

import itertools

import numpy as np
import pytest

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
from tsogpu.errors import InputError
from tsogpu.launchers import dark_current as kdark_current
from tsogpu.launchers import dq_init as kdq_init
from tsogpu.launchers import gain_scale as kgain_scale
from tsogpu.launchers import group_scale as kgroup_scale
from tsogpu.launchers import linearity as klinearity
from tsogpu.launchers import saturation as ksaturation
from tsogpu.launchers import sources
from tsogpu.launchers import superbias as ksuperbias

F32 = np.float32
DNU = dq.DO_NOT_USE
SAT = dq.SATURATED
NSC = dq.NO_SAT_CHECK
NLC = dq.NO_LIN_CORR

# NaN and inf inputs make NumPy warn in the reference functions
pytestmark = pytest.mark.filterwarnings(
    "ignore:invalid value encountered:RuntimeWarning",
    "ignore:overflow encountered:RuntimeWarning",
)


class _PoisonXP:
    """The array module with ``empty`` returning poisoned arrays: a finite float that no step
    produces here (so it is caught where NaNs are compared loosely), all-ones integers."""

    def __init__(self, xp):
        self._xp = xp

    def __getattr__(self, name):
        return getattr(self._xp, name)

    def empty(self, shape, dtype=np.float64):
        dtype = np.dtype(dtype)
        poison = -1.2345e37 if dtype.kind == "f" else np.iinfo(dtype).max
        return self._xp.full(shape, poison, dtype=dtype)


class _Poisoned:
    def __init__(self, kernels):
        self._k = kernels
        self.xp = _PoisonXP(kernels.xp)

    def launch(self, name, n, *args):
        self._k.launch(name, n, *args)


@pytest.fixture
def k(kernels):
    return _Poisoned(kernels)


def _dev(kernels, *arrays):
    return [None if a is None else kernels.put(np.ascontiguousarray(a)) for a in arrays]


def _host(kernels, a):
    return None if a is None else np.asarray(kernels.get(a))


def _assert_same(kernels, got, want, what=""):
    """Same dtype, shape and bytes (so -0.0 != 0.0); None alike.

    NaN payloads must match too on the host build (x86 propagates an operand's NaN as NumPy
    does); a GPU returns the canonical NaN from arithmetic on a NaN, so on the device a NaN
    only has to meet a NaN.
    """
    if want is None:
        assert got is None, what
        return
    got = _host(kernels, got)
    want = np.asarray(want)
    assert got.dtype == want.dtype, (what, got.dtype, want.dtype)
    assert got.shape == want.shape, (what, got.shape, want.shape)
    if got.tobytes() != want.tobytes():
        diff = got.view(f"u{got.itemsize}") != want.view(f"u{want.itemsize}")
        if kernels.name != "host" and got.dtype.kind == "f":
            diff &= ~(np.isnan(got) & np.isnan(want))
        if diff.any():
            first = [tuple(i) for i in np.argwhere(diff)[:5].tolist()]
            raise AssertionError(f"{what}: {diff.sum()} of {want.size} differ; first at {first}")


def _assert_all_same(kernels, got, want, names):
    assert len(got) == len(want)
    for g, w, name in zip(got, want, names, strict=True):
        _assert_same(kernels, g, w, name)


def _specials(rng, a, frac=0.02):
    """Sprinkle NaN, +-inf, +-0.0 and a subnormal into a float32 array (in place)."""
    for value in (np.nan, np.inf, -np.inf, 0.0, -0.0, 1e-40):
        a[rng.random(a.shape) < frac] = F32(value)
    return a


SHAPES = [(1, 1, 1, 1), (1, 2, 3, 1), (2, 3, 5, 7), (3, 5, 9, 11), (1, 6, 16, 3)]


# ---------------------------------------------------------------------------------------------
# group_scale, dq_init, gain_scale


@pytest.mark.parametrize(("nframes", "divisor"), [(5, 4), (3, 2), (6, 4), (4, 4), (7, 3), (1, 9)])
@pytest.mark.parametrize("shape", SHAPES[1:4])
def test_group_scale(kernels, k, nframes, divisor, shape):
    rng = np.random.default_rng(nframes * 10 + divisor)
    data = _specials(rng, rng.uniform(-1e5, 1e5, shape).astype(F32))
    data[rng.random(shape) < 0.05] = F32(3.4e38)  # overflows to inf when scaled up
    (d,) = _dev(kernels, data)
    out = kgroup_scale.group_scale(k, d, nframes, divisor)
    _assert_same(kernels, out, group_scale.group_scale(data, nframes, divisor), "data")
    _assert_same(kernels, d, data, "input")


@pytest.mark.parametrize("shape", SHAPES)
def test_dq_init(kernels, k, shape):
    rng = np.random.default_rng(sum(shape))
    gdq = rng.integers(0, 256, shape, dtype=np.uint8)
    pdq = rng.integers(0, 2**32, shape[2:], dtype=np.uint64).astype(np.uint32)
    mask = rng.integers(0, 2**32, shape[2:], dtype=np.uint64).astype(np.uint32)
    d = _dev(kernels, pdq, gdq, mask)
    got = kdq_init.dq_init(k, *d)
    want = dq_init.dq_init(pdq, gdq, mask)
    _assert_all_same(kernels, got, want, ("pixeldq", "groupdq"))


@pytest.mark.parametrize("factor", [2.0, 1.37, 0.7123456789, 1e-25, 3e20, -0.5])
@pytest.mark.parametrize("shape", [(1, 1), (4, 5), (3, 4, 5)])
@pytest.mark.parametrize("variances", ["both", "none", "empty"])
def test_gain_scale(kernels, k, factor, shape, variances):
    rng = np.random.default_rng(len(shape))
    arrays = [_specials(rng, rng.uniform(-10, 1000, shape).astype(F32)) for _ in range(4)]
    if variances == "none":
        arrays[2] = arrays[3] = None
    elif variances == "empty":
        arrays[3] = np.zeros((0,), F32)
    d = _dev(kernels, *arrays)
    with np.errstate(over="ignore"):  # float32(3e20**2) is inf in both
        want = gain_scale.gain_scale(*arrays, factor)
        got = kgain_scale.gain_scale(k, *d, factor)
    _assert_all_same(kernels, got, want, ("sci", "err", "var_poisson", "var_rnoise"))
    if variances == "empty":
        assert got[3] is d[3]


# ---------------------------------------------------------------------------------------------
# saturation


def _sat_inputs(rng, shape, with_bias, with_zf):
    nints, ngroups, ny, nx = shape
    thresh = rng.uniform(900, 1100, (ny, nx)).astype(F32)
    start = rng.uniform(-60, 500, (nints, 1, ny, nx))
    slope = rng.uniform(0, 450, (nints, 1, ny, nx))
    jump = np.where(rng.random(shape) < 0.15, rng.uniform(0, 900, shape), 0.0).cumsum(axis=1)
    data = (start + slope * np.arange(ngroups)[:, None, None] + jump).astype(F32)
    drop = rng.random(shape) < 0.05  # falls back below threshold after saturating
    data[drop] = F32(300.0)
    at = rng.random(shape) < 0.04  # exactly at the threshold, and one float32 step below
    data[at] = np.broadcast_to(thresh, shape)[at]
    below = rng.random(shape) < 0.04
    data[below] = np.nextafter(np.broadcast_to(thresh, shape)[below], F32(0))
    data = _specials(rng, data, 0.01)
    thresh[rng.random(thresh.shape) < 0.05] = np.nan
    sat_dq = rng.choice(np.array([0, 0, 0, NSC, dq.PIXEL["HOT"], NSC | 1], np.uint32), (ny, nx))
    gdq = rng.choice(
        np.array([0] * 12 + [SAT, DNU, dq.JUMP_DET, 255, dq.AD_FLOOR], np.uint8), shape
    )
    pdq = rng.integers(0, 2**32, (ny, nx), dtype=np.uint64).astype(np.uint32)
    bias = None
    if with_bias:
        bias = rng.uniform(0, 120, (ny, nx)).astype(F32)
        bias[rng.random(bias.shape) < 0.1] = np.nan
    zf = None
    if with_zf:
        zf = rng.uniform(-100, 1150, (nints, ny, nx)).astype(F32)
        at = rng.random(zf.shape) < 0.05
        zf[at] = np.broadcast_to(thresh, zf.shape)[at]
        zf = _specials(rng, zf, 0.02)
    return data, gdq, pdq, thresh, sat_dq, bias, zf


def _run_sat(kernels, k, data, gdq, pdq, thresh, sat_dq, **kw):
    d = _dev(kernels, data, gdq, pdq, thresh, sat_dq)
    dkw = dict(kw)
    for name in ("bias", "zeroframe"):
        if kw.get(name) is not None:
            (dkw[name],) = _dev(kernels, kw[name])
    before = [a.copy() for a in (data, gdq, pdq, thresh, sat_dq)]
    got = ksaturation.flag_saturation(k, *d, **dkw)
    want = saturation.flag_saturation(data, gdq, pdq, thresh, sat_dq, **kw)
    _assert_all_same(kernels, got, want, ("groupdq", "pixeldq", "zeroframe"))
    for a, b in zip(d, before, strict=True):
        _assert_same(kernels, a, b, "input")
    return want


@pytest.mark.parametrize("half", [0, 1, 2, 70])
def test_saturation_growth_kernel(kernels, half):
    """tso_pj_sat_grow_sat: SATURATED added where any pixel of the (2 half + 1)^2 box (clipped
    at the edges) has it; other bits kept. Rows wider than the host's column blocks, rows
    split between threads, blocks with no SATURATED (copied), and a box wider than its
    buffer's margin."""
    rng = np.random.default_rng(half)
    planes, ny, nx = 3, 5, 2500
    flags = rng.choice(np.array([0, SAT, DNU, SAT | DNU, 4], np.uint8), (planes, ny, nx),
                       p=[0.97, 0.01, 0.01, 0.005, 0.005])  # fmt: skip
    flags[1, :, 1020:1030] = 0
    flags[1, 2, 1023] = SAT  # at the end of a column block
    flags[2, :, 1000:] &= np.uint8(~SAT & 0xFF)  # column blocks without SATURATED, other bits kept
    f, dqv = _dev(kernels, flags, np.asarray(sources.dq_values()))
    out = kernels.put(np.full(flags.shape, 0xEE, np.uint8))  # poison
    kernels.launch(
        "tso_pj_sat_grow_sat", flags.size, f, dqv, out, np.int64(ny), np.int64(nx),
        np.int64(half), np.int64(flags.size),
    )  # fmt: skip
    sat = np.pad((flags & SAT) != 0, ((0, 0), (half, half), (half, half)))
    box = np.zeros(flags.shape, bool)
    for dy in range(2 * half + 1):
        for dx in range(2 * half + 1):
            box |= sat[:, dy : dy + ny, dx : dx + nx]
    want = flags | np.where(box, SAT, 0).astype(np.uint8)
    _assert_same(kernels, out, want, "grown")


SAT_CASES = [
    (shape, nframes, grow, readpatt)
    for shape, nframes, grow, readpatt in itertools.product(
        SHAPES, (1, 2, 4, 5), (0, 1, 2), (True, False)
    )
    if readpatt or nframes in (1, 4)
]


@pytest.mark.parametrize(("shape", "nframes", "grow", "readpatt"), SAT_CASES)
def test_saturation_random(kernels, k, shape, nframes, grow, readpatt):
    seed = hash((shape, nframes, grow, readpatt)) % 2**32
    rng = np.random.default_rng(seed)
    with_bias, with_zf = bool(seed % 2), bool(seed // 2 % 2) or shape[1] == 6
    data, gdq, pdq, thresh, sat_dq, bias, zf = _sat_inputs(rng, shape, with_bias, with_zf)
    _run_sat(
        kernels,
        k,
        data,
        gdq,
        pdq,
        thresh,
        sat_dq,
        bias=bias,
        zeroframe=zf,
        nframes=nframes,
        n_pix_grow_sat=grow,
        use_readpatt=readpatt,
    )


def test_saturation_branches_are_hit(kernels, k):
    # a larger random case where every pass changes something: SATURATED from data and grown,
    # AD_FLOOR, partial saturation (grown DO_NOT_USE), the group-2 test, ZEROFRAME zeroing
    rng = np.random.default_rng(42)
    shape = (3, 5, 24, 20)
    data, gdq, pdq, thresh, sat_dq, bias, zf = _sat_inputs(rng, shape, True, True)
    gdq[...] = 0
    kw = dict(bias=bias, zeroframe=zf, nframes=4, n_pix_grow_sat=1)
    want = _run_sat(kernels, k, data, gdq, pdq, thresh, sat_dq, **kw)
    no_rp = saturation.flag_saturation(data, gdq, pdq, thresh, sat_dq, **kw, use_readpatt=False)
    no_grow = saturation.flag_saturation(data, gdq, pdq, thresh, sat_dq, **{**kw, "bias": None})
    assert (want[0] & SAT).any() and (want[0] & dq.AD_FLOOR).any()
    assert ((want[0] & DNU) & ~(no_rp[0] & DNU)).any()  # backward pass / group-2 test
    assert (want[0][:, 1] != no_grow[0][:, 1]).any()  # the bias changes the group-2 test
    assert (want[2] == 0).any() and (want[2] != 0).any()


def _ramp(nints, ngroups, ny, nx, value=0.0):
    data = np.full((nints, ngroups, ny, nx), value, dtype=F32)
    return data, np.zeros(data.shape, np.uint8), np.zeros((ny, nx), np.uint32)


def test_saturation_hand_built(kernels, k):
    """The catalogue cases of tests/test_steps_prejump.py, through both."""
    st = lambda ny, nx, v=1000.0: np.full((ny, nx), v, F32)  # noqa: E731
    # growth clipped at a corner, n=2
    data, gdq, pdq = _ramp(1, 2, 5, 6, 100.0)
    data[0, 1, 0, 0] = 2000.0
    _run_sat(kernels, k, data, gdq, pdq, st(5, 6), pdq, n_pix_grow_sat=2)
    # input SATURATED bits are grown
    data, gdq, pdq = _ramp(1, 1, 3, 3, 100.0)
    gdq[0, 0, 1, 1] = SAT
    _run_sat(kernels, k, data, gdq, pdq, st(3, 3), pdq, n_pix_grow_sat=1)
    # backward pass: NFRAMES=4 and the float64 compare (NFRAMES=3)
    data, gdq, pdq = _ramp(1, 3, 3, 3, 100.0)
    data[0, :, 1, 1] = [500.0, 900.0, 1200.0]
    want = _run_sat(kernels, k, data, gdq, pdq, st(3, 3), pdq, nframes=4, n_pix_grow_sat=1)
    assert (want[0][0, 1] == DNU).all()
    data, gdq, pdq = _ramp(1, 4, 1, 1)
    data[0, :, 0, 0] = [100.0, 200.0, F32("21995.01"), 30000.0]
    _run_sat(kernels, k, data, gdq, pdq, st(1, 1, F32("24744.387")), pdq, nframes=3)
    # group-2 test with a bias, and with a NaN bias
    data, gdq, pdq = _ramp(1, 3, 3, 3, 100.0)
    data[0, :, 1, 1] = [100.0, 700.0, 1100.0]
    bias = np.full((3, 3), 50.0, dtype=F32)
    want = _run_sat(
        kernels, k, data, gdq, pdq, st(3, 3), pdq, bias=bias, nframes=4, n_pix_grow_sat=0
    )
    assert want[0][0, 1, 1, 1] == DNU
    bias[1, 1] = np.nan
    _run_sat(kernels, k, data, gdq, pdq, st(3, 3), pdq, bias=bias, nframes=4, n_pix_grow_sat=0)
    # ZEROFRAME
    data, gdq, pdq = _ramp(2, 2, 3, 4, 100.0)
    zf = np.full((2, 3, 4), 50.0, dtype=F32)
    zf[0, 0, 0], zf[1, 2, 3], zf[1, 0, 0] = 1000.0, -1.0, np.nan
    _run_sat(kernels, k, data, gdq, pdq, st(3, 4), pdq, zeroframe=zf, n_pix_grow_sat=1)


# ---------------------------------------------------------------------------------------------
# superbias


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("with_zf", [True, False])
def test_superbias(kernels, k, shape, with_zf):
    rng = np.random.default_rng(sum(shape) + with_zf)
    data = _specials(rng, rng.uniform(0, 60000, shape).astype(F32))
    pdq = rng.integers(0, 2**32, shape[2:], dtype=np.uint64).astype(np.uint32)
    bias = _specials(rng, rng.uniform(5000, 20000, shape[2:]).astype(F32), 0.1)
    bdq = rng.integers(0, 2**32, shape[2:], dtype=np.uint64).astype(np.uint32)
    zf = None
    if with_zf:
        zf = _specials(rng, rng.uniform(0, 60000, (shape[0],) + shape[2:]).astype(F32), 0.1)
    d = _dev(kernels, data, pdq, bias, bdq, zf)
    got = ksuperbias.subtract_superbias(k, *d[:4], zeroframe=d[4])
    want = superbias.subtract_superbias(data, pdq, bias, bdq, zf)
    _assert_all_same(kernels, got, want, ("data", "pixeldq", "zeroframe"))


# ---------------------------------------------------------------------------------------------
# linearity


def _coeffs(rng, n, ny, nx, realistic, inverse=False):
    if realistic:
        mean = [0.0, 1.0, -2.0, 1.0, -0.5] if inverse else [0.0, 1.0, 2.0, -1.0, 0.5]
        scale = np.array([1.0, 1.0, 1e-6, 1e-11, 1e-16, 1e-21])[:n, None, None]
        mean = (mean + [0.1])[:n]
        c = rng.normal(mean, 0.1, size=(ny, nx, n)).transpose(2, 0, 1) * scale
    else:
        c = rng.normal(size=(n, ny, nx)) * 1e-3
    c = c.astype(F32)
    c[:, rng.random((ny, nx)) < 0.08] = np.nan  # all NaN
    c[rng.integers(0, n), rng.random((ny, nx)) < 0.08] = np.nan  # one NaN
    c[1, rng.random((ny, nx)) < 0.08] = F32(0.0)
    c[1, rng.random((ny, nx)) < 0.03] = F32(-0.0)
    return c


def _lin_inputs(rng, shape, ncoeffs, ninv, realistic):
    nints, ngroups, ny, nx = shape
    ramp = rng.uniform(0, 8000, (nints, 1, ny, nx)) * np.arange(1, ngroups + 1)[:, None, None]
    data = _specials(rng, (ramp + rng.uniform(-100, 100, shape)).astype(F32), 0.01)
    gdq = np.zeros(shape, np.uint8)
    gdq[rng.random(shape) < 0.05] = DNU
    sat_start = rng.integers(0, ngroups + 3, size=(nints, 1, ny, nx))
    gdq[np.arange(ngroups)[:, None, None] >= sat_start] |= SAT
    gdq[rng.random(shape) < 0.03] |= SAT  # SATURATED gaps too
    pdq = rng.integers(0, 2**32, (ny, nx), dtype=np.uint64).astype(np.uint32)
    coeffs = _coeffs(rng, ncoeffs, ny, nx, realistic)
    inv = _coeffs(rng, ninv, ny, nx, realistic, inverse=True)
    lin_dq = rng.choice(np.array([0, 0, 0, NLC, dq.PIXEL["NONLINEAR"]], np.uint32), (ny, nx))
    zf = (data[:, 0] - F32(5.0)).astype(F32)
    zf[rng.random(zf.shape) < 0.1] = F32(0.0)
    zf[rng.random(zf.shape) < 0.05] = F32(-0.0)
    return data, gdq, pdq, coeffs, lin_dq, inv, zf


LIN_CASES = [
    (shape, ncoeffs, ninv, nframes, with_inv, realistic)
    for shape, (ncoeffs, ninv), nframes, with_inv, realistic in itertools.product(
        [(1, 2, 4, 3), (2, 3, 5, 7), (2, 5, 6, 5)],
        [(5, 5), (2, 3), (4, 6)],
        (1, 2, 5),
        (True, False),
        (True, False),
    )
    if with_inv or nframes == 1
]


@pytest.mark.parametrize(
    ("shape", "ncoeffs", "ninv", "nframes", "with_inv", "realistic"), LIN_CASES
)
def test_linearity(kernels, k, shape, ncoeffs, ninv, nframes, with_inv, realistic):
    rng = np.random.default_rng(hash((shape, ncoeffs, ninv, nframes, with_inv)) % 2**32)
    data, gdq, pdq, coeffs, lin_dq, inv, zf = _lin_inputs(rng, shape, ncoeffs, ninv, realistic)
    inv = inv if with_inv else None
    zf = zf if nframes != 2 else None
    d = _dev(kernels, data, gdq, pdq, coeffs, lin_dq, zf, inv)
    kw = dict(zeroframe=zf, inv_coeffs=inv, nframes=nframes)
    want = linearity.correct_linearity(data, gdq, pdq, coeffs, lin_dq, **kw)
    got = klinearity.correct_linearity(k, *d[:5], zeroframe=d[5], inv_coeffs=d[6], nframes=nframes)
    _assert_all_same(kernels, got, want, ("data", "pixeldq", "zeroframe"))
    changed = want[0] != data
    assert changed.any()
    for a, b in zip(d, (data, gdq, pdq, coeffs, lin_dq, zf, inv), strict=True):
        _assert_same(kernels, a, b, "input")


def test_linearity_prepare_coefficients(kernels, k):
    rng = np.random.default_rng(8)
    for ncoeffs in (2, 3, 7):
        coeffs = _coeffs(rng, ncoeffs, 9, 8, False)
        lin_dq = rng.choice(np.array([0, NLC, 5], np.uint32), (9, 8))
        pdq = rng.integers(0, 2**32, (9, 8), dtype=np.uint64).astype(np.uint32)
        got = klinearity.prepare_coefficients(k, *_dev(kernels, coeffs, lin_dq, pdq))
        want = linearity.prepare_coefficients(coeffs, lin_dq, pdq)
        _assert_all_same(kernels, got, want, ("coeffs", "pixeldq"))


def test_linearity_read_level_needs_two_groups(kernels, k):
    coeffs = np.zeros((2, 1, 1), dtype=F32)
    coeffs[1] = 1.0
    data, gdq, pdq = _ramp(1, 1, 1, 1, 5.0)
    d = _dev(kernels, data, gdq, pdq, coeffs, pdq)
    with pytest.raises(InputError, match="ngroups"):
        klinearity.correct_linearity(k, *d, inv_coeffs=d[3], nframes=2)


# ---------------------------------------------------------------------------------------------
# dark_current

DARK_CASES = [
    # (nframes, groupgap, ngroups, dark_nframes, dark_groupgap, dark groups)
    (1, 0, 5, 1, 0, 8),  # direct
    (1, 0, 6, 1, 0, 4),  # direct after extrapolation (float64 dark)
    (1, 0, 1, 1, 0, 3),  # one group
    (4, 1, 3, 1, 0, 20),  # frame averaging
    (4, 1, 3, 1, 0, 7),  # averaging after extrapolation
    (5, 0, 3, 1, 0, 15),
    (2, 0, 4, 2, 0, 10),  # NFRAMES equal to the dark's: direct
    (2, 0, 6, 2, 0, 3),  # ... after extrapolation
    (8, 12, 2, 1, 0, 40),  # averaging with a long gap
    (1, 2, 3, 1, 0, 9),  # NFRAMES 1, GROUPGAP differs: frame copies
    (1, 2, 3, 1, 0, 4),  # ... after extrapolation (float64 rounded to float32)
    (4, 0, 3, 2, 0, 6),  # dark groups taken as frames: shortened and empty slices (NaN)
    (4, 0, 3, 2, 0, 4),  # ... after extrapolation
    (4, 2, 3, 2, 1, 5),
    (1, 0, 3, 2, 0, 10),  # dark NFRAMES larger: skipped
    (2, 0, 3, 1, 1, 10),  # dark GROUPGAP larger: skipped
]


@pytest.mark.parametrize(("nframes", "groupgap", "ngroups", "dnf", "dgg", "ngd"), DARK_CASES)
def test_dark(kernels, k, nframes, groupgap, ngroups, dnf, dgg, ngd):
    rng = np.random.default_rng(ngd * 7 + nframes + 100 * ngroups)
    nints, ny, nx = 2, 7, 9
    data = rng.uniform(-100, 40000, size=(nints, ngroups, ny, nx)).astype(F32)
    data[:, :, :4] = rng.uniform(-30, 30, size=(nints, ngroups, 4, nx))
    data = _specials(rng, data, 0.01)
    pdq = rng.integers(0, 2**32, (ny, nx), dtype=np.uint64).astype(np.uint32)
    dark = np.cumsum(rng.uniform(0, 3.3, size=(ngd, ny, nx)), axis=0).astype(F32)
    dark[rng.random(dark.shape) < 0.05] = np.nan
    ddq = rng.integers(0, 2**32, (ny, nx), dtype=np.uint64).astype(np.uint32)
    kw = dict(nframes=nframes, groupgap=groupgap, dark_nframes=dnf, dark_groupgap=dgg)
    d = _dev(kernels, data, pdq, dark, ddq)
    want = dark_current.subtract_dark(data, pdq, dark, ddq, **kw)
    got = kdark_current.subtract_dark(k, *d, **kw)
    if want is None:
        assert got is None
        return
    _assert_all_same(kernels, got, want, ("data", "pixeldq"))
    per_group = dark_current.prepare_dark(dark, ngroups, nframes, groupgap, dnf, dgg)
    _assert_same(
        kernels,
        kdark_current.prepare_dark(k, d[2], ngroups, nframes, groupgap, dnf, dgg),
        per_group,
        "per-group dark",
    )


def test_dark_too_short_fails_alike(kernels, k):
    # NFRAMES 1, GROUPGAP 3, dark 3 frames with GROUPGAP 1: group 1 wants frame 4
    data, _, pdq = _ramp(1, 2, 2, 2, 100.0)
    dark = np.ones((3, 2, 2), F32)
    kw = dict(nframes=1, groupgap=3, dark_nframes=1, dark_groupgap=1)
    with pytest.raises(IndexError, match="the dark has 3 frames, too few for 2 groups"):
        dark_current.subtract_dark(data, pdq, dark, pdq, **kw)
    with pytest.raises(IndexError, match="the dark has 3 frames, too few for 2 groups"):
        kdark_current.subtract_dark(k, *_dev(kernels, data, pdq, dark, pdq), **kw)
    # a one-group dark cannot be extrapolated (stcal reads dark[-2])
    kw = dict(nframes=1, groupgap=0, dark_nframes=1, dark_groupgap=0)
    dark = np.ones((1, 2, 2), F32)
    with pytest.raises(IndexError, match="too few to extrapolate"):
        dark_current.subtract_dark(data, pdq, dark, pdq, **kw)
    with pytest.raises(IndexError, match="too few to extrapolate"):
        kdark_current.subtract_dark(k, *_dev(kernels, data, pdq, dark, pdq), **kw)


# ---------------------------------------------------------------------------------------------
# simulated segments through the NumPy pipeline, step by step

SIM_CASES = {
    "nrs_bots": dict(mode="nrs_bots", nints=3, ngroups=5, ncols=64, seed=21),
    "niriss_soss": dict(
        mode="niriss_soss", nints=3, ngroups=5, ncols=64, nrows=64, seed=22, dark_ngroups=3
    ),
    "nircam_grism": dict(mode="nircam_grism", nints=3, ngroups=5, ncols=64, nrows=32, seed=23),
    "nircam_grism_nframes2": dict(
        mode="nircam_grism",
        nints=2,
        ngroups=5,
        ncols=64,
        nrows=32,
        seed=24,
        nframes=2,
        groupgap=1,
        frame_divisor=4,
        zeroframe=True,
        dark_ngroups=6,
    ),
}


def _snapshot(seg):
    return {
        "data": seg.data.copy(),
        "groupdq": seg.groupdq.copy(),
        "pixeldq": seg.pixeldq.copy(),
        "zeroframe": None if seg.zeroframe is None else seg.zeroframe.copy(),
    }


@pytest.mark.slow
@pytest.mark.parametrize("case", SIM_CASES, ids=list(SIM_CASES))
def test_simulated_segments(kernels, k, simulated, case):
    from tsogpu.config import PipelineConfig
    from tsogpu.io.reffiles import segment_references
    from tsogpu.io.uncal import read_uncal
    from tsogpu.pipeline import run_prejump

    kw = dict(SIM_CASES[case])
    sim = simulated(kw.pop("mode"), **kw)
    segment = read_uncal(sim.uncal)
    config = PipelineConfig(refs={t: str(p) for t, p in sim.refs.items()})
    refs, _ = segment_references(sim.uncal, config)
    exp = segment.exposure
    states = [("uncal", _snapshot(segment))]
    result = run_prejump(
        segment, refs, config, on_step=lambda step, seg: states.append((step, _snapshot(seg)))
    )

    def dev(a):
        return None if a is None else kernels.put(np.ascontiguousarray(a))

    checked = []
    for (_, before), (step, after) in itertools.pairwise(states):
        if result.step_status[step] != "COMPLETE":
            continue
        b = {name: dev(a) for name, a in before.items()}
        ref = refs.get(
            {
                "dq_init": "mask",
                "saturation": "saturation",
                "superbias": "superbias",
                "linearity": "linearity",
                "dark_current": "dark",
            }.get(step, ""),
        )
        arr = {} if ref is None else {n: dev(a) for n, a in ref.arrays.items()}
        if step == "group_scale":
            got = {"data": kgroup_scale.group_scale(k, b["data"], exp.nframes, exp.frame_divisor)}
        elif step == "dq_init":
            p, g = kdq_init.dq_init(k, b["pixeldq"], b["groupdq"], arr["dq"])
            got = {"pixeldq": p, "groupdq": g}
        elif step == "saturation":
            params = config.params("saturation")
            g, p, z = ksaturation.flag_saturation(
                k,
                b["data"],
                b["groupdq"],
                b["pixeldq"],
                arr["data"],
                arr["dq"],
                bias=dev(refs["superbias"].arrays["data"]),
                zeroframe=b["zeroframe"],
                nframes=exp.nframes,
                n_pix_grow_sat=params.n_pix_grow_sat,
                use_readpatt=params.use_readpatt,
            )
            got = {"groupdq": g, "pixeldq": p, "zeroframe": z}
        elif step == "superbias":
            s, p, z = ksuperbias.subtract_superbias(
                k, b["data"], b["pixeldq"], arr["data"], arr["dq"], zeroframe=b["zeroframe"]
            )
            got = {"data": s, "pixeldq": p, "zeroframe": z}
        elif step == "linearity":
            s, p, z = klinearity.correct_linearity(
                k,
                b["data"],
                b["groupdq"],
                b["pixeldq"],
                arr["coeffs"],
                arr["dq"],
                zeroframe=b["zeroframe"],
                inv_coeffs=arr.get("inv_coeffs"),
                nframes=exp.nframes,
            )
            got = {"data": s, "pixeldq": p, "zeroframe": z}
        elif step == "dark_current":
            s, p = kdark_current.subtract_dark(
                k,
                b["data"],
                b["pixeldq"],
                arr["data"],
                arr["dq"],
                nframes=exp.nframes,
                groupgap=exp.groupgap,
                dark_nframes=int(ref.header["NFRAMES"]),
                dark_groupgap=int(ref.header["GROUPGAP"]),
            )
            got = {"data": s, "pixeldq": p}
        else:  # refpix: not this file's
            continue
        for name, value in got.items():
            _assert_same(kernels, value, after[name], f"{step}: {name}")
        checked.append(step)
    expected = ["dq_init", "saturation", "superbias", "linearity", "dark_current"]
    if exp.frame_divisor not in (None, exp.nframes):
        expected.insert(0, "group_scale")
    assert checked == expected
