"""Jump kernels (kernels/jump.cu, tsogpu/launchers/jump.py) against the NumPy backend, bit for bit.

Each case runs ``tsogpu.algorithms.jump.detect_jumps`` and ``tsogpu.launchers.jump.detect_jumps``
on the same inputs and asserts GROUPDQ and PIXELDQ identical and every JumpResult field equal;
the per-pixel median/sigma and the sigma-clip bounds are also compared directly, as float64
bits, with the NumPy helpers they port.
"""

import logging
import warnings

import numpy as np
import pytest
from test_jump import CASES, TGROUP, _add_snowball, _ramp, _random_ramps

from tsogpu import dq
from tsogpu.algorithms import jump_fast as ref
from tsogpu.config import Jump
from tsogpu.launchers import jump as cj

JUMP, SAT, DNU = dq.JUMP_DET, dq.SATURATED, dq.DO_NOT_USE

logging.getLogger("stcal").setLevel(logging.ERROR)


def _host(a):
    return a.get() if hasattr(a, "get") else np.asarray(a)


def _assert_same(kernels, args, params, nframes=1, tgroup=TGROUP, frame=None):
    """Both backends on the same inputs: every field of the JumpResult equal, inputs intact."""
    data, gdq, pdq, gain, rn = args
    kw = dict(nframes=nframes, groupgap=0, tgroup=tgroup, frame=frame)
    expect = ref.detect_jumps(data, gdq, pdq, gain, rn, params, **kw)
    dev = [kernels.put(a) for a in args]
    got = cj.detect_jumps(kernels, *dev, params, **kw)
    for before, after in zip(args, dev, strict=True):  # inputs not modified
        np.testing.assert_array_equal(_host(after), before)
    assert _host(got.groupdq).dtype == np.uint8 and _host(got.pixeldq).dtype == np.uint32
    np.testing.assert_array_equal(_host(got.groupdq), expect.groupdq)
    np.testing.assert_array_equal(_host(got.pixeldq), expect.pixeldq)
    assert got.status == expect.status
    assert got.number_crs == expect.number_crs
    assert got.n_snowballs == expect.n_snowballs
    assert got.primary_cosmic_rays == expect.primary_cosmic_rays
    assert got.number_extended_events == expect.number_extended_events
    crs = _host(got.crs_per_pixel)
    assert crs.dtype == expect.crs_per_pixel.dtype
    np.testing.assert_array_equal(crs, expect.crs_per_pixel)
    if expect.sigclip_planes is None:
        assert got.sigclip_planes is None
    else:
        np.testing.assert_array_equal(_host(got.sigclip_planes), expect.sigclip_planes)
    return expect


# --------------------------------------------------------------------------------------------
# The kernels' floats: nanmedian + sigma, sigma-clip bounds


def _launch_median(kernels, diffs, rn2_nf, want):
    xp = kernels.xp
    nints, nd, ny, nx = diffs.shape
    npix, nvals = ny * nx, nints * nd
    med = kernels.put(np.full((ny, nx), 7.0))  # poison: every wanted pixel must be written
    sig = kernels.put(np.full((ny, nx), 7.0))
    d, r, w = kernels.put(diffs), kernels.put(rn2_nf), kernels.put(want.astype(np.uint8))
    for p0, nb, scratch in cj._batches(xp, npix, nvals):
        kernels.launch(
            "tso_jp_median", nb, d, r, w, med, sig, np.int64(nvals), np.int64(npix), p0, nb,
            scratch,
        )  # fmt: skip
    return _host(med), _host(sig)


@pytest.mark.parametrize("scratch_words", [cj.SCRATCH_WORDS, 100])
@pytest.mark.parametrize("shape", [(1, 2, 3, 4), (3, 4, 6, 9), (5, 19, 8, 33), (40, 9, 4, 4)])
@pytest.mark.parametrize("some", [False, True])
def test_median_and_sigma_bits(kernels, monkeypatch, shape, scratch_words, some):
    """Every pixel, or (``some``) only the wanted ones: the others keep their values."""
    monkeypatch.setattr(cj, "SCRATCH_WORDS", scratch_words)  # 100: many batches
    rng = np.random.default_rng(sum(shape))
    a = rng.normal(0, 10.0 ** rng.uniform(-3, 4, shape), shape).astype(np.float32)
    a[rng.random(shape) < 0.3] = np.nan
    a[:, :, 0, 0] = np.nan  # nothing valid
    a[:, :, 0, 1] = 2.5  # constant
    a[:, :, 0, 2] = np.round(a[:, :, 0, 2])  # ties
    a.flat[rng.integers(0, a.size, 3)] = np.inf
    a.flat[rng.integers(0, a.size, 2)] = -np.inf
    rn2 = rng.uniform(0, 100, shape[2:])
    rn2[0, 1] = 0.0  # 0 -> NaN only where the median is 0 too
    rn2[0, 3] = 0.0
    a[:, :, 0, 3] = 0.0
    want = rng.random(shape[2:]) < 0.4 if some else np.ones(shape[2:], bool)
    want[0, :4] = True
    med, sig = _launch_median(kernels, a, rn2, want)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expect = np.where(want, ref._nanmedian(a, axis=(0, 1)), 7.0)
        expect_sig = np.where(want, ref._sigma(expect, rn2), 7.0)
    # bits, up to the sign of a zero median (never used: see jp_median_packed)
    np.testing.assert_array_equal((med + 0.0).view(np.uint64), (expect + 0.0).view(np.uint64))
    np.testing.assert_array_equal(sig.view(np.uint64), expect_sig.view(np.uint64))
    assert np.isnan(sig[0, 3]) and np.isnan(med[0, 0])


def _clip_values(rng, n, ncol):
    mag = 10.0 ** rng.uniform(-4, 5, (n, ncol))
    values = (rng.normal(0, 1, (n, ncol)) * mag).astype(np.float32)
    values[rng.random(values.shape) < 0.1] = np.nan
    values[rng.random(values.shape) < 0.01] = np.inf
    values[:, 0] = np.nan  # nothing valid
    values[:, 1] = 3.0  # constant: every value on both bounds
    values[:, 2] = np.round(values[:, 2])  # ties
    values[: n // 2, 3], values[n // 2 :, 3] = 1.0, 2.0  # two values
    values[:, 4] = rng.integers(-2, 3, n)  # few distinct values
    values[0, 5] = 1e6  # one outlier
    values[:, 6] = rng.integers(-1, 2, n) * np.float32(0.1)
    return values


def _no_memo(kernels):
    """tso_jp_sigclip_bounds' memo arguments without a memo."""
    return kernels.put(np.zeros(cj.CLIP_STATS_WORDS)), np.int32(0)


def _clip_bounds(kernels, values, nsigma, stats=None):
    """tso_jp_sigclip_bounds on the columns of ``values``; (lo, hi) on the host. ``stats``:
    the memo's array (a launch with the memo), None: none."""
    n, ncol = values.shape
    lo, hi = kernels.put(np.zeros(ncol)), kernels.put(np.zeros(ncol))
    memo = _no_memo(kernels) if stats is None else (stats, np.int32(1))
    v = kernels.put(values)
    for c0, nb, scratch in cj._batches(kernels.xp, ncol, n):
        kernels.launch(
            "tso_jp_sigclip_bounds", nb, v, lo, hi, np.int64(n), np.int64(ncol),
            np.float64(nsigma), np.int64(5), c0, nb, scratch, *memo,
        )  # fmt: skip
    return _host(lo), _host(hi)


@pytest.mark.parametrize("nsigma", [4.0, 3.0, 2.0, 0.5])
def test_sigma_clip_bounds_with_a_memo(kernels, nsigma):
    """The memo kept by a launch at another nsigma (a sweep's first point) gives the bounds
    of a launch without it, bit for bit; the columns whose first iteration clips nothing are
    decided from it without reading their values."""
    rng = np.random.default_rng(int(nsigma * 10) + 3)
    for n in (1, 2, 5, 17, 200):
        noise = rng.normal(0, 1, (n, 300)) * 10.0 ** rng.uniform(-2, 4, 300)
        values = np.concatenate([_clip_values(rng, n, 150), noise.astype(np.float32)], axis=1)
        stats = kernels.put(np.zeros((values.shape[1], cj.CLIP_STATS_WORDS)))
        _clip_bounds(kernels, values, 3.7, stats)  # kept
        want = _clip_bounds(kernels, values, nsigma)
        for got in (_clip_bounds(kernels, values, nsigma, stats),) * 2:
            for g, w in zip(got, want, strict=True):
                np.testing.assert_array_equal(g.view(np.uint64), w.view(np.uint64))
        # the values poisoned: the columns decided from the memo keep their bounds
        poisoned = _clip_bounds(kernels, np.full_like(values, np.nan), nsigma, stats)
        from_memo = (poisoned[0].view(np.uint64) == want[0].view(np.uint64)) & np.isfinite(want[0])
        if n >= 17 and nsigma >= 3.0:  # noise clips nothing at these thresholds, mostly
            assert from_memo[150:].mean() > 0.5, from_memo[150:].mean()


@pytest.mark.parametrize("scratch_words", [cj.SCRATCH_WORDS, 300])
@pytest.mark.parametrize("nsigma", [4.0, 2.0, 0.5])
def test_sigma_clip_bounds_decide_as_astropy(kernels, monkeypatch, nsigma, scratch_words):
    """The kernel's bounds (one selection per median, its own summation order; astropy's exact
    arithmetic for a column with a value near a bound) clip exactly what astropy's do."""
    monkeypatch.setattr(cj, "SCRATCH_WORDS", scratch_words)
    rng = np.random.default_rng(int(nsigma * 10))
    for n in (1, 2, 3, 4, 5, 17, 100, 129):
        values = _clip_values(rng, n, 150)
        ok = np.isfinite(values)
        ncol = values.shape[1]
        lo = kernels.put(np.zeros(ncol))  # poison
        hi = kernels.put(np.zeros(ncol))
        v = kernels.put(values)
        for c0, nb, scratch in cj._batches(kernels.xp, ncol, n):
            kernels.launch(
                "tso_jp_sigclip_bounds", nb, v, lo, hi, np.int64(n), np.int64(ncol),
                np.float64(nsigma), np.int64(5), c0, nb, scratch, *_no_memo(kernels),
            )  # fmt: skip
        elo, ehi = ref._sigma_clip_bounds(values.astype(np.float64), ok, nsigma, 5)
        got_lo, got_hi = _host(lo), _host(hi)
        np.testing.assert_allclose(got_lo, elo, rtol=1e-12, atol=0)  # NaN where NaN
        np.testing.assert_allclose(got_hi, ehi, rtol=1e-12, atol=0)
        x = values.astype(np.float64)
        with np.errstate(invalid="ignore"):
            mask = ~ok | (x < got_lo) | (x > got_hi)
            exact = ~ok | (x < elo) | (x > ehi)
        np.testing.assert_array_equal(mask, exact)
        np.testing.assert_array_equal(mask, ref._sigma_clip_mask(values, ok, nsigma, 5))
        # a column with a value near its final bounds went through the exact clip
        tol = 1e-9 * (np.abs(0.5 * (elo + ehi)) + 0.5 * (ehi - elo))
        with np.errstate(invalid="ignore"):
            near = ok & ((np.abs(x - elo) <= tol) | (np.abs(x - ehi) <= tol))
        near = near.any(axis=0)
        assert near.any()  # the constant column at least
        np.testing.assert_array_equal(got_lo[near].view(np.uint64), elo[near].view(np.uint64))
        np.testing.assert_array_equal(got_hi[near].view(np.uint64), ehi[near].view(np.uint64))


@pytest.mark.parametrize("rank", [-3, -1, 0], ids=["clips", "largest", "smallest"])
@pytest.mark.parametrize("memo", [False, True], ids=["alone", "memo"])
def test_sigma_clip_bounds_on_a_value(kernels, rank, memo):
    """nsigma chosen so that a column's first bound falls on one of its values (to the
    rounding of the sums): the kernel must notice and give astropy's bounds to the bit; also
    from a memo kept at another nsigma, when that value is the largest or the smallest (the
    first iteration clips nothing, yet its bounds are not the memo's to give)."""
    rng = np.random.default_rng(12)
    n = 200
    for trial in range(20):
        values = (rng.normal(0, 1, (n, 1)) * 10.0 ** rng.uniform(-2, 4)).astype(np.float32)
        ok = np.isfinite(values)
        x = values[:, 0].astype(np.float64)
        lo1, hi1 = ref._sigma_clip_bounds(values.astype(np.float64), ok, 1.0, 1)
        med, std = 0.5 * (lo1[0] + hi1[0]), 0.5 * (hi1[0] - lo1[0])
        nsigma = abs(np.sort(x)[rank] - med) / std
        stats = None
        if memo:
            stats = kernels.put(np.zeros((1, cj.CLIP_STATS_WORDS)))
            _clip_bounds(kernels, values, nsigma + 0.5, stats)
        lo, hi = _clip_bounds(kernels, values, nsigma, stats)
        elo, ehi = ref._sigma_clip_bounds(values.astype(np.float64), ok, nsigma, 5)
        assert lo.view(np.uint64)[0] == elo.view(np.uint64)[0], trial
        assert hi.view(np.uint64)[0] == ehi.view(np.uint64)[0], trial


# --------------------------------------------------------------------------------------------
# detect_jumps on random ramps

AFTER = {
    "after_jump_flag_dn1": 50.0,
    "after_jump_flag_time1": 25.0,
    "after_jump_flag_dn2": 500.0,
    "after_jump_flag_time2": 45.0,
}
EXTRA = {
    # name: (nints, ngroups, ny, nx, nframes, params)
    "one_int_iterative": (1, 6, 8, 16, 1, {}),
    "four_groups": (2, 4, 8, 16, 1, {}),
    "three_groups_one_int": (1, 3, 8, 16, 1, {}),
    "thresholds": (
        3, 5, 8, 16, 1,
        {"rejection_threshold": 3.0, "three_group_rejection_threshold": 4.0,
         "four_group_rejection_threshold": 3.5},
    ),
    "single_pass_10_diffs": (1, 11, 8, 16, 1, {}),
    "single_pass_after": (2, 14, 8, 16, 2, AFTER),
    "single_pass_threshold": (2, 14, 8, 16, 1, {"rejection_threshold": 6.0}),
    "sigma_clip_ints_small": (30, 4, 8, 16, 1, {"minimum_sigclip_groups": 30}),
    "sigma_clip_ints_after": (24, 6, 8, 16, 1, {"minimum_sigclip_groups": 20, **AFTER}),
    "sigma_clip_ints_nsigma": (
        15, 4, 8, 16, 1, {"minimum_sigclip_groups": 15, "rejection_threshold": 2.0}
    ),
    "sigma_clip_diffs_small": (
        6, 5, 8, 16, 1, {"only_use_ints": False, "minimum_sigclip_groups": 20}
    ),
    "sigma_clip_diffs_after": (
        4, 8, 8, 16, 1, {"only_use_ints": False, "minimum_sigclip_groups": 20, **AFTER}
    ),
    "neighbour_limits": (
        3, 6, 8, 16, 1, {"min_jump_to_flag_neighbors": 5.0, "max_jump_to_flag_neighbors": 40.0}
    ),
    "after_dn_zero": (3, 7, 8, 16, 1, {"after_jump_flag_time1": 35.0}),
    "after_time2_only": (
        3, 7, 8, 16, 1, {"after_jump_flag_dn2": 100.0, "after_jump_flag_time2": 1000.0}
    ),
    "after_no_neighbours": (3, 7, 8, 16, 1, {"flag_4_neighbors": False, **AFTER}),
}  # fmt: skip
ALL_CASES = {**CASES, **EXTRA}


@pytest.mark.parametrize("name", list(ALL_CASES))
@pytest.mark.parametrize("seed", [0, 1])
def test_random_ramps(kernels, name, seed):
    nints, ngroups, ny, nx, nframes, kw = ALL_CASES[name]
    args = _random_ramps(seed, nints, ngroups, ny, nx)
    res = _assert_same(kernels, args, Jump(**kw), nframes=nframes)
    assert res.status == "COMPLETE" and res.number_crs > 0
    assert np.count_nonzero(res.groupdq & ~args[1] & JUMP) > 0  # new flags


@pytest.mark.parametrize("name", [n for n in ALL_CASES if n.startswith("sigma_clip")] + [
    "single_pass_after", "iterative", "neighbour_limits"
])  # fmt: skip
def test_memo_between_thresholds(kernels, name):
    """detect_jumps' memo (a sweep's points): the same ramps at other rejection thresholds
    give, with the memo kept by the calls before, what a call without it gives."""
    nints, ngroups, ny, nx, nframes, kw = ALL_CASES[name]
    args = [kernels.put(a) for a in _random_ramps(11, nints, ngroups, ny, nx)]
    memo = {}
    for threshold in (4.0, 2.5, 6.0, 4.0):
        params = Jump(**{**kw, "rejection_threshold": threshold})
        timing = dict(nframes=nframes, groupgap=0, tgroup=TGROUP)
        got = cj.detect_jumps(kernels, *args, params, memo=memo, **timing)
        want = cj.detect_jumps(kernels, *args, params, **timing)
        np.testing.assert_array_equal(_host(got.groupdq), _host(want.groupdq))
        np.testing.assert_array_equal(_host(got.pixeldq), _host(want.pixeldq))
        assert got.number_crs == want.number_crs
        assert got.primary_cosmic_rays == want.primary_cosmic_rays
    assert "jump_median" in memo and ("jump" in memo) == name.startswith("sigma_clip")


def test_paths_are_the_ones_named():
    """The random cases reach the path their names say (so every path is exercised)."""
    want = {"iterative": "iterative", "single": "single", "sigma_clip": "sigclip"}
    for name, (nints, ngroups, _, _, _, kw) in ALL_CASES.items():
        path = ref.choose_path(nints, ngroups, np.zeros((nints, ngroups), bool), Jump(**kw))
        for prefix, p in want.items():
            if name.startswith(prefix):
                assert path == p, name


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # NumPy's inf - inf, inf * 0
@pytest.mark.parametrize("name", ["iterative", "single_pass", "sigma_clip_ints_small"])
def test_nan_and_inf_data(kernels, name):
    nints, ngroups, ny, nx, nframes, kw = ALL_CASES[name]
    data, gdq, pdq, gain, rn = _random_ramps(7, nints, ngroups, ny, nx)
    rng = np.random.default_rng(8)
    data[rng.random(data.shape) < 0.03] = np.nan
    data[rng.random(data.shape) < 0.005] = np.inf
    data[rng.random(data.shape) < 0.005] = -np.inf
    data[:, :, 2, 3] = np.nan  # a pixel with nothing usable
    data[:, :, 3, 4] = np.inf
    rn[4, 5] = 0.0
    data[:, :, 4, 5] = 0.0  # sigma 0 -> NaN
    gain[5, 6] = -1.0
    _assert_same(kernels, (data, gdq, pdq, gain, rn), Jump(**kw), nframes=nframes)


@pytest.mark.parametrize("name", ["iterative", "single_pass", "sigma_clip_ints_small"])
def test_heavily_flagged_ramps(kernels, name):
    """Many saturated and DO_NOT_USE groups, pre-existing JUMP|SAT and JUMP|DNU."""
    nints, ngroups, ny, nx, nframes, kw = ALL_CASES[name]
    args = _random_ramps(9, nints, ngroups, ny, nx, cr=0.1, sat=0.3, dnu=0.2)
    args[1][np.random.default_rng(10).random(args[1].shape) < 0.05] |= JUMP
    _assert_same(kernels, args, Jump(**kw), nframes=nframes)


def test_iterative_median_is_stored_in_float32(kernels):
    """After a flag, the iterative median is rounded to float32 (stcal's median_diffs_iter).

    |diffs| = [a, a, b, b, x, y] with a = 2**24, b = a + 2: pass 1 flags y; pass 2 sets x (the
    max) aside, median (a + b) / 2 = a + 1 rounds to a in float32, and x = a + 16386 has ratio
    16386 / sqrt(a + rn**2) = 4.00024 > 4 (with the float64 median: 16385 / ... = 3.999997).
    """
    a, b, x = np.float32(2**24), np.float32(2**24 + 2), np.float32(2**24 + 16386)
    data = np.zeros((1, 7, 1, 2), np.float32)
    data[0, :, 0, 0] = [0, a, 0, b, 0, x, -1e9]
    data[0, :, 0, 1] = np.arange(7) * 10
    data[0, 4:, 0, 1] += 1000
    args = (
        data,
        np.zeros(data.shape, np.uint8),
        np.zeros((1, 2), np.uint32),
        np.ones((1, 2), np.float32),
        np.full((1, 2), 45.5, np.float32),
    )
    res = _assert_same(kernels, args, Jump(flag_4_neighbors=False))
    np.testing.assert_array_equal(res.groupdq[0, :, 0, 0], [0, 0, 0, 0, 0, JUMP, JUMP])
    np.testing.assert_array_equal(res.groupdq[0, :, 0, 1], [0, 0, 0, 0, JUMP, 0, 0])


def test_iterative_e_jump_is_float32(kernels):
    """The iterative ratio takes float32(|diff| - median) (stcal's e_jump).

    |diffs| = [1, 2, 3, 4, x]: the max x is set aside, median 2.5; x - 2.5 rounds up by 0.5 in
    float32, which takes the ratio from 3.99999976 (float64) to 4.000000000002 > 4.
    """
    x = np.float32(8388620.0)
    data = np.array([0, 1, 3, 6, 10, 10 + x], np.float32).reshape(1, 6, 1, 1)
    args = (
        data,
        np.zeros(data.shape, np.uint8),
        np.zeros((1, 1), np.uint32),
        np.ones((1, 1), np.float32),
        np.full((1, 1), 2097154.5, np.float32),
    )
    res = _assert_same(kernels, args, Jump(flag_4_neighbors=False))
    np.testing.assert_array_equal(res.groupdq.ravel(), [0, 0, 0, 0, 0, JUMP])


@pytest.mark.parametrize("ngroups", [6, 12])  # iterative, single pass
def test_thresholds_are_strict(kernels, ngroups):
    # read noise 5, median 0: sigma 5; a difference of 20 has ratio exactly 4 (not flagged),
    # 20.5 is flagged; neighbour limits likewise strict (ratio 10 = min: no seed)
    data = np.zeros((1, ngroups, 1, 5), np.float32)
    data[0, ngroups - 1 :, 0, 0] = 20.0
    data[0, ngroups - 1 :, 0, 1] = 20.5
    data[0, ngroups - 1 :, 0, 3] = 50.0
    args = (
        data,
        np.zeros(data.shape, np.uint8),
        np.zeros((1, 5), np.uint32),
        np.ones((1, 5), np.float32),
        np.full((1, 5), 5.0, np.float32),
    )
    res = _assert_same(kernels, args, Jump())
    np.testing.assert_array_equal(res.groupdq[0, -1, 0], [0, JUMP, 0, JUMP, 0])


@pytest.mark.parametrize("kw", [{}, {"minimum_sigclip_groups": 3}])
@pytest.mark.parametrize("ngroups", [1, 2])
def test_two_groups_or_fewer_is_skipped(kernels, ngroups, kw):
    data = _ramp(3, ngroups, 2, 3)
    gdq = np.full(data.shape, JUMP | DNU, np.uint8)
    gain = np.ones((2, 3), np.float32)
    gain[0, 0] = 0.0  # untouched: skipped before the bad-gain flags
    args = (data, gdq, np.zeros((2, 3), np.uint32), gain, np.full((2, 3), 5.0, np.float32))
    res = _assert_same(kernels, args, Jump(**kw))
    assert res.status == "SKIPPED"


def test_too_few_usable_groups_skips_detection(kernels):
    # two all-DNU planes in int 0 of 4 groups: min usable groups 2 < 3 -> -99, clean-up runs
    args = _random_ramps(11, 2, 4, 6, 8)
    args[1][0, 1:3] |= DNU
    args[1][1, 3, 1, 1] |= JUMP | DNU
    res = _assert_same(kernels, args, Jump())
    assert res.number_crs == -99


def test_whole_planes(kernels):
    """All-DNU planes (fewer usable groups), an all-JUMP plane, in the iterative path."""
    args = _random_ramps(12, 3, 7, 8, 16)
    args[1][0, 1] |= DNU
    args[1][2, 4] |= JUMP
    res = _assert_same(kernels, args, Jump(**AFTER))
    assert res.number_crs > 0


@pytest.mark.parametrize("only_use_ints", [True, False])
def test_sigma_clip_plane_reset(kernels, only_use_ints):
    """Planes that end all JUMP or DNU: pixels with exactly JUMP there are reset to 0."""
    args = _random_ramps(13, 12, 5, 6, 8)
    gdq = args[1]
    gdq[3, 2] |= JUMP  # all JUMP before detection
    gdq[5, 1] |= DNU  # all DNU
    gdq[7, 3] = np.where(np.arange(48).reshape(6, 8) % 2 == 0, DNU, JUMP)
    gdq[8, 2] = JUMP | SAT  # JUMP but not exactly JUMP: kept until the clean-up
    p = Jump(minimum_sigclip_groups=12, only_use_ints=only_use_ints)
    res = _assert_same(kernels, args, p)
    assert res.sigclip_planes[3, 2] and res.sigclip_planes[5, 1] and res.sigclip_planes[7, 3]
    assert res.sigclip_planes[8, 2]


def test_catalogue_sigma_clip_reset(kernels):
    # test_jump's hand-built frames: the CR in int 7 kept, then reset by a DNU neighbour
    data = _ramp(100, 4, 1, 2)
    data[7, 2:, 0, 0] += 500
    gain = np.ones((1, 2), np.float32)
    rn = np.full((1, 2), 5.0, np.float32)
    pdq = np.zeros((1, 2), np.uint32)
    gdq = np.zeros(data.shape, np.uint8)
    res = _assert_same(kernels, (data, gdq, pdq, gain, rn), Jump())
    assert res.number_crs == 1
    gdq[7, 2, 0, 1] = DNU
    res = _assert_same(kernels, (data, gdq, pdq, gain, rn), Jump())
    assert res.number_crs == 0 and res.sigclip_planes.sum() == 1


@pytest.mark.parametrize("name", ["sigma_clip_ints_small", "sigma_clip_diffs_small"])
def test_frame_stats_given(kernels, name):
    """Whole-frame statistics from the caller (row chunks): plane tests and gain median."""
    nints, ngroups, ny, nx, nframes, kw = ALL_CASES[name]
    args = _random_ramps(14, nints, ngroups, ny, nx)
    args[1][2, 3, : ny // 2] |= JUMP  # half a plane: the given plane test decides
    all_dnu = ref.all_dnu_planes(args[1])
    planes = np.zeros((nints, ngroups), bool)
    planes[2, 3] = planes[0, 1] = True
    for fr in (
        ref.FrameStats(all_dnu, np.float32(1.7)),
        ref.FrameStats(all_dnu, np.float32(1.7), sigclip_planes=planes),
    ):
        _assert_same(kernels, args, Jump(**{**kw, **AFTER}), frame=fr)


def test_frame_stats_for_a_chunk(kernels):
    """A row chunk with the whole frame's statistics (the pipeline's pass 2)."""
    args = _random_ramps(15, 3, 6, 12, 16)
    fr = ref.frame_stats(ref.all_dnu_planes(args[1]), args[3])
    rows = slice(3, 9)
    chunk = tuple(a[:, :, rows] if a.ndim == 4 else a[rows] for a in args)
    chunk = tuple(np.ascontiguousarray(a) for a in chunk)
    _assert_same(kernels, chunk, Jump(**AFTER), frame=fr)


@pytest.mark.parametrize("name", ["iterative", "sigma_clip_ints_small", "single_pass"])
def test_small_scratch_batches(kernels, monkeypatch, name):
    """Scratch for a few pixels (columns) at a time: many launches over pixel batches."""
    monkeypatch.setattr(cj, "SCRATCH_WORDS", 97)
    nints, ngroups, ny, nx, nframes, kw = ALL_CASES[name]
    _assert_same(kernels, _random_ramps(16, nints, ngroups, ny, nx), Jump(**kw), nframes=nframes)


def test_all_dnu_planes(kernels):
    """A plane is all DNU only when its every sample is: the last or the first one lacking
    DNU, or one inside, clears it."""
    gdq = np.zeros((3, 4, 5, 6), np.uint8)
    gdq[0, 1] = DNU
    gdq[2, 3] = DNU | JUMP
    gdq[1, 2] = DNU
    gdq[1, 2, 4, 5] = JUMP
    gdq[0, 2] = DNU
    gdq[0, 2, 0, 0] = 0
    gdq[2, 0] = DNU
    gdq[2, 0, 2, 3] = SAT
    got = _host(cj.all_dnu_planes(kernels, kernels.put(gdq)))
    np.testing.assert_array_equal(got, ref.all_dnu_planes(gdq))
    assert got.sum() == 2


def test_snowballs_on_the_host(kernels):
    pytest.importorskip("skimage")
    data, gdq, pdq, gain, rn = _random_ramps(5, 3, 6, 48, 40, cr=0.004, sat=0.0)
    _add_snowball(data, gdq, 0, 2, 20, 18, 7, 3.2)
    _add_snowball(data, gdq, 1, 3, 30, 25, 5, 2.0)
    _add_snowball(data, gdq, 2, 1, 3, 3, 6, 3.5)  # near the edge
    res = _assert_same(
        kernels, (data, gdq, pdq, gain, rn), Jump(expand_large_events=True, edge_size=5)
    )
    assert res.n_snowballs > 0 and res.number_extended_events > 0


# --------------------------------------------------------------------------------------------
# Simulated segments after the NumPy pre-jump steps

SIM = {
    "nrs_bots": dict(nints=20, ngroups=8, ncols=48, seed=3, cr_rate=0.3),
    "niriss_soss": dict(nints=20, ngroups=8, ncols=48, nrows=32, seed=4, cr_rate=0.3),
    "nircam_grism": dict(nints=20, ngroups=8, ncols=48, seed=5, cr_rate=0.3),
}


@pytest.mark.parametrize("mode", list(SIM))
def test_simulated_segments(kernels, simulated, mode):
    from tsogpu.config import PipelineConfig
    from tsogpu.io.reffiles import segment_references
    from tsogpu.io.uncal import read_uncal
    from tsogpu.pipeline import run_prejump

    sim = simulated(mode, **SIM[mode])
    config = PipelineConfig(refs={k: str(v) for k, v in sim.refs.items()})
    segment = read_uncal(sim.uncal)
    refs, _ = segment_references(sim.uncal, config)  # fmt: skip
    seg = run_prejump(segment, refs, config)
    exp = seg.exposure
    args = (
        seg.data,
        seg.groupdq,
        seg.pixeldq,
        refs["gain"].arrays["data"],
        refs["readnoise"].arrays["data"],
    )
    assert (seg.groupdq & SAT).any()
    t = exp.tgroup
    after = {
        "after_jump_flag_dn1": 30.0,
        "after_jump_flag_time1": 2.5 * t,
        "after_jump_flag_dn2": 300.0,
        "after_jump_flag_time2": 6.5 * t,
    }
    for kw in (
        {},  # iterative (7 differences)
        {**after},
        {"min_diffs_single_pass": 5},  # single pass
        {"min_diffs_single_pass": 5, **after},
        {"minimum_sigclip_groups": 20},  # sigma clip over integrations
        {"minimum_sigclip_groups": 20, "rejection_threshold": 3.0, **after},
        {"only_use_ints": False},  # over all differences (160 groups)
        {"flag_4_neighbors": False, **after},
    ):
        res = _assert_same(
            kernels, args, Jump(**kw), nframes=exp.nframes, tgroup=t,
        )  # fmt: skip
        assert res.number_crs > 0
