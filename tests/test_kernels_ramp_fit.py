"""ramp_fit kernels (kernels/ramp_fit.cu, tsogpu/launchers/ramp_fit.py) against the NumPy backend.

Every array of ``rateints`` and ``rate`` must be bit-identical to
``tsogpu.algorithms.ramp_fit.fit_ramps``: DQ equal, floats equal as bits (so -0.0 != 0.0),
NaNs in the same places (a NaN's sign and payload are not compared: NumPy's own NaN results
depend on array positions, see the module doc of ramp_fit.py).
"""

import re
from dataclasses import replace

import numpy as np
import pytest

from tsogpu import dq
from tsogpu.algorithms import ramp_fit as np_rf
from tsogpu.algorithms import ramp_fit_fast
from tsogpu.config import RampFit
from tsogpu.launchers import ramp_fit as cu_rf
from tsogpu.launchers import sources

DNU = dq.DO_NOT_USE
SAT = dq.SATURATED
JUMP = dq.JUMP_DET
PERS = dq.PIXEL["PERSISTENCE"]
CL = dq.CHARGELOSS
FIELDS = ("sci", "err", "dq", "var_poisson", "var_rnoise")
POISON_F32 = np.float32(-1234.5)
POISON_U32 = np.uint32(0xDEADBEEF)


class _PoisonXp:
    """The array module, with ``empty`` returning poisoned arrays (unwritten outputs show)."""

    def __init__(self, xp):
        self._xp = xp

    def __getattr__(self, name):
        return getattr(self._xp, name)

    def empty(self, shape, dtype=float):
        dtype = np.dtype(dtype)
        poison = POISON_U32 if dtype == np.uint32 else POISON_F32
        return self._xp.full(shape, poison, dtype=dtype)


class _Poisoned:
    def __init__(self, kernels):
        self.kernels = kernels
        self.xp = _PoisonXp(kernels.xp)

    def launch(self, *args):
        self.kernels.launch(*args)


def _assert_same(got, want, label):
    got, want = np.asarray(got), np.asarray(want)
    assert got.dtype == want.dtype and got.shape == want.shape, label
    if got.dtype.kind == "f":
        nan_g, nan_w = np.isnan(got), np.isnan(want)
        if not np.array_equal(nan_g, nan_w):
            first = np.argwhere(nan_g != nan_w)[:5].tolist()
            raise AssertionError(f"{label}: NaN positions differ, first at {first}")
        got = np.where(nan_g, 0, got).astype(got.dtype)
        want = np.where(nan_w, 0, want).astype(want.dtype)
    u = f"u{got.itemsize}"
    diff = got.view(u) != want.view(u)
    if diff.any():
        first = np.argwhere(diff)[:5].tolist()
        at = tuple(first[0])
        raise AssertionError(
            f"{label}: {diff.sum()} of {diff.size} differ, first at {first}: "
            f"{got[at]!r} != {want[at]!r}"
        )


def _run_both(kernels, arrays, params, timing, dark=None, zeroframe=None):
    """Both backends on the same inputs; asserts bit identity and untouched inputs."""
    inputs = [a for a in (*arrays, dark, zeroframe) if a is not None]
    copies = [a.copy() for a in inputs]
    want = ramp_fit_fast.fit_ramps(
        *arrays, params, average_dark_current=dark, zeroframe=zeroframe, **timing
    )
    put = kernels.put
    dev = [put(a) for a in arrays]
    got = cu_rf.fit_ramps(
        _Poisoned(kernels),
        *dev,
        params,
        average_dark_current=None if dark is None else put(dark),
        zeroframe=None if zeroframe is None else put(zeroframe),
        **timing,
    )
    for before, after in zip(copies, inputs, strict=True):
        np.testing.assert_array_equal(before, after)
    for d, a in zip(dev, arrays, strict=True):  # device inputs untouched
        np.testing.assert_array_equal(kernels.get(d), a)
    for product in ("rateints", "rate"):
        for name, g, w in zip(FIELDS, getattr(got, product), getattr(want, product), strict=True):
            _assert_same(kernels.get(g), w, f"{product}.{name}")
    assert (got.chi2 is None) == (want.chi2 is None) == (not params.goodness_of_fit)
    if want.chi2 is not None:
        _assert_same(kernels.get(got.chi2), want.chi2, "chi2")
    return want


# ---------------------------------------------------------------------------------------
# Build constants and helpers


def test_max_groups_matches_the_kernel_header():
    text = (sources.kernel_dir() / "ramp_fit.cuh").read_text()
    value = int(re.search(r"#define RF_MAX_GROUPS (\d+)", text).group(1))
    assert value == cu_rf.RF_MAX_GROUPS
    threshold = float(re.search(r"#define RF_LARGE_VARIANCE_THRESHOLD (\S+)", text).group(1))
    assert threshold == np_rf.LARGE_VARIANCE_THRESHOLD


def test_too_many_groups_is_a_clear_error(kernels):
    n = cu_rf.RF_MAX_GROUPS + 1
    data = kernels.put(np.zeros((1, n, 1, 1), np.float32))
    with pytest.raises(ValueError, match="RF_MAX_GROUPS"):
        cu_rf.fit_ramps(
            kernels,
            data,
            kernels.put(np.zeros((1, n, 1, 1), np.uint8)),
            kernels.put(np.zeros((1, 1), np.uint32)),
            kernels.put(np.ones((1, 1), np.float32)),
            kernels.put(np.ones((1, 1), np.float32)),
            RampFit(),
            nframes=1,
            groupgap=0,
            tgroup=1.0,
            tframe=1.0,
        )


def _powf(x, p):
    """powf(x, p) correctly rounded, as the NumPy backend takes it (module doc of ramp_fit)."""
    x32 = x.astype(np.float32).astype(np.float64)
    p32 = np.float64(np.float32(p))
    return np.power(x32, p32).astype(np.float32).astype(np.float64)


def test_weight_table(kernels):
    """Every optimal weight (segment length <= RF_MAX_GROUPS, group, power) as NumPy has it.

    On the host this checks glibc's pow; on a GPU, CUDA's double pow (see rf_weight).
    """
    lmax = cu_rf.RF_MAX_GROUPS
    powers = (0.0, 0.4, 1.0, 3.0, 6.0, 10.0, 2.7)  # the SNR table's, then weighting's P
    out = kernels.put(np.full((lmax + 1) * 7 * lmax, np.nan))
    kernels.launch("tso_rf_weight_table", out.size, out, np.int64(lmax), np.float64(2.7))
    got = kernels.get(out).reshape(lmax + 1, 7, lmax)
    want = np.zeros_like(got)
    for length in range(3, lmax + 1):
        k = np.arange(length, dtype=np.float64)
        mid = (np.float64(length) - 1.0) / 2.0
        w = np.abs((k - mid) * (1.0 / mid))
        for c, p in enumerate(powers):
            want[length, c, :length] = _powf(w, p)
    _assert_same(got, want, "weights")


# ---------------------------------------------------------------------------------------
# Random ramps covering every branch


def _random_case(seed, nints, ngroups, ny=9, nx=14, nframes=1, groupgap=0, tframe=1.5):
    """Ramps with noise and a per-pixel mix of every case ramp fitting distinguishes."""
    rng = np.random.default_rng(seed)
    shape = (nints, ngroups, ny, nx)
    tgroup = tframe * (nframes + groupgap)
    gain = rng.uniform(1.0, 2.5, (ny, nx)).astype(np.float32)
    gain[0, :4] = [0.0, np.nan, -1.0, 1e-30]
    rn = rng.uniform(3.0, 25.0, (ny, nx)).astype(np.float32)
    rn[1, :2] = [0.0, np.nan]
    # rates from very faint to bright (every SNR power class), some negative
    rate = 10 ** rng.uniform(-1, 5, (ny, nx)) * rng.choice([-1, 1, 1, 1], (ny, nx))
    t = tgroup * np.arange(1, ngroups + 1)
    level = rate[None, None] * t[None, :, None, None] * rng.uniform(0.8, 1.2, (nints, 1, ny, nx))
    data = level + rng.normal(0.0, 10.0, shape)
    gdq = np.zeros(shape, np.uint8)
    u = rng.random(shape)
    cr = u < 0.08
    gdq[cr] |= JUMP
    data += np.cumsum(np.where(cr, rng.uniform(50, 5000, shape), 0.0), axis=1)
    gdq[(u > 0.08) & (u < 0.11)] |= DNU
    gdq[(u > 0.11) & (u < 0.12)] |= JUMP | DNU
    gdq[(u > 0.12) & (u < 0.15)] |= PERS
    gdq[(u > 0.15) & (u < 0.16)] |= PERS | JUMP
    gdq[(u > 0.16) & (u < 0.18)] |= CL | DNU
    gdq[(u > 0.18) & (u < 0.19)] |= CL
    # saturation from a random group onwards (group 0 included: first group saturated)
    first_sat = np.where(
        rng.random((nints, ny, nx)) < 0.3, rng.integers(0, ngroups, (nints, ny, nx)), ngroups
    )
    for g in range(ngroups):
        gdq[:, g][first_sat <= g] |= SAT
    # whole-pixel cases along row 2..: all saturated, all DNU, one good group, clean
    gdq[:, :, 2, 0] = SAT
    gdq[:, :, 2, 1] = DNU
    gdq[:, :, 2, 2] = DNU
    gdq[:, 0, 2, 2] = 0  # one good group: group 0
    gdq[:, :, 2, 3] = SAT
    gdq[:, 0, 2, 3] = 0  # group 0 good, the rest saturated
    gdq[:, :, 2, 4] = DNU
    gdq[:, -1, 2, 4] = 0  # one good group: the last
    gdq[:, :, 2, 5] = DNU | PERS
    gdq[:, 0, 2, 5] = PERS  # one good group that is PERSISTENCE
    gdq[:, :, 2, 6] = 0
    gdq[:, :, 2, 7] = JUMP  # every group JUMP
    gdq[:, :, 2, 8] = CL | DNU
    if ngroups > 2:
        gdq[:, 1::2, 2, 9] = JUMP | DNU  # alternating: length-1 runs only
        gdq[:, ::3, 2, 10] = JUMP  # runs after JUMP groups
    data[u > 0.99] = np.nan
    data[:, :, 2, 11] = np.nan
    data[:, :, 3, 0] = 0.0  # exactly zero data
    pixeldq = np.zeros((ny, nx), np.uint32)
    pixeldq[3, 1:4] = [DNU, SAT, dq.PIXEL["HOT"]]
    dark = rng.uniform(0.0, 0.5, (ny, nx)).astype(np.float32)
    dark[3, 5] = np.nan
    zeroframe = (rate[None] * tframe + rng.normal(0, 5, (nints, ny, nx))).astype(np.float32)
    zeroframe[rng.random(zeroframe.shape) < 0.2] = 0.0
    zeroframe[rng.random(zeroframe.shape) < 0.05] = np.nan
    timing = dict(nframes=nframes, groupgap=groupgap, tgroup=tgroup, tframe=tframe)
    arrays = (data.astype(np.float32), gdq, pixeldq, gain, rn)
    return arrays, dark, zeroframe, timing


RANGES = [(None, None), (1, None), (None, 3), (1, 3), (3, 1), (-1, 50)]
CASES = [
    # (nints, ngroups, suppress, zeroframe, dark, group range index)
    (nints, ngroups, suppress, zf, dark, rng_i)
    for nints in (1, 3)
    for ngroups in (1, 2, 3, 5, 20)
    for suppress in (True, False)
    for zf, dark, rng_i in ((False, True, 0), (True, False, 0), (True, True, 1 + ngroups % 5))
]


def unchecked_ramp_fit(**params):
    """RampFit with values the configuration refuses (a group range jwst ignores, as the fit
    must): the algorithms are tested on them; tsogpu.parameter_ranges keeps them out of runs."""
    fit = RampFit()
    for name, value in params.items():
        object.__setattr__(fit, name, value)
    return fit


@pytest.mark.parametrize("case", CASES, ids=[f"c{i}" for i in range(len(CASES))])
def test_random_ramps(kernels, case):
    nints, ngroups, suppress, use_zf, use_dark, range_i = case
    seed = 100 + CASES.index(case)
    nframes, groupgap = ((1, 0), (2, 1), (4, 0))[seed % 3]
    arrays, dark, zeroframe, timing = _random_case(
        seed, nints, ngroups, nframes=nframes, groupgap=groupgap
    )
    first, last = RANGES[range_i]
    params = unchecked_ramp_fit(suppress_one_group=suppress, firstgroup=first, lastgroup=last)
    _run_both(
        kernels,
        arrays,
        params,
        timing,
        dark=dark if use_dark else None,
        zeroframe=zeroframe if use_zf else None,
    )


@pytest.mark.parametrize("weighting", ["unweighted", "exponent:2", "exponent:0.7", "optimal"])
@pytest.mark.parametrize("case", CASES[::4], ids=[f"c{i}" for i in range(0, len(CASES), 4)])
def test_random_ramps_weighting_and_chi2(kernels, case, weighting):
    """The options beyond jwst (docs/options.md): ramp_fit.weighting and goodness_of_fit."""
    nints, ngroups, suppress, use_zf, use_dark, range_i = case
    seed = 500 + CASES.index(case)
    arrays, dark, zeroframe, timing = _random_case(seed, nints, ngroups, nframes=2)
    first, last = RANGES[range_i]
    params = unchecked_ramp_fit(
        suppress_one_group=suppress, firstgroup=first, lastgroup=last, weighting=weighting,
        goodness_of_fit=True,
    )  # fmt: skip
    _run_both(
        kernels,
        arrays,
        params,
        timing,
        dark=dark if use_dark else None,
        zeroframe=zeroframe if use_zf else None,
    )


@pytest.mark.parametrize("case", CASES[::3], ids=[f"c{i}" for i in range(0, len(CASES), 3)])
def test_memo_between_flag_sets(kernels, case):
    """fit_ramps' memo (a sweep's points): the same ramps fitted with other JUMP flags, then
    with goodness_of_fit and another weighting (a new key), equal fits without it bit for
    bit; integrations without flags are kept."""
    nints, ngroups, suppress, use_zf, use_dark, range_i = case
    seed = 900 + CASES.index(case)
    arrays, dark, zeroframe, timing = _random_case(seed, nints, ngroups)
    data, gdq, *rest = arrays
    first, last = RANGES[range_i]
    rng = np.random.default_rng(seed)
    put, memo = kernels.put, {}
    extra = dict(
        average_dark_current=put(dark) if use_dark else None,
        zeroframe=put(zeroframe) if use_zf else None,
        **timing,
    )
    for k, (weighting, chi2) in enumerate(
        (("optimal", False), ("optimal", False), ("optimal", True), ("unweighted", False))
    ):
        flags = gdq.copy()
        if k:  # other jumps: some cleared, some added
            jumps = (flags & JUMP) != 0
            flags[jumps & (rng.random(flags.shape) < 0.5)] &= np.uint8(~JUMP & 0xFF)
            flags[rng.random(flags.shape) < 0.03] |= JUMP
            flags[:, :, 2, 6] = 0  # one pixel without flags throughout
        params = unchecked_ramp_fit(
            suppress_one_group=suppress, firstgroup=first, lastgroup=last,
            weighting=weighting, goodness_of_fit=chi2,
        )  # fmt: skip
        dev = [put(a) for a in (data, flags, *rest)]
        got = cu_rf.fit_ramps(kernels, *dev, params, memo=memo, **extra)
        want = cu_rf.fit_ramps(kernels, *dev, params, **extra)
        for product in ("rateints", "rate"):
            pairs = zip(FIELDS, getattr(got, product), getattr(want, product), strict=True)
            for name, g, w in pairs:
                assert kernels.get(g).tobytes() == kernels.get(w).tobytes(), (k, product, name)
        if chi2:
            assert kernels.get(got.chi2).tobytes() == kernels.get(want.chi2).tobytes()
    have = kernels.get(memo["ramp_fit"][3])
    assert have.shape == (nints, 9 * 14)
    if range_i == 0:  # pixel (2, 6) never has a flag: its terms and slopes are kept
        assert (have.reshape(nints, 9, 14)[:, 2, 6] == 3).all()


def test_bit_patterns_chi2(kernels):
    """chi2 on every GROUPDQ pattern of 4 groups over a few flags (segments, NaN cases)."""
    values = np.array([0, DNU, SAT, JUMP, PERS, JUMP | PERS, CL, CL | DNU], np.uint8)
    gdq = np.array(np.meshgrid(*[values] * 4, indexing="ij")).reshape(1, 4, 64, 64)
    rng = np.random.default_rng(4)
    data = (np.arange(4, dtype=np.float32)[None, :, None, None] * 50.0 + 20.0).astype(np.float32)
    data = (data + rng.normal(0, 5, gdq.shape)).astype(np.float32)
    gain = rng.uniform(1.0, 2.0, (64, 64)).astype(np.float32)
    rn = rng.uniform(5.0, 15.0, (64, 64)).astype(np.float32)
    arrays = (data, gdq, np.zeros((64, 64), np.uint32), gain, rn)
    timing = dict(nframes=1, groupgap=0, tgroup=10.0, tframe=10.0)
    for suppress in (True, False):
        params = RampFit(suppress_one_group=suppress, goodness_of_fit=True)
        _run_both(kernels, arrays, params, timing)


@pytest.mark.parametrize("tframe", [1e-3, 10.7, 123.456])
def test_random_ramps_timings(kernels, tframe):
    """Short TGROUP (variances above LARGE_VARIANCE_THRESHOLD) and TGROUP/TFRAME that are not
    float32 numbers (read through a float cast)."""
    arrays, dark, zeroframe, timing = _random_case(7, 2, 6, nframes=3, tframe=tframe)
    for params in (RampFit(), RampFit(suppress_one_group=False)):
        _run_both(kernels, arrays, params, timing, dark=dark, zeroframe=zeroframe)


def test_long_ramps(kernels):
    """Many groups: long segments (every SNR power class), the median over many differences."""
    arrays, dark, zeroframe, timing = _random_case(11, 2, 150, ny=4, nx=12)
    _run_both(kernels, arrays, RampFit(), timing, dark=dark)
    data, gdq, *rest = arrays
    gdq = gdq & np.uint8(0xFF & ~(JUMP | DNU | SAT | CL))  # long clean segments
    data = np.where(np.isnan(data), np.float32(7.0), data)
    _run_both(kernels, (data, gdq, *rest), RampFit(), timing, zeroframe=zeroframe)


def test_infinite_values(kernels):
    """+-inf in the data and ZEROFRAME (the medians, the sums and the SNR see them)."""
    arrays, dark, zeroframe, timing = _random_case(21, 2, 7)
    data = arrays[0].copy()
    rng = np.random.default_rng(21)
    u = rng.random(data.shape)
    data[u < 0.03] = np.inf
    data[u > 0.97] = -np.inf
    zeroframe[rng.random(zeroframe.shape) < 0.1] = np.inf
    for params in (RampFit(), RampFit(suppress_one_group=False)):
        _run_both(kernels, (data, *arrays[1:]), params, timing, dark=dark, zeroframe=zeroframe)


def test_bit_patterns(kernels):
    """Every GROUPDQ pattern of 4 groups over a few flags, one pixel each."""
    values = np.array([0, DNU, SAT, JUMP, PERS, JUMP | PERS, CL, CL | DNU], np.uint8)
    combos = np.array(np.meshgrid(*[values] * 4, indexing="ij")).reshape(4, -1)
    npx = combos.shape[1]  # 4096
    ny, nx = 64, npx // 64
    rng = np.random.default_rng(3)
    gdq = combos.reshape(1, 4, ny, nx)
    data = (np.arange(4, dtype=np.float32)[None, :, None, None] * 50.0 + 20.0).astype(np.float32)
    data = data + rng.normal(0, 3, (1, 4, ny, nx)).astype(np.float32)
    pixeldq = np.zeros((ny, nx), np.uint32)
    gain = np.full((ny, nx), 1.7, np.float32)
    rn = np.full((ny, nx), 9.0, np.float32)
    zeroframe = rng.choice(np.array([0.0, 15.0], np.float32), (1, ny, nx))
    timing = dict(nframes=1, groupgap=0, tgroup=10.0, tframe=10.0)
    arrays = (data.astype(np.float32), gdq, pixeldq, gain, rn)
    for params in (RampFit(), RampFit(suppress_one_group=False)):
        _run_both(kernels, arrays, params, timing, zeroframe=zeroframe)


# ---------------------------------------------------------------------------------------
# Simulated segments through the NumPy pre-jump steps and jump

SIM = {
    "nrs_bots": dict(nints=3, ngroups=8, ncols=64, seed=4),
    "niriss_soss": dict(nints=2, ngroups=6, ncols=64, nrows=32, seed=4),
    "nircam_grism": dict(nints=3, ngroups=5, ncols=64, seed=4, zeroframe=True),
}


@pytest.mark.parametrize("mode", list(SIM))
def test_simulated_segments(kernels, simulated, mode):
    from tsogpu.config import PipelineConfig
    from tsogpu.io.reffiles import segment_references
    from tsogpu.io.uncal import read_uncal
    from tsogpu.pipeline import run_prejump
    from tsogpu.pipeline.steps import run_jump

    sim = simulated(mode, cr_rate=2e-3, **SIM[mode])
    config = PipelineConfig(refs={k: str(v) for k, v in sim.refs.items()})
    segment = read_uncal(sim.uncal)
    refs, _ = segment_references(sim.uncal, config)
    seg = run_prejump(segment, refs, config)
    run_jump(seg, refs, config)
    assert (seg.groupdq & JUMP).any() and (seg.groupdq & SAT).any()
    arrays = (
        seg.data,
        seg.groupdq,
        seg.pixeldq,
        refs["gain"].arrays["data"],
        refs["readnoise"].arrays["data"],
    )
    exp = seg.exposure
    timing = dict(nframes=exp.nframes, groupgap=exp.groupgap, tgroup=exp.tgroup, tframe=exp.tframe)
    base = config.params("ramp_fit")
    for params in (base, replace(base, suppress_one_group=False), replace(base, firstgroup=1)):
        want = _run_both(
            kernels,
            arrays,
            params,
            timing,
            dark=seg.average_dark_current,
            zeroframe=seg.zeroframe,
        )
        assert np.isfinite(want.rate.sci).mean() > 0.5
