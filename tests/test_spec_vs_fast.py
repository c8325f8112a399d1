"""The readable specifications and the tuned paths give the same bits.

``tsogpu.algorithms.jump`` / ``ramp_fit`` are the specifications (stcal's code as stcal writes
it, checked against jwst by the oracle tests); ``jump_fast`` / ``ramp_fit_fast`` are what the
machine runs. Both run here on a catalogue of hand-built pixels (in the stcal tests' style)
and on random ramps, and every output must agree: float arrays bit for bit (NaNs included,
compared as uint32), DQ arrays, counts and keywords exactly.
"""

import dataclasses

import numpy as np
import pytest
from test_jump import CASES as JUMP_CASES
from test_jump import _random_ramps
from test_ramp_fit import CASES as RAMP_CASES
from test_ramp_fit import _random_case

from tsogpu import dq
from tsogpu.algorithms import jump, jump_fast, ramp_fit, ramp_fit_fast
from tsogpu.config import Jump, RampFit

JUMP, SAT, DNU = dq.JUMP_DET, dq.SATURATED, dq.DO_NOT_USE
PERS, CHARGELOSS = dq.PIXEL["PERSISTENCE"], dq.CHARGELOSS
TGROUP = 10.0


def assert_same_bits(a, b, label):
    """Equal dtype, shape and bits (floats: also as values, NaN equal to NaN)."""
    a, b = np.asarray(a), np.asarray(b)
    assert a.dtype == b.dtype and a.shape == b.shape, (label, a.dtype, b.dtype, a.shape, b.shape)
    if a.dtype.kind == "f":
        assert np.array_equal(a, b, equal_nan=True), label
        bits = np.uint32 if a.dtype == np.float32 else np.uint64
        assert np.array_equal(a.view(bits), b.view(bits)), f"{label}: NaN or zero signs differ"
    else:
        assert np.array_equal(a, b), label


# --------------------------------------------------------------------------------------------
# jump


def run_both_jump(
    data, gdq=None, pdq=None, gain=1.0, rn=5.0, nframes=1, frame=None, tgroup=TGROUP, **params
):
    """detect_jumps of the specification and of the tuned path on the same inputs."""
    nints, ngroups, ny, nx = data.shape
    gdq = np.zeros(data.shape, np.uint8) if gdq is None else gdq
    pdq = np.zeros((ny, nx), np.uint32) if pdq is None else pdq
    gain = np.broadcast_to(np.asarray(gain, np.float32), (ny, nx)).copy()
    rn = np.broadcast_to(np.asarray(rn, np.float32), (ny, nx)).copy()
    p = Jump(**params)
    kw = dict(nframes=nframes, groupgap=0, tgroup=tgroup, frame=frame)
    before = [a.copy() for a in (data, gdq, pdq, gain, rn)]
    spec = jump.detect_jumps(data, gdq, pdq, gain, rn, p, **kw)
    fast = jump_fast.detect_jumps(data, gdq, pdq, gain, rn, p, **kw)
    for a, b in zip(before, (data, gdq, pdq, gain, rn), strict=True):
        assert_same_bits(a, b, "input modified")
    assert_same_jump(spec, fast)
    return spec


def assert_same_jump(spec, fast):
    for name in jump.JumpResult._fields:
        a, b = getattr(spec, name), getattr(fast, name)
        if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
            assert_same_bits(a, b, name)
        else:
            assert a == b and type(a) is type(b), (name, a, b)


def ramp(nints, ngroups, ny, nx, rate=10.0):
    t = np.arange(ngroups, dtype=np.float32)[None, :, None, None]
    return np.broadcast_to(np.float32(rate) * t, (nints, ngroups, ny, nx)).copy()


def test_jump_one_cr_in_group_3():
    data = ramp(1, 6, 3, 3)
    data[0, 3:, 1, 1] += 500
    res = run_both_jump(data)
    assert res.number_crs == 1  # the catalogue case really flags something


def test_jump_neighbours_at_the_edges_and_saturated_from_group_1():
    data = ramp(2, 6, 4, 5)
    data[0, 3:, 0, 0] += 500  # corner
    data[1, 2:, 3, 4] += 700  # other corner
    data[0, 4:, 2, 4] += 300  # right edge
    gdq = np.zeros(data.shape, np.uint8)
    gdq[0, 3:, 1, 0] = SAT  # a neighbour saturated when the CR lands
    gdq[:, 1:, 2, 2] = SAT  # saturated from group 1
    gdq[0, 3, 3, 3] = JUMP | SAT  # JUMP removed where SAT ...
    gdq[0, 4, 3, 3] = JUMP | DNU  # ... and where DNU
    res = run_both_jump(data, gdq)
    assert res.groupdq[0, 3, 0, 1] & JUMP


def test_jump_nans_dnu_groups_and_bad_gain():
    data = ramp(2, 7, 3, 4)
    data[0, 2, 0, 0] = np.nan
    data[1, :, 0, 1] = np.nan
    data[0, 5:, 2, 3] += 900
    gdq = np.zeros(data.shape, np.uint8)
    gdq[0, 3, 1, 1] = DNU
    gdq[1, :, 1, 2] = DNU
    gdq[:, 0] |= DNU  # a plane that is DNU everywhere: fewer usable groups
    gain = np.ones((3, 4), np.float32)
    gain[2, 0], gain[2, 1] = 0.0, np.nan
    run_both_jump(data, gdq, gain=gain)


@pytest.mark.parametrize("ngroups", [1, 2, 3, 4])
def test_jump_short_ramps(ngroups):
    # 1-2 groups: SKIPPED; 3 groups: two differences (three-group threshold); 4: four-group
    data = np.zeros((1, ngroups, 1, 3), np.float32)
    data[0, -1] = [65.0, 55.0, 45.0]
    res = run_both_jump(data, rn=10.0)
    assert res.status == ("SKIPPED" if ngroups <= 2 else "COMPLETE")


def test_jump_too_few_usable_groups_is_skipped_internally():
    data = ramp(1, 4, 2, 2)
    gdq = np.zeros(data.shape, np.uint8)
    gdq[0, 2:] = DNU
    assert run_both_jump(data, gdq).number_crs == -99


def test_jump_two_point_single_pass_and_iterative():
    data = ramp(1, 12, 2, 3)
    data[0, 4:, 0, 0] += 300
    data[0, 9:, 0, 0] += 200
    data[0, 6:, 1, 2] += 80
    assert run_both_jump(data, flag_4_neighbors=False).number_crs >= 2  # single pass
    assert run_both_jump(data[:, :6].copy()).number_crs >= 1  # iterative


def test_jump_after_jump_flagging():
    data = ramp(2, 10, 3, 3)
    data[0, 3:, 1, 1] += 2000
    data[1, 6:, 0, 2] += 200
    gdq = np.zeros(data.shape, np.uint8)
    gdq[0, 6:, 1, 1] = SAT  # the flagging stops at saturation
    params = dict(after_jump_flag_dn1=100.0, after_jump_flag_time1=25.0)
    params |= dict(after_jump_flag_dn2=1000.0, after_jump_flag_time2=45.0)
    res = run_both_jump(data, gdq, **params)
    assert res.groupdq[0, 4, 1, 1] & JUMP


def _sigclip_ramps(nints, ngroups, ny, nx, seed):
    """Integer-valued ramps (many equal differences, so bounds fall on values)."""
    rng = np.random.default_rng(seed)
    steps = rng.integers(8, 13, (nints, ngroups, ny, nx)).astype(np.float32)
    steps[:, 0] = 0
    data = np.cumsum(steps, axis=1)
    data[:, :, 0, 0] = 10.0 * np.arange(ngroups)  # constant differences: std 0
    data[7, 3:, 1, 1] += 400  # one outlying integration
    data[3, 2:, 0, 2] = np.nan
    return data


@pytest.mark.parametrize("only_use_ints", [True, False])
def test_jump_sigma_clip_with_ties_at_the_bounds(only_use_ints):
    nints = 100 if only_use_ints else 30
    data = _sigclip_ramps(nints, 5, 3, 4, seed=3)
    gdq = np.zeros(data.shape, np.uint8)
    gdq[5, 2:, 2, 3] = SAT
    gdq[9, 1, 2, 1] = DNU
    res = run_both_jump(data, gdq, only_use_ints=only_use_ints)
    assert res.groupdq[7, 3, 1, 1] & JUMP
    assert res.sigclip_planes is not None


def test_jump_sigma_clip_plane_reset_and_whole_frame_statistics():
    # plane (0, 1) is JUMP or DNU in every pixel: JUMP-only pixels are reset there
    data = _sigclip_ramps(100, 4, 2, 3, seed=4)
    data[0, 1:] += 1000
    gdq = np.zeros(data.shape, np.uint8)
    gdq[0, 1, 0, 0] = DNU
    whole = run_both_jump(data, gdq)
    assert whole.sigclip_planes[0, 1]
    # a chunk (row 1) with the whole frame's statistics, and with a plane test overridden
    stats = jump.frame_stats(jump.all_dnu_planes(gdq), np.ones((2, 3), np.float32))
    rows = slice(1, 2)
    args = (data[:, :, rows].copy(), gdq[:, :, rows].copy())
    run_both_jump(*args, frame=stats)
    planes = np.zeros(whole.sigclip_planes.shape, bool)
    run_both_jump(*args, frame=dataclasses.replace(stats, sigclip_planes=planes))


def test_jump_snowballs():
    pytest.importorskip("skimage")
    ny = nx = 40
    data = ramp(2, 6, ny, nx)
    gdq = np.zeros(data.shape, np.uint8)
    yy, xx = np.mgrid[:ny, :nx]
    d2 = (yy - 20) ** 2 + (xx - 20) ** 2
    data[0, 3:][:, d2 <= 25] += 8000
    gdq[0, 3:][:, d2 <= 4] |= SAT
    res = run_both_jump(data, gdq, expand_large_events=True, edge_size=5, min_jump_area=5.0)
    assert res.n_snowballs >= 1


@pytest.mark.parametrize("name", list(JUMP_CASES))
@pytest.mark.parametrize("seed", [0, 1])
def test_jump_random_ramps(name, seed):
    nints, ngroups, ny, nx, nframes, params = JUMP_CASES[name]
    data, gdq, pdq, gain, rn = _random_ramps(seed, nints, ngroups, ny, nx)
    run_both_jump(data, gdq, pdq, gain, rn, nframes=nframes, **params)


# --------------------------------------------------------------------------------------------
# ramp_fit

GAIN, RN = 2.0, 10.0
TIMING = dict(nframes=1, groupgap=0, tgroup=TGROUP, tframe=TGROUP)


def run_both_fit(data, gdq, pdq=None, gain=GAIN, rn=RN, dark=None, zeroframe=None, **kw):
    """fit_ramps of the specification and of the tuned path on the same inputs."""
    params = kw.pop("params", RampFit())
    groups = kw.pop("groups", None)
    timing = kw or TIMING
    ny, nx = data.shape[2:]
    pdq = np.zeros((ny, nx), np.uint32) if pdq is None else pdq
    gain = np.broadcast_to(np.asarray(gain, np.float32), (ny, nx)).copy()
    rn = np.broadcast_to(np.asarray(rn, np.float32), (ny, nx)).copy()
    args = (data, gdq, pdq, gain, rn, params)
    extra = dict(average_dark_current=dark, zeroframe=zeroframe, groups=groups, **timing)
    before = [a.copy() for a in args[:5]]
    spec = ramp_fit.fit_ramps(*args, **extra)
    fast = ramp_fit_fast.fit_ramps(*args, **extra)
    for a, b in zip(before, args[:5], strict=True):
        assert_same_bits(a, b, "input modified")
    for prod in ("rateints", "rate"):
        for name in ramp_fit.RateProduct._fields:
            a, b = getattr(getattr(spec, prod), name), getattr(getattr(fast, prod), name)
            assert_same_bits(a, b, f"{prod}.{name}")
    assert (spec.chi2 is None) == (fast.chi2 is None) == (not params.goodness_of_fit)
    if spec.chi2 is not None:
        assert_same_bits(spec.chi2, fast.chi2, "chi2")
    return spec


def catalogue(ngroups=8, nints=2):
    """One pixel per case (columns), ``nints`` integrations: data (DN) and GROUPDQ."""
    cases = [
        "clean",
        "cr_group_3",
        "two_crs",
        "saturated_from_group_1",
        "saturated_from_group_2",
        "group_0_saturated",
        "all_dnu",
        "dnu_groups",
        "nan_data",
        "persistence",
        "chargeloss",
        "chargeloss_dnu",
        "jump_in_last_group",
        "negative_rate",
        "bright",
        "one_good_group",
    ]
    n = len(cases)
    t = np.arange(ngroups, dtype=np.float64)
    data = np.empty((nints, ngroups, 1, n), np.float32)
    gdq = np.zeros((nints, ngroups, 1, n), np.uint8)
    for c, name in enumerate(cases):
        rate = {"negative_rate": -3.0, "bright": 5000.0}.get(name, 100.0)
        for i in range(nints):
            data[i, :, 0, c] = 50.0 + (rate + 7.0 * i) * t + 3.0 * np.sin(t * (c + 1))
    col = {name: c for c, name in enumerate(cases)}
    g = ngroups
    cr = min(3, g - 1)
    data[:, cr:, 0, col["cr_group_3"]] += 1000.0
    gdq[:, cr, 0, col["cr_group_3"]] = JUMP
    if g > 5:
        data[:, 2:, 0, col["two_crs"]] += 500.0
        data[:, 5:, 0, col["two_crs"]] += 300.0
        gdq[:, [2, 5], 0, col["two_crs"]] = JUMP
    gdq[:, 1:, 0, col["saturated_from_group_1"]] = SAT
    gdq[:, 2:, 0, col["saturated_from_group_2"]] = SAT
    gdq[0, :, 0, col["group_0_saturated"]] = SAT
    gdq[:, :, 0, col["all_dnu"]] = DNU
    gdq[0, 1::3, 0, col["dnu_groups"]] = DNU
    data[0, g // 2, 0, col["nan_data"]] = np.nan
    data[1 % nints, :, 0, col["nan_data"]] = np.nan
    gdq[:, min(1, g - 1), 0, col["persistence"]] = PERS
    gdq[0, g // 2 :, 0, col["chargeloss"]] = CHARGELOSS
    gdq[0, 2:, 0, col["chargeloss_dnu"]] = CHARGELOSS | DNU
    gdq[:, g - 1, 0, col["jump_in_last_group"]] = JUMP
    gdq[:, 1:, 0, col["one_good_group"]] = DNU
    return data, gdq, cases


@pytest.mark.parametrize("suppress", [True, False])
@pytest.mark.parametrize("ngroups", [1, 2, 3, 4, 8])
def test_fit_catalogue(suppress, ngroups):
    data, gdq, cases = catalogue(ngroups)
    n = len(cases)
    pdq = np.zeros((1, n), np.uint32)
    pdq[0, cases.index("clean")] = dq.PIXEL["HOT"]
    zeroframe = np.full((2, 1, n), 20.0, np.float32)
    zeroframe[0, 0, 0] = 0.0  # zero: not used
    zeroframe[1, 0, 1] = np.nan  # NaN != 0: used
    dark = np.linspace(0.0, 0.5, n, dtype=np.float32).reshape(1, n)
    params = RampFit(suppress_one_group=suppress)
    run_both_fit(data, gdq, pdq, dark=dark, zeroframe=zeroframe, params=params)
    run_both_fit(data, gdq, params=params)  # no dark, no ZEROFRAME


def test_fit_pixeldq_and_bad_gain():
    data, gdq, cases = catalogue(6)
    n = len(cases)
    pdq = np.full((1, n), DNU, np.uint32)
    gain = np.full((1, n), GAIN, np.float32)
    gain[0, ::3], gain[0, 1::3] = 0.0, np.nan
    run_both_fit(data, gdq, pdq)
    run_both_fit(data, gdq, gain=gain)


def unchecked_ramp_fit(**params):
    """RampFit with values the configuration refuses (a group range jwst ignores, as the fit
    must): the algorithms are tested on them; tsogpu.parameter_ranges keeps them out of runs."""
    fit = RampFit()
    for name, value in params.items():
        object.__setattr__(fit, name, value)
    return fit


@pytest.mark.parametrize(("first", "last"), [(1, 5), (None, 4), (3, None), (-2, 99), (5, 2)])
def test_fit_firstgroup_lastgroup(first, last):
    data, gdq, _ = catalogue(8)
    run_both_fit(data, gdq, params=unchecked_ramp_fit(firstgroup=first, lastgroup=last))


def test_fit_read_noise_variance_cut_off_and_nframes():
    data, gdq, _ = catalogue(5, nints=3)
    timing = dict(nframes=4, groupgap=1, tgroup=0.02, tframe=0.004)
    run_both_fit(data, gdq, rn=1e4, **timing)  # var_r >= LARGE_VARIANCE_THRESHOLD


@pytest.mark.parametrize("case", RAMP_CASES, ids=[f"case{i}" for i in range(len(RAMP_CASES))])
def test_fit_random_ramps(case):
    nints, ngroups, nframes, groupgap, suppress, use_zf, group_range, cl = case
    arrays, dark, zeroframe, timing = _random_case(
        2000 + RAMP_CASES.index(case), nints, ngroups, nframes=nframes, groupgap=groupgap,
        chargeloss=cl,
    )  # fmt: skip
    data, gdq, pdq, gain, rn = arrays
    first, last = group_range or (None, None)
    params = RampFit(suppress_one_group=suppress, firstgroup=first, lastgroup=last)
    zf = zeroframe if use_zf else None
    run_both_fit(data, gdq, pdq, gain, rn, dark=dark, zeroframe=zf, params=params, **timing)


# options beyond jwst: ramp_fit.weighting and goodness_of_fit (docs/options.md)
WEIGHTINGS = ["optimal", "unweighted", "exponent:2", "exponent:0.7"]


@pytest.mark.parametrize("weighting", WEIGHTINGS)
@pytest.mark.parametrize("ngroups", [2, 3, 8])
def test_fit_catalogue_weighting_and_chi2(weighting, ngroups):
    data, gdq, cases = catalogue(ngroups)
    zeroframe = np.full((2, 1, len(cases)), 20.0, np.float32)
    for suppress in (True, False):
        params = RampFit(suppress_one_group=suppress, weighting=weighting, goodness_of_fit=True)
        run_both_fit(data, gdq, zeroframe=zeroframe, params=params)


@pytest.mark.parametrize("weighting", WEIGHTINGS)
@pytest.mark.parametrize("case", RAMP_CASES[5:], ids=[f"case{i}" for i in range(5, 11)])
def test_fit_random_ramps_weighting_and_chi2(case, weighting):
    nints, ngroups, nframes, groupgap, suppress, use_zf, group_range, cl = case
    arrays, dark, zeroframe, timing = _random_case(
        3000 + RAMP_CASES.index(case), nints, ngroups, nframes=nframes, groupgap=groupgap,
        chargeloss=cl,
    )  # fmt: skip
    data, gdq, pdq, gain, rn = arrays
    first, last = group_range or (None, None)
    params = RampFit(
        suppress_one_group=suppress, firstgroup=first, lastgroup=last, weighting=weighting,
        goodness_of_fit=True,
    )  # fmt: skip
    zf = zeroframe if use_zf else None
    run_both_fit(data, gdq, pdq, gain, rn, dark=dark, zeroframe=zf, params=params, **timing)


@pytest.mark.parametrize("seed", range(3))
def test_fit_random_segments_of_many_groups(seed):
    # long ramps: the tuned median sorts with np.sort above 64 differences
    arrays, dark, zeroframe, timing = _random_case(seed, 2, 70, ny=3, nx=5, chargeloss=True)
    data, gdq, pdq, gain, rn = arrays
    run_both_fit(data, gdq, pdq, gain, rn, dark=dark, zeroframe=zeroframe, **timing)


# --------------------------------------------------------------------------------------------
# a simulated segment through the pre-jump steps


@pytest.mark.slow
@pytest.mark.parametrize(
    ("mode", "kw"),
    [
        ("nircam_grism", dict(nints=3, ngroups=6, nframes=2, groupgap=1, zeroframe=True)),
        ("nrs_bots", dict(nints=100, ngroups=4)),  # jump's sigma clip across integrations
    ],
)
def test_simulated_segment(simulated, mode, kw):
    from tsogpu.config import PipelineConfig
    from tsogpu.io.reffiles import segment_references
    from tsogpu.io.uncal import read_uncal
    from tsogpu.pipeline import run_prejump

    sim = simulated(mode, ncols=24, seed=31, cr_rate=2e-3, **kw)
    config = PipelineConfig(refs={k: str(v) for k, v in sim.refs.items()})
    segment = read_uncal(sim.uncal)
    refs, _ = segment_references(sim.uncal, config)
    seg = run_prejump(segment, refs, config)
    exp = seg.exposure
    gain, rn = refs["gain"].arrays["data"], refs["readnoise"].arrays["data"]
    found = run_both_jump(
        seg.data, seg.groupdq, seg.pixeldq, gain, rn, nframes=exp.nframes, tgroup=exp.tgroup
    )
    assert found.number_crs > 0
    timing = dict(nframes=exp.nframes, groupgap=exp.groupgap, tgroup=exp.tgroup, tframe=exp.tframe)
    for params in (RampFit(), RampFit(suppress_one_group=False)):
        run_both_fit(
            seg.data, found.groupdq, found.pixeldq, gain, rn, dark=seg.average_dark_current,
            zeroframe=seg.zeroframe, params=params, **timing,
        )  # fmt: skip
