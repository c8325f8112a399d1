"""ramp_fit (OLS_C): hand-built catalogue pixels, and random/simulated ramps against stcal 1.20.

Catalogue pixels use gain G = 2 e/DN, CDS read noise 10 DN (so the per-read noise in
electrons is R = 10 * 2 / sqrt(2), R^2 = 200 e^2), TGROUP = TFRAME = 10 s, NFRAMES = 1, and
noiseless linear ramps of 100 DN per group (10 DN/s), so every weighting gives the exact
slope and the variances follow from stcal's formulas:

- n-group segment: var_r = 12 R^2 / ((n^3 - n) t^2 G^2), var_p = rate / (t G (n - 1));
- 2-group segment: var_r = RN_cds^2 / t^2 = 1 (DN/s)^2;
- integration: 1/VAR = sum of 1/var over segments; SCI = VAR_RNOISE * sum(slope / var_r);
  ERR = sqrt(1 / sum(1 / (var_p + var_r))).

Oracle tests (marked ``jwst``): DQ identical, NaN where stcal is NaN, SCI/ERR/VAR_* bit-equal
except where glibc's powf (which stcal calls for the optimal weights) is not correctly
rounded; those pixels differ by about 1e-7 relative, and the assertion is 1e-6.
"""

import logging

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from tsogpu import dq
from tsogpu.algorithms import ramp_fit, ramp_fit_fast, ramp_fit_fast_segments
from tsogpu.config import RampFit

DNU = dq.DO_NOT_USE
SAT = dq.SATURATED
JUMP = dq.JUMP_DET
PERS = dq.PIXEL["PERSISTENCE"]
CHARGELOSS = dq.CHARGELOSS

logging.getLogger("stcal").setLevel(logging.ERROR)
logging.getLogger("jwst").setLevel(logging.ERROR)

GAIN = 2.0
RN_CDS = 10.0
T = 10.0
R2 = (RN_CDS * GAIN / np.sqrt(2.0)) ** 2  # 200 e^2
TIMING = dict(nframes=1, groupgap=0, tgroup=T, tframe=T)
FIELDS = ("sci", "err", "dq", "var_poisson", "var_rnoise")


def _var_r(n):
    return 12.0 * R2 / ((n**3 - n) * T**2 * GAIN**2)


def _var_p(rate, n):
    return rate / (T * GAIN * (n - 1))


def _fit_one(ramps, gdq=None, pixeldq=0, params=None, zeroframe=None, timing=TIMING):
    """Fit one pixel: ``ramps`` (nints, ngroups) in DN. Returns (rateints, rate) as dicts."""
    params = RampFit() if params is None else params
    data = np.asarray(ramps, dtype=np.float32)[:, :, None, None]
    groupdq = np.zeros(data.shape, np.uint8) if gdq is None else np.asarray(gdq, np.uint8)
    groupdq = groupdq.reshape(data.shape)
    pdq = np.full((1, 1), pixeldq, np.uint32)
    gain = np.full((1, 1), GAIN, np.float32)
    rn = np.full((1, 1), RN_CDS, np.float32)
    zf = None if zeroframe is None else np.asarray(zeroframe, np.float32).reshape(-1, 1, 1)
    res = ramp_fit.fit_ramps(data, groupdq, pdq, gain, rn, params, zeroframe=zf, **timing)
    ints = {k: v[:, 0, 0] for k, v in zip(FIELDS, res.rateints, strict=True)}
    rate = {k: v[0, 0] for k, v in zip(FIELDS, res.rate, strict=True)}
    return ints, rate


def _line(ngroups, rate_dn_per_group=100.0, offset=50.0):
    return offset + rate_dn_per_group * np.arange(ngroups)


def _assert_fit(got, sci, var_p, var_r, err, dq_value):
    if np.isnan(sci):
        assert np.isnan(got["sci"])
    else:
        assert_allclose(got["sci"], sci, rtol=1e-6)
    assert_allclose(got["var_poisson"], var_p, rtol=1e-6)
    assert_allclose(got["var_rnoise"], var_r, rtol=1e-6)
    assert_allclose(got["err"], err, rtol=1e-6)
    assert got["dq"] == dq_value


# ---------------------------------------------------------------------------------------
# Catalogue


def test_clean_ramp():
    ints, rate = _fit_one([_line(5)])
    vp, vr = _var_p(10.0, 5), _var_r(5)  # 0.125, 0.05
    one = {k: v[0] for k, v in ints.items()}
    _assert_fit(one, 10.0, vp, vr, np.sqrt(vp + vr), 0)
    _assert_fit(rate, 10.0, vp, vr, np.sqrt(vp + vr), 0)


def test_jump_in_group_3_gives_two_segments():
    # A CR of 1000 DN lands in group 3: segments [0, 3) and [3, 6); the jump read starts
    # the second. The median rate skips the jump difference, so it stays 10 DN/s.
    ramp = _line(6)
    ramp[3:] += 1000.0
    gdq = np.zeros((1, 6), np.uint8)
    gdq[0, 3] = JUMP
    ints, rate = _fit_one([ramp], gdq)
    vp3, vr3 = _var_p(10.0, 3), _var_r(3)  # 0.25 and 0.25 per segment
    vp, vr = 1 / (2 / vp3), 1 / (2 / vr3)
    err = np.sqrt(1 / (2 / (vp3 + vr3)))
    _assert_fit({k: v[0] for k, v in ints.items()}, 10.0, vp, vr, err, JUMP)
    _assert_fit(rate, 10.0, vp, vr, np.sqrt(vp + vr), JUMP)


def test_two_consecutive_jumps_lose_the_first_jump_group():
    ramp = _line(7)
    ramp[3:] += 500.0
    ramp[4:] += 500.0
    gdq = np.zeros((1, 7), np.uint8)
    gdq[0, 3] = gdq[0, 4] = JUMP
    ints, _ = _fit_one([ramp], gdq)
    # segments [0, 3) and [4, 7): both length 3
    assert_allclose(ints["var_rnoise"][0], 1 / (2 / _var_r(3)), rtol=1e-6)
    assert_allclose(ints["sci"][0], 10.0, rtol=1e-6)


def test_group_0_saturated():
    ints, rate = _fit_one([_line(4)], np.full((1, 4), SAT))
    _assert_fit({k: v[0] for k, v in ints.items()}, np.nan, 0, 0, 0, DNU | SAT)
    _assert_fit(rate, np.nan, 0, 0, 0, DNU | SAT)


def test_saturated_from_group_1_is_suppressed():
    # only group 0 good: suppress_one_group turns the ramp into "no good group"
    gdq = np.array([[0, SAT, SAT, SAT]])
    ints, rate = _fit_one([_line(4)], gdq)
    _assert_fit({k: v[0] for k, v in ints.items()}, np.nan, 0, 0, 0, DNU | SAT)
    _assert_fit(rate, np.nan, 0, 0, 0, DNU | SAT)


def test_saturated_from_group_1_without_suppression_uses_0th_group_timing():
    gdq = np.array([[0, SAT, SAT, SAT]])
    ints, _ = _fit_one([_line(4)], gdq, params=RampFit(suppress_one_group=False))
    t1 = (1 + 1) * T / 2  # (NFRAMES + 1) * TFRAME / 2
    slope = 50.0 / t1
    vp = slope / (t1 * GAIN)  # median rate = group 0 / t1
    vr = 12 * R2 / (6 * t1**2 * GAIN**2)
    # partial saturation: SAT is set but the slope is kept
    _assert_fit({k: v[0] for k, v in ints.items()}, slope, vp, vr, np.sqrt(vp + vr), SAT)


def test_saturated_from_group_2_fits_two_groups():
    gdq = np.array([[0, 0, SAT, SAT, SAT]])
    ints, rate = _fit_one([_line(5)], gdq)
    vp, vr = _var_p(10.0, 2), RN_CDS**2 / T**2  # 0.5, 1.0
    _assert_fit({k: v[0] for k, v in ints.items()}, 10.0, vp, vr, np.sqrt(vp + vr), SAT)
    _assert_fit(rate, 10.0, vp, vr, np.sqrt(vp + vr), SAT)


def test_all_groups_do_not_use():
    ints, rate = _fit_one([_line(4)], np.full((1, 4), DNU))
    _assert_fit({k: v[0] for k, v in ints.items()}, np.nan, 0, 0, 0, DNU)
    _assert_fit(rate, np.nan, 0, 0, 0, DNU)


def test_pixeldq_do_not_use_gives_nan_and_zero_variances():
    ints, rate = _fit_one([_line(4)], pixeldq=DNU | dq.PIXEL["HOT"])
    _assert_fit({k: v[0] for k, v in ints.items()}, np.nan, 0, 0, 0, DNU | dq.PIXEL["HOT"])
    _assert_fit(rate, np.nan, 0, 0, 0, DNU | dq.PIXEL["HOT"])


def test_bad_gain_flags_no_gain_value():
    data = np.asarray([_line(4)], np.float32)[:, :, None, None]
    res = ramp_fit.fit_ramps(
        data,
        np.zeros(data.shape, np.uint8),
        np.zeros((1, 1), np.uint32),
        np.zeros((1, 1), np.float32),
        np.full((1, 1), RN_CDS, np.float32),
        RampFit(),
        **TIMING,
    )
    assert res.rate.dq[0, 0] == DNU | dq.NO_GAIN_VALUE
    assert np.isnan(res.rate.sci[0, 0]) and res.rate.err[0, 0] == 0


def test_first_group_saturated_with_zeroframe():
    gdq = np.full((1, 4), SAT)
    params = RampFit(suppress_one_group=False)
    ints, _ = _fit_one([_line(4)], gdq, params=params, zeroframe=[25.0])
    slope = 25.0 / T  # ZEROFRAME / TFRAME
    vp = slope / (T * GAIN)
    vr = 12 * R2 / (6 * T**2 * GAIN**2)
    _assert_fit({k: v[0] for k, v in ints.items()}, slope, vp, vr, np.sqrt(vp + vr), SAT)
    # the jwst default (suppress_one_group=True) never uses ZEROFRAME
    ints, _ = _fit_one([_line(4)], gdq, zeroframe=[25.0])
    assert np.isnan(ints["sci"][0]) and ints["dq"][0] == DNU | SAT


def test_one_group_ramp():
    ints, _ = _fit_one([[50.0]], params=RampFit(suppress_one_group=True))
    t1 = (1 + 1) * T / 2
    assert_allclose(ints["sci"][0], 50.0 / t1, rtol=1e-6)  # suppression is off for NGROUPS=1


def test_two_integrations_with_different_rates():
    # the Poisson variance uses the mean of the integrations' median rates (15 DN/s)
    ints, rate = _fit_one([_line(5, 100.0), _line(5, 200.0)])
    vp, vr = _var_p(15.0, 5), _var_r(5)
    assert_allclose(ints["sci"], [10.0, 20.0], rtol=1e-6)
    assert_allclose(ints["var_poisson"], [vp, vp], rtol=1e-6)
    assert_allclose(ints["var_rnoise"], [vr, vr], rtol=1e-6)
    # exposure: weighted by inverse read-noise variance only (stcal >= 1.19)
    _assert_fit(rate, 15.0, vp / 2, vr / 2, np.sqrt(vp / 2 + vr / 2), 0)


def test_read_noise_variance_cut_off_zeroes_the_slope():
    # TGROUP = 1 ms, 2 groups: var_r = RN_cds^2 / TGROUP^2 = 1e8 >= 1e6 -> VAR_RNOISE = 0,
    # SCI = sum(slope/var_r) * VAR_RNOISE = 0, ERR = 0 (its variance is above 1e6 as well).
    t = 0.001
    timing = dict(nframes=1, groupgap=0, tgroup=t, tframe=t)
    ints, rate = _fit_one([[0.0, 0.01]], timing=timing)
    tg = float(np.float32(t))
    vp = (0.01 / tg) / (tg * GAIN)  # 5000
    assert ints["sci"][0] == 0.0 and ints["var_rnoise"][0] == 0.0 and ints["err"][0] == 0.0
    assert_allclose(ints["var_poisson"][0], vp, rtol=1e-6)
    assert rate["sci"] == 0.0 and rate["var_rnoise"] == 0.0
    assert_allclose(rate["err"], np.sqrt(vp), rtol=1e-6)


def test_persistence_is_good_for_segments_and_flagged():
    gdq = np.array([[0, PERS, 0, 0]])
    ints, rate = _fit_one([_line(4)], gdq)
    assert_allclose(ints["sci"][0], 10.0, rtol=1e-6)
    assert_allclose(ints["var_rnoise"][0], _var_r(4), rtol=1e-6)
    assert ints["dq"][0] == PERS and rate["dq"] == PERS


def test_chargeloss_recomputes_only_the_read_noise_variance():
    # groups 3-4 CHARGELOSS|DNU: the slope, VAR_POISSON and ERR come from groups 0-2, but
    # VAR_RNOISE is recomputed as if the whole 5-group ramp were usable.
    gdq = np.array([[0, 0, 0, CHARGELOSS | DNU, CHARGELOSS | DNU]])
    ints, rate = _fit_one([_line(5)], gdq)
    vp3, vr3 = _var_p(10.0, 3), _var_r(3)
    _assert_fit({k: v[0] for k, v in ints.items()}, 10.0, vp3, _var_r(5), np.sqrt(vp3 + vr3), 0)
    _assert_fit(rate, 10.0, vp3, _var_r(5), np.sqrt(vp3 + vr3), 0)


def test_firstgroup_lastgroup():
    ramp = _line(6)
    ramp[0] = 1e4  # excluded by firstgroup=1
    ramp[5] = -1e4  # excluded by lastgroup=4
    ints, _ = _fit_one([ramp], params=RampFit(firstgroup=1, lastgroup=4))
    assert_allclose(ints["sci"][0], 10.0, rtol=1e-6)
    assert_allclose(ints["var_rnoise"][0], _var_r(4), rtol=1e-6)


def test_flag_group_range_quirks():
    gdq = np.zeros((1, 5, 1, 1), np.uint8)
    assert_array_equal(ramp_fit.flag_group_range(gdq, 1, 3)[0, :, 0, 0], [DNU, 0, 0, 0, DNU])
    assert_array_equal(ramp_fit.flag_group_range(gdq, -2, 3)[0, :, 0, 0], [0, 0, 0, 0, DNU])
    # firstgroup >= lastgroup: both ignored
    assert not ramp_fit.flag_group_range(gdq, 3, 3).any()
    assert not gdq.any()


def test_exposure_fully_saturated():
    gdq = np.full((2, 3, 2, 2), SAT, np.uint8)
    assert ramp_fit.exposure_fully_saturated(gdq)
    gdq[1, 0, 1, 1] = 0
    assert not ramp_fit.exposure_fully_saturated(gdq)


# ---------------------------------------------------------------------------------------
# Random and simulated ramps


def _random_case(seed, nints, ngroups, ny=10, nx=13, nframes=1, groupgap=0, chargeloss=False):
    """Ramps with noise, CRs (data jump + JUMP), saturation, DNU, PERSISTENCE, bad pixels."""
    rng = np.random.default_rng(seed)
    tframe = 1.5
    tgroup = tframe * (nframes + groupgap)
    gain = rng.uniform(1.0, 2.5, (ny, nx)).astype(np.float32)
    gain[0, :3] = [0.0, np.nan, -1.0]
    rn = rng.uniform(3.0, 25.0, (ny, nx)).astype(np.float32)
    rate = 10 ** rng.uniform(-1, 4, (ny, nx)) * rng.choice([-1, 1, 1, 1], (ny, nx))
    t = tgroup * np.arange(1, ngroups + 1)
    level = rate[None, None] * t[None, :, None, None] * rng.uniform(0.8, 1.2, (nints, 1, ny, nx))
    data = level + rng.normal(0.0, 10.0, (nints, ngroups, ny, nx))
    gdq = np.zeros(data.shape, np.uint8)
    u = rng.random(data.shape)
    cr = u < 0.08
    gdq[cr] |= JUMP
    data += np.cumsum(np.where(cr, rng.uniform(50, 5000, data.shape), 0.0), axis=1)
    gdq[(u > 0.08) & (u < 0.11)] |= DNU
    gdq[(u > 0.11) & (u < 0.12)] |= JUMP | DNU
    gdq[(u > 0.12) & (u < 0.15)] |= PERS
    if chargeloss:
        gdq[(u > 0.15) & (u < 0.18)] |= CHARGELOSS | DNU
        gdq[(u > 0.18) & (u < 0.19)] |= CHARGELOSS
    first_sat = np.where(
        rng.random((nints, ny, nx)) < 0.25, rng.integers(0, ngroups, (nints, ny, nx)), ngroups
    )
    for g in range(ngroups):
        gdq[:, g][first_sat <= g] |= SAT
    data[u > 0.995] = np.nan
    pixeldq = np.zeros((ny, nx), np.uint32)
    pixeldq[1, :3] = [DNU, SAT, dq.PIXEL["HOT"]]
    dark = rng.uniform(0.0, 0.5, (ny, nx)).astype(np.float32)
    zeroframe = (rate[None] * tframe + rng.normal(0, 5, (nints, ny, nx))).astype(np.float32)
    zeroframe[rng.random(zeroframe.shape) < 0.2] = 0.0
    timing = dict(nframes=nframes, groupgap=groupgap, tgroup=tgroup, tframe=tframe)
    arrays = (data.astype(np.float32), gdq, pixeldq, gain, rn)
    return arrays, dark, zeroframe, timing


def stcal_fit(
    arrays, params, timing, dark=None, zeroframe=None, algorithm="OLS_C", instrument="NIRCAM"
):
    """stcal's ramp fit (``algorithm``: OLS_C or LIKELY) on copies of the arrays, set up as
    jwst 3.0's RampFitStep does; (rateints arrays, rate arrays) as tsogpu orders them, or None
    where stcal fits nothing."""
    pytest.importorskip("stcal")
    pytest.importorskip("jwst")
    from jwst.ramp_fitting.ramp_fit_step import set_groupdq
    from stcal.ramp_fitting import ramp_fit as stcal_ramp_fit
    from stdatamodels.jwst import datamodels
    from stdatamodels.jwst.datamodels import dqflags

    data, gdq, pixeldq, gain, rn = (a.copy() for a in arrays)
    model = datamodels.RampModel(data=data, groupdq=gdq, pixeldq=pixeldq)
    model.meta.instrument.name = instrument
    model.meta.exposure.frame_time = timing["tframe"]
    model.meta.exposure.group_time = timing["tgroup"]
    model.meta.exposure.groupgap = timing["groupgap"]
    model.meta.exposure.nframes = timing["nframes"]
    model.meta.exposure.drop_frames1 = 0
    if dark is not None:
        model.average_dark_current = dark.copy()
    if zeroframe is not None:
        model.zeroframe = zeroframe.copy()
    if params.firstgroup is not None or params.lastgroup is not None:
        set_groupdq(
            params.firstgroup, params.lastgroup, data.shape[1], model.groupdq, dqflags.group
        )
    image, cube, _ = stcal_ramp_fit.ramp_fit(
        model,
        False,
        rn,
        gain,
        algorithm,
        "optimal",
        "1",
        dqflags.pixel,
        suppress_one_group=params.suppress_one_group,
    )
    if image is None:
        return None
    keys = ("slope", "err", "dq", "var_poisson", "var_rnoise")
    return [cube[k] for k in keys], [image[k] for k in keys]


def _assert_matches(ours, theirs, label):
    for name, a, b in zip(FIELDS, ours, theirs, strict=True):
        b = np.asarray(b)
        assert a.dtype == b.dtype, (label, name)
        if name == "dq":
            assert_array_equal(a, b, err_msg=f"{label} {name}")
            continue
        assert_array_equal(np.isnan(a), np.isnan(b), err_msg=f"{label} {name}: NaN")
        finite = ~np.isnan(b)
        # bit-equal except for rare 1-ulp powf roundings in the weights (see module doc)
        assert_allclose(a[finite], b[finite], rtol=1e-6, atol=0, err_msg=f"{label} {name}")


CASES = [
    # (nints, ngroups, nframes, groupgap, suppress, zeroframe, first/last, chargeloss)
    (1, 1, 1, 0, True, False, None, False),
    (3, 1, 4, 1, True, True, None, False),
    (2, 2, 1, 0, True, True, None, False),
    (2, 2, 1, 0, False, True, None, True),
    (3, 3, 2, 1, True, False, None, False),
    (3, 3, 2, 1, False, True, None, False),
    (1, 5, 1, 0, True, False, None, True),
    (4, 5, 4, 1, False, True, None, False),
    (2, 8, 1, 0, True, False, (1, 6), False),
    (6, 10, 2, 0, True, True, None, True),
    (2, 30, 1, 0, True, False, None, False),
]


@pytest.mark.jwst
@pytest.mark.parametrize("case", CASES, ids=[f"case{i}" for i in range(len(CASES))])
def test_random_ramps_match_stcal(case):
    nints, ngroups, nframes, groupgap, suppress, use_zf, group_range, cl = case
    seed = 1000 + CASES.index(case)
    arrays, dark, zeroframe, timing = _random_case(
        seed, nints, ngroups, nframes=nframes, groupgap=groupgap, chargeloss=cl
    )
    zeroframe = zeroframe if use_zf else None
    first, last = group_range or (None, None)
    params = RampFit(suppress_one_group=suppress, firstgroup=first, lastgroup=last)
    copies = [a.copy() for a in (*arrays, dark, zeroframe) if a is not None]
    res = ramp_fit.fit_ramps(
        *arrays, params, average_dark_current=dark, zeroframe=zeroframe, **timing
    )
    inputs = [a for a in (*arrays, dark, zeroframe) if a is not None]
    for before, after in zip(copies, inputs, strict=True):  # inputs untouched
        assert_array_equal(before, after)
    cube, image = stcal_fit(arrays, params, timing, dark=dark, zeroframe=zeroframe)
    _assert_matches(res.rateints, cube, "rateints")
    _assert_matches(res.rate, image, "rate")


@pytest.mark.jwst
def test_simulated_segment_matches_stcal(simulated):
    """A tsogpu.simulate segment through the pre-jump steps, JUMP set at the true CRs."""
    pytest.importorskip("jwst")
    from tsogpu.config import PipelineConfig
    from tsogpu.io.reffiles import segment_references
    from tsogpu.io.uncal import read_uncal
    from tsogpu.pipeline import run_prejump

    sim = simulated(
        "nircam_grism",
        nints=3,
        ngroups=6,
        seed=21,
        nframes=2,
        groupgap=1,
        zeroframe=True,
        cr_rate=2e-3,
    )
    config = PipelineConfig(refs={k: str(v) for k, v in sim.refs.items()})
    segment = read_uncal(sim.uncal)
    refs, _ = segment_references(sim.uncal, config)
    seg = run_prejump(segment, refs, config)
    truth = np.load(sim.truth)
    gdq = seg.groupdq.copy()
    cr = truth["cr"]
    gdq[cr["int"], cr["group"], cr["y"], cr["x"]] |= np.uint8(JUMP)
    assert (gdq & JUMP).any() and (gdq & SAT).any()
    arrays = (
        seg.data,
        gdq,
        seg.pixeldq,
        refs["gain"].arrays["data"],
        refs["readnoise"].arrays["data"],
    )
    exp = seg.exposure
    timing = dict(nframes=exp.nframes, groupgap=exp.groupgap, tgroup=exp.tgroup, tframe=exp.tframe)
    for params in (RampFit(), RampFit(suppress_one_group=False)):
        res = ramp_fit.fit_ramps(
            *arrays,
            params,
            average_dark_current=seg.average_dark_current,
            zeroframe=seg.zeroframe,
            **timing,
        )
        cube, image = stcal_fit(
            arrays, params, timing, dark=seg.average_dark_current, zeroframe=seg.zeroframe
        )
        _assert_matches(res.rateints, cube, "rateints")
        _assert_matches(res.rate, image, "rate")


def test_row_halves_reproduce_the_whole_array():
    arrays, dark, zeroframe, timing = _random_case(7, 3, 6, ny=11, nx=9, chargeloss=True)
    params = RampFit(suppress_one_group=False)
    whole = ramp_fit.fit_ramps(
        *arrays, params, average_dark_current=dark, zeroframe=zeroframe, **timing
    )
    data, gdq, pixeldq, gain, rn = arrays
    parts = []
    for rows in (slice(0, 4), slice(4, 11)):
        parts.append(
            ramp_fit.fit_ramps(
                data[:, :, rows],
                gdq[:, :, rows],
                pixeldq[rows],
                gain[rows],
                rn[rows],
                params,
                average_dark_current=dark[rows],
                zeroframe=zeroframe[:, rows],
                **timing,
            )
        )
    for k in range(5):
        glued = np.concatenate([p.rateints[k] for p in parts], axis=1)
        assert glued.tobytes() == whole.rateints[k].tobytes()
        glued = np.concatenate([p.rate[k] for p in parts], axis=0)
        assert glued.tobytes() == whole.rate[k].tobytes()


def _same_bits(a, b):
    """Bit-equal arrays, but any NaN equals any NaN (NaN signs depend on array positions)."""
    if a.dtype.kind != "f":
        return np.array_equal(a, b)
    nan = np.isnan(a)
    return bool(
        np.array_equal(nan, np.isnan(b))
        and np.array_equal(a[~nan].view(np.uint32), b[~nan].view(np.uint32))
    )


@pytest.mark.parametrize("suppress", [True, False])
def test_block_size_does_not_change_the_results(monkeypatch, suppress):
    arrays, dark, zeroframe, timing = _random_case(11, 5, 7, ny=9, nx=14, chargeloss=True)
    params = RampFit(suppress_one_group=suppress)
    kw = dict(average_dark_current=dark, zeroframe=zeroframe, **timing)
    whole = ramp_fit_fast.fit_ramps(*arrays, params, **kw)
    for block in (1, 5, 64, 200):
        monkeypatch.setattr(ramp_fit_fast, "BLOCK_RAMPS", block)
        part = ramp_fit_fast.fit_ramps(*arrays, params, **kw)
        for a, b in zip((*part.rateints, *part.rate), (*whole.rateints, *whole.rate), strict=True):
            assert a.dtype == b.dtype and a.shape == b.shape
            assert _same_bits(a, b), block


def test_sorting_network_puts_the_lower_half_in_order():
    # 0-1 principle: a comparator network sorts every input iff it sorts every 0-1 input
    for n in range(1, 17):
        bits = (np.arange(2**n)[None, :] >> np.arange(n)[:, None]) & 1
        rows = list(bits.astype(np.uint8))
        for a, b in ramp_fit_fast._sorting_network(n):
            rows[a], rows[b] = np.minimum(rows[a], rows[b]), np.maximum(rows[a], rows[b])
        expected = np.sort(bits, axis=0)[: n // 2 + 1]
        assert_array_equal(np.array(rows[: n // 2 + 1]), expected, err_msg=f"n={n}")
    rng = np.random.default_rng(5)
    for n in (19, 20, 39, 64):
        values = rng.integers(0, 5, (n, 4000)).astype(np.float64)
        rows = list(values)
        for a, b in ramp_fit_fast._sorting_network(n):
            rows[a], rows[b] = np.minimum(rows[a], rows[b]), np.maximum(rows[a], rows[b])
        assert_array_equal(np.array(rows[: n // 2 + 1]), np.sort(values, axis=0)[: n // 2 + 1])


@pytest.mark.parametrize("ngroups", [1, 3, 4, 7, 12])
def test_weight_table(ngroups):
    """powf(|(k - mid) / mid|, P) for groups in the segment, 0 for every group outside it."""
    table = ramp_fit_fast_segments.weight_table(ngroups, 2.5)
    npow = ramp_fit_fast_segments.NCLASS
    for length in range(ngroups + 1):
        for c, power in enumerate((*ramp_fit.SNR_POWERS, 2.5)):
            for start in range(ngroups - length + 1):
                g = np.arange(ngroups)
                got = table[ngroups + (length * npow + c) * ngroups - start + g]
                inside = (g >= start) & (g < start + length)
                assert not got[~inside].any()
                if length < 3:
                    assert not got.any()
                    continue
                mid = (length - 1.0) / 2.0
                x = np.abs((g[inside] - start - mid) * (1.0 / mid))
                want = np.power(
                    x.astype(np.float32).astype(np.float64), np.float64(np.float32(power))
                )
                assert_array_equal(got[inside], want.astype(np.float32).astype(np.float64))
