"""jump: hand-built catalogue cases with worked-out answers, and comparisons with stcal/jwst.

Catalogue cases use noise-free ramps, gain 1 e-/DN, NFRAMES 1 and read noise 5 DN unless
stated, so for a pixel whose other differences are all 10 DN the noise is
``sigma = sqrt(|median| + rn**2) = sqrt(10 + 25) = 5.92`` and a 500 DN jump has ratio 84.5
(between min_jump_to_flag_neighbors=10 and max=1000: its 4 neighbours are flagged too).
"""

import dataclasses
import warnings

import numpy as np
import pytest

from tsogpu import dq
from tsogpu.algorithms import jump, jump_fast
from tsogpu.algorithms.jump import FrameStats, all_dnu_planes, detect_jumps, frame_stats
from tsogpu.config import Jump
from tsogpu.errors import InputError

JUMP, SAT, DNU = dq.JUMP_DET, dq.SATURATED, dq.DO_NOT_USE
TGROUP = 10.0


def _ramp(nints, ngroups, ny, nx, rate=10.0):
    t = np.arange(ngroups, dtype=np.float32)[None, :, None, None]
    return np.broadcast_to(np.float32(rate) * t, (nints, ngroups, ny, nx)).copy()


def _run(data, gdq=None, gain=1.0, rn=5.0, pdq=None, tgroup=TGROUP, **params):
    nints, ngroups, ny, nx = data.shape
    gdq = np.zeros(data.shape, np.uint8) if gdq is None else gdq
    pdq = np.zeros((ny, nx), np.uint32) if pdq is None else pdq
    gain = np.broadcast_to(np.float32(gain), (ny, nx)).astype(np.float32)
    rn = np.broadcast_to(np.float32(rn), (ny, nx)).astype(np.float32)
    return detect_jumps(
        data, gdq, pdq, gain, rn, Jump(**params), nframes=1, groupgap=0, tgroup=tgroup
    )


def _jumps(gdq):
    """Sorted list of (int, group, y, x) with JUMP set."""
    return [tuple(int(v) for v in idx) for idx in np.argwhere(gdq & JUMP)]


# --------------------------------------------------------------------------------------------
# Catalogue


def test_one_cr_in_group_3_flags_it_and_its_four_neighbours():
    # 1 int x 6 groups: iterative path. Centre diffs [10,10,510,10,10]: the max is set aside,
    # median 10, ratio 500/5.92 = 84.5 > 4 -> group 3. Neighbours: ratio 84.5 in (10, 1000).
    data = _ramp(1, 6, 3, 3)
    data[0, 3:, 1, 1] += 500
    res = _run(data)
    assert res.status == "COMPLETE"
    cross = [(0, 3, 0, 1), (0, 3, 1, 0), (0, 3, 1, 1), (0, 3, 1, 2), (0, 3, 2, 1)]
    assert _jumps(res.groupdq) == cross
    assert res.number_crs == 1
    # PRIMECRS = 1000 * 1 / (TGROUP * (1*6 - 0 - 1) * 9)
    assert res.primary_cosmic_rays == pytest.approx(1000 / (10.0 * 5 * 9), rel=1e-15)
    assert res.number_extended_events == 0.0


def test_three_group_ramp_uses_the_three_group_threshold():
    # 1 int x 3 groups = 2 usable diffs: median = min |diff| = 0, sigma = rn = 10,
    # threshold 6 (not 4): 65 DN -> ratio 6.5 flagged, 55 DN -> 5.5 not flagged.
    data = np.zeros((1, 3, 1, 2), np.float32)
    data[0, 2, 0, 0] = 65
    data[0, 2, 0, 1] = 55
    res = _run(data, rn=10.0)
    assert _jumps(res.groupdq) == [(0, 2, 0, 0)]  # ratio 6.5 < 10: no neighbour flag


def test_four_group_ramp_uses_the_four_group_threshold():
    # 1 int x 4 groups = 3 usable diffs: median of |diffs| = 0, sigma 10, threshold 5.
    data = np.zeros((1, 4, 1, 2), np.float32)
    data[0, 3, 0, 0] = 55  # 5.5 > 5
    data[0, 3, 0, 1] = 45  # 4.5 < 5
    res = _run(data, rn=10.0)
    assert _jumps(res.groupdq) == [(0, 3, 0, 0)]


def test_single_pass_flags_several_jumps_in_one_ramp():
    # 1 int x 12 groups = 11 diffs >= min_diffs_single_pass: every diff with
    # |diff - median| / sigma > 4 is flagged in one pass.
    data = _ramp(1, 12, 1, 1)
    data[0, 4:] += 300
    data[0, 9:] += 200
    res = _run(data, flag_4_neighbors=False)
    assert _jumps(res.groupdq) == [(0, 4, 0, 0), (0, 9, 0, 0)]
    assert res.number_crs == 2


def test_saturated_ramp():
    # pixel 0 saturated from group 1: no usable difference, nothing flagged.
    # pixel 1: CR of 500 at group 2, saturated from group 3: diffs [10, 510] -> 2 usable,
    # median 10, ratio 84.5 > 6 -> JUMP at group 2; its neighbour (pixel 0) is SAT there.
    # pixel 2: input JUMP|SAT and JUMP|DNU lose their JUMP bit; it is pixel 1's neighbour, so
    # it gets JUMP at group 2.
    data = _ramp(1, 5, 1, 3)
    data[0, 2:, 0, 1] += 500
    gdq = np.zeros(data.shape, np.uint8)
    gdq[0, 1:, 0, 0] = SAT
    gdq[0, 3:, 0, 1] = SAT
    gdq[0, 3, 0, 2] = JUMP | SAT
    gdq[0, 4, 0, 2] = JUMP | DNU
    res = _run(data, gdq)
    out = res.groupdq[0, :, 0, :]
    np.testing.assert_array_equal(out[:, 0], [0, SAT, SAT, SAT, SAT])
    np.testing.assert_array_equal(out[:, 1], [0, 0, JUMP, SAT, SAT])
    np.testing.assert_array_equal(out[:, 2], [0, 0, JUMP, SAT, DNU])


def test_neighbours_at_the_frame_edge_do_not_wrap_and_skip_saturated():
    # CR in the corner (0, 0) at group 3: neighbours (0, 1) and (1, 0) only; (1, 0) is SAT
    # from group 3 so it is left alone; nothing wraps to (0, 2) or (2, 0).
    data = _ramp(1, 6, 3, 3)
    data[0, 3:, 0, 0] += 500
    gdq = np.zeros(data.shape, np.uint8)
    gdq[0, 3:, 1, 0] = SAT
    res = _run(data, gdq)
    assert _jumps(res.groupdq) == [(0, 3, 0, 0), (0, 3, 0, 1)]


@pytest.mark.parametrize(
    ("amplitude", "neighbours"),
    [(50.0, False), (500.0, True), (10000.0, False)],  # ratio 8.4, 84.5, 1688
)
def test_neighbour_flagging_limits(amplitude, neighbours):
    data = _ramp(1, 6, 3, 3)
    data[0, 3:, 1, 1] += amplitude
    res = _run(data)
    assert (0, 3, 1, 1) in _jumps(res.groupdq)
    assert len(_jumps(res.groupdq)) == (5 if neighbours else 1)


def test_after_jump_flagging_by_time():
    # time1 = 25 s, TGROUP 10 s -> 2 groups; dn1 = 100 DN * gain 2 = 200 e-.
    # pixel 0: 500 DN = 1000 e- at group 2 -> groups 3, 4 flagged as well.
    # pixel 1: 80 DN = 160 e- at group 5 (ratio 16, detected) < 200 e- -> not propagated.
    data = np.zeros((1, 8, 1, 2), np.float32)
    data[0, 2:, 0, 0] += 500
    data[0, 5:, 0, 1] += 80
    res = _run(
        data,
        gain=2.0,
        flag_4_neighbors=False,
        after_jump_flag_dn1=100.0,
        after_jump_flag_time1=25.0,
    )
    assert _jumps(res.groupdq) == [(0, 2, 0, 0), (0, 3, 0, 0), (0, 4, 0, 0), (0, 5, 0, 1)]
    assert res.number_crs == 2  # counted before after-jump flagging


def test_after_jump_flagging_stops_at_saturation():
    data = np.zeros((1, 8, 1, 1), np.float32)
    data[0, 2:, 0, 0] += 500
    gdq = np.zeros(data.shape, np.uint8)
    gdq[0, 4:, 0, 0] = SAT
    res = _run(data, gdq, after_jump_flag_dn1=10.0, after_jump_flag_time1=100.0)
    assert _jumps(res.groupdq) == [(0, 2, 0, 0), (0, 3, 0, 0)]


def test_bad_gain_pixels():
    # gain 0 and NaN: PIXELDQ gets NO_GAIN_VALUE|DO_NOT_USE; their data become 0 / NaN in e-,
    # so nothing is flagged there. Pixel 0 (gain 1) is flagged as usual.
    data = _ramp(1, 6, 1, 3)
    data[0, 3:] += 500
    gain = np.array([[1.0, 0.0, np.nan]], np.float32)
    pdq = np.array([[0, dq.PIXEL["HOT"], 0]], np.uint32)
    res = detect_jumps(
        data,
        np.zeros(data.shape, np.uint8),
        pdq,
        gain,
        np.full((1, 3), 5.0, np.float32),
        Jump(flag_4_neighbors=False),
        nframes=1,
        groupgap=0,
        tgroup=TGROUP,
    )
    bad = dq.NO_GAIN_VALUE | dq.DO_NOT_USE
    np.testing.assert_array_equal(res.pixeldq, [[0, dq.PIXEL["HOT"] | bad, bad]])
    assert _jumps(res.groupdq) == [(0, 3, 0, 0)]


def test_two_groups_is_skipped():
    data = _ramp(2, 2, 2, 2)
    gdq = np.full(data.shape, JUMP | DNU, np.uint8)
    res = _run(data, gdq)
    assert res.status == "SKIPPED"
    np.testing.assert_array_equal(res.groupdq, gdq)
    assert res.primary_cosmic_rays is None


def test_too_few_usable_groups_skips_detection_but_not_the_clean_up():
    # groups 1 and 2 of int 0 are DNU everywhere: min usable groups 4 - 2 = 2 < 3 and fewer
    # than 100 ints: stcal returns -99 CRs; the JUMP|DNU clean-up still runs.
    data = _ramp(2, 4, 2, 2)
    data[1, 2:, 0, 0] += 500
    gdq = np.zeros(data.shape, np.uint8)
    gdq[0, 1:3] = DNU
    gdq[1, 3, 1, 1] = JUMP | DNU
    res = _run(data, gdq)
    assert res.status == "COMPLETE"
    assert res.number_crs == -99
    expected = gdq.copy()
    expected[1, 3, 1, 1] = DNU
    np.testing.assert_array_equal(res.groupdq, expected)
    # jwst writes the negative rate: 1000 * -99 / (TGROUP * (2*4 - 2 - 2) * 4)
    assert res.primary_cosmic_rays == pytest.approx(-99000 / (10.0 * 4 * 4), rel=1e-15)


def _sigclip_frame():
    # 100 ints x 4 groups x 1 x 2, rate 10; a CR of 500 in int 7 at group 2 of pixel 0.
    data = _ramp(100, 4, 1, 2)
    data[7, 2:, 0, 0] += 500
    return data


def test_sigma_clip_flags_the_outlying_integration():
    # diff 1 over 100 ints: 99 x 10 and one 510: median 10, std 49.7 -> 510 clipped; next
    # pass std 0, bounds [10, 10]; only 510 lies outside. Neighbour: ratio 84.5 -> flagged.
    res = _run(_sigclip_frame())
    assert _jumps(res.groupdq) == [(7, 2, 0, 0), (7, 2, 0, 1)]
    assert res.number_crs == 1


def test_sigma_clip_resets_jump_only_pixels_in_an_all_jump_or_dnu_plane():
    # pixel 1 is DNU in plane (7, 2): with pixel 0's JUMP the plane is all JUMP|DNU, so stcal
    # resets pixel 0 (exactly JUMP) to 0 and nothing is counted.
    gdq = np.zeros((100, 4, 1, 2), np.uint8)
    gdq[7, 2, 0, 1] = DNU
    res = _run(_sigclip_frame(), gdq)
    assert _jumps(res.groupdq) == []
    assert res.number_crs == 0
    assert res.sigclip_planes[7, 2] and res.sigclip_planes.sum() == 1


def test_ngroups_total_must_match():
    with pytest.raises(InputError, match="ngroups_total=7"):
        detect_jumps(
            _ramp(1, 5, 1, 1),
            np.zeros((1, 5, 1, 1), np.uint8),
            np.zeros((1, 1), np.uint32),
            np.ones((1, 1), np.float32),
            np.ones((1, 1), np.float32),
            Jump(),
            nframes=1,
            groupgap=0,
            tgroup=TGROUP,
            ngroups_total=7,
        )


# --------------------------------------------------------------------------------------------
# Random and simulated ramps


def _random_ramps(seed, nints, ngroups, ny, nx, cr=0.03, sat=0.02, dnu=0.02):
    """Ramps with a spread of rates, read and Poisson noise, CRs, saturation, DNU, bad gain."""
    rng = np.random.default_rng(seed)
    shape = (nints, ngroups, ny, nx)
    rate = rng.uniform(0, 300, (ny, nx)).astype(np.float32)
    rn = rng.uniform(5, 15, (ny, nx)).astype(np.float32)
    gain = rng.uniform(1.5, 2.5, (ny, nx)).astype(np.float32)
    t = np.arange(1, ngroups + 1, dtype=np.float32)[None, :, None, None]
    noise = rng.normal(0, 1, shape) * rn / np.sqrt(2) + rng.normal(0, 1, shape) * np.sqrt(
        np.maximum(rate * t, 1) / gain
    )
    crs = (rng.random(shape) < cr) * rng.uniform(20, 3000, shape)
    data = (rate * t + noise + np.cumsum(crs, axis=1)).astype(np.float32)
    gdq = np.zeros(shape, np.uint8)
    saturates = rng.random((nints, ny, nx)) < sat
    first_sat = rng.integers(1, ngroups, (nints, ny, nx))
    for g in range(ngroups):
        gdq[:, g][saturates & (g >= first_sat)] |= SAT
    gdq[rng.random(shape) < dnu] |= DNU
    gdq[rng.random(shape) < 0.005] |= JUMP  # pre-existing JUMP bits count in PRIMECRS
    pdq = np.zeros((ny, nx), np.uint32)
    gain[0, 1] = 0.0
    gain[1, 2] = np.nan
    return data, gdq, pdq, gain, rn


def _add_snowball(data, gdq, i, g, cy, cx, radius, sat_radius, amplitude=8000.0):
    ny, nx = data.shape[2:]
    yy, xx = np.mgrid[:ny, :nx]
    d2 = (yy - cy) ** 2 + (xx - cx) ** 2
    data[i, g:][:, d2 <= radius**2] += amplitude
    gdq[i, g:][:, d2 <= sat_radius**2] |= SAT


def _stcal_jump(data, gdq, pdq, gain, rn, p, nframes, tgroup):
    """stcal's detect_jumps_data with the JumpData jwst's JumpStep builds (no read_pattern)."""
    from stcal.jump.jump import detect_jumps_data
    from stcal.jump.jump_class import JumpData
    from stdatamodels.jwst.datamodels import dqflags

    jd = JumpData(gain2d=gain.copy(), rnoise2d=rn.copy(), dqflags=dqflags.pixel)
    jd.init_arrays_from_arrays(data.copy(), gdq.copy(), pdq.copy())
    # what JumpData(model) sets when the model has no read_pattern
    jd.nframes = nframes
    jd.dt_group = np.ones(1)
    jd.n_reads_groupdiff = np.ones(1) * 2 * nframes
    jd.set_detection_settings(
        p.rejection_threshold,
        p.three_group_rejection_threshold,
        p.four_group_rejection_threshold,
        p.max_jump_to_flag_neighbors,
        p.min_jump_to_flag_neighbors,
        p.flag_4_neighbors,
    )
    jd.set_after_jump(
        p.after_jump_flag_dn1,
        int(p.after_jump_flag_time1 // tgroup),
        p.after_jump_flag_dn2,
        int(p.after_jump_flag_time2 // tgroup),
    )
    jd.set_snowball_info(
        p.expand_large_events,
        p.min_jump_area,
        p.min_sat_area,
        p.expand_factor,
        p.sat_required_snowball,
        p.min_sat_radius_extend,
        p.sat_expand * 2,
        p.edge_size,
    )
    jd.set_shower_info(
        False, 1.2, 90, 1.0, 2.6, 1.1, p.min_diffs_single_pass, p.max_extended_radius * 2
    )
    jd.set_sigma_clipping_info(p.minimum_groups, p.minimum_sigclip_groups, p.only_use_ints)
    jd.max_cores = "1"
    jd.grps_masked_after_shower = int(15.0 // tgroup)
    jd.mask_persist_grps_next_int = p.mask_snowball_core_next_int
    jd.persist_grps_flagged = int(p.snowball_time_masked_next_int // tgroup)
    jd.max_shower_amplitude = jd.max_shower_amplitude * tgroup
    return detect_jumps_data(jd)


CASES = {
    # name: (nints, ngroups, ny, nx, nframes, params)
    "iterative": (3, 5, 8, 16, 1, {}),
    "iterative_3groups": (2, 3, 8, 16, 1, {}),
    "iterative_nframes4": (2, 6, 8, 16, 4, {}),
    "single_pass": (2, 14, 8, 16, 1, {}),
    "sigma_clip": (100, 5, 8, 16, 1, {}),
    "sigma_clip_all_diffs": (30, 5, 6, 8, 1, {"only_use_ints": False}),
    "after_jump": (
        4,
        6,
        8,
        16,
        1,
        {
            "after_jump_flag_dn1": 50.0,
            "after_jump_flag_time1": 25.0,
            "after_jump_flag_dn2": 500.0,
            "after_jump_flag_time2": 45.0,
        },
    ),
    "no_neighbours": (3, 5, 8, 16, 1, {"flag_4_neighbors": False}),
}


@pytest.mark.jwst
@pytest.mark.parametrize("name", list(CASES))
@pytest.mark.parametrize("seed", [0, 1])
def test_matches_stcal_on_random_ramps(name, seed):
    pytest.importorskip("stcal")
    nints, ngroups, ny, nx, nframes, kw = CASES[name]
    params = Jump(**kw)
    data, gdq, pdq, gain, rn = _random_ramps(seed, nints, ngroups, ny, nx)
    res = detect_jumps(data, gdq, pdq, gain, rn, params, nframes=nframes, groupgap=0, tgroup=TGROUP)
    ref_gdq, ref_pdq, ref_ncr, ref_nev = _stcal_jump(
        data, gdq, pdq, gain, rn, params, nframes, TGROUP
    )
    np.testing.assert_array_equal(res.groupdq, ref_gdq)
    np.testing.assert_array_equal(res.pixeldq, ref_pdq)
    assert res.number_crs == ref_ncr
    assert res.n_snowballs == ref_nev == 0
    assert np.count_nonzero(res.groupdq & JUMP) > np.count_nonzero(gdq & JUMP)


@pytest.mark.jwst
def test_sigma_clip_after_jump_on_pixels_jumped_by_a_neighbour():
    """The sigma-clip path takes each pixel's median only once it has a JUMP; after-jump
    flagging then needs it where neighbour flagging gave a pixel its first JUMP. Few CRs and
    a low DN threshold, so that such pixels exist and get flags after their jump."""
    pytest.importorskip("stcal")
    params = Jump(minimum_sigclip_groups=20, after_jump_flag_dn1=1.0, after_jump_flag_time1=25.0)
    data, gdq, pdq, gain, rn = _random_ramps(3, 20, 5, 16, 16, cr=0.01)
    res = detect_jumps(data, gdq, pdq, gain, rn, params, nframes=1, groupgap=0, tgroup=TGROUP)
    ref_gdq, ref_pdq, ref_ncr, _ = _stcal_jump(data, gdq, pdq, gain, rn, params, 1, TGROUP)
    np.testing.assert_array_equal(res.groupdq, ref_gdq)
    np.testing.assert_array_equal(res.pixeldq, ref_pdq)
    assert res.number_crs == ref_ncr


SNOWBALL_PARAMS = {
    "edge5": {"expand_large_events": True, "edge_size": 5},
    "default_edge": {"expand_large_events": True},
    "no_sat_required": {
        "expand_large_events": True,
        "edge_size": 5,
        "sat_required_snowball": False,
    },
    "short_persist": {
        "expand_large_events": True,
        "edge_size": 5,
        "snowball_time_masked_next_int": 30,
    },
}


@pytest.mark.jwst
@pytest.mark.parametrize("name", list(SNOWBALL_PARAMS))
def test_snowballs_match_stcal(name):
    pytest.importorskip("stcal")
    pytest.importorskip("skimage")
    params = Jump(**SNOWBALL_PARAMS[name])
    data, gdq, pdq, gain, rn = _random_ramps(5, 3, 6, 48, 40, cr=0.004, sat=0.0)
    _add_snowball(data, gdq, 0, 2, 20, 18, 7, 3.2)
    _add_snowball(data, gdq, 1, 3, 30, 25, 5, 2.0)
    _add_snowball(data, gdq, 2, 1, 3, 3, 6, 3.5)  # near the edge
    _add_snowball(data, gdq, 0, 4, 12, 30, 6.5, 3.8)
    res = detect_jumps(data, gdq, pdq, gain, rn, params, nframes=1, groupgap=0, tgroup=TGROUP)
    ref_gdq, _, ref_ncr, ref_nev = _stcal_jump(data, gdq, pdq, gain, rn, params, 1, TGROUP)
    np.testing.assert_array_equal(res.groupdq, ref_gdq)
    assert res.number_crs == ref_ncr
    assert res.n_snowballs == ref_nev > 0
    plain = detect_jumps(data, gdq, pdq, gain, rn, Jump(), nframes=1, groupgap=0, tgroup=TGROUP)
    assert np.count_nonzero(plain.groupdq != res.groupdq) > 50  # snowballs did something


@pytest.mark.jwst
@pytest.mark.parametrize("name", ["iterative", "sigma_clip", "after_jump"])
def test_primecrs_matches_jwst_jumpstep(name, tmp_path):
    """PRIMECRS/EXTNCRS and GROUPDQ against jwst's JumpStep on an in-memory RampModel."""
    pytest.importorskip("jwst")
    from jwst.jump import JumpStep
    from stdatamodels.jwst import datamodels

    nints, ngroups, ny, nx, nframes, kw = CASES[name]
    kw = dict(kw, expand_large_events=True, edge_size=2)
    data, gdq, pdq, gain, rn = _random_ramps(2, nints, ngroups, ny, nx, cr=0.01)

    def describe(model):
        model.meta.instrument.name = "NIRCAM"
        model.meta.instrument.detector = "NRCALONG"
        model.meta.exposure.type = "NRC_TSGRISM"
        model.meta.subarray.name = "SUBGRISM64"
        model.meta.subarray.xstart = model.meta.subarray.ystart = 1
        model.meta.subarray.xsize, model.meta.subarray.ysize = nx, ny

    ramp = datamodels.RampModel(data=data.copy(), groupdq=gdq.copy(), pixeldq=pdq.copy())
    describe(ramp)
    ramp.meta.exposure.nframes = nframes
    ramp.meta.exposure.groupgap = 0
    ramp.meta.exposure.group_time = TGROUP
    ramp.meta.exposure.ngroups, ramp.meta.exposure.nints = ngroups, nints
    ramp.meta.observation.date, ramp.meta.observation.time = "2024-01-01", "00:00:00"
    for cls, arr, fname in [
        (datamodels.GainModel, gain, "gain.fits"),
        (datamodels.ReadnoiseModel, rn, "rn.fits"),
    ]:
        ref = cls(data=arr.copy())
        describe(ref)
        ref.save(tmp_path / fname)
    out = JumpStep.call(
        ramp,
        override_gain=str(tmp_path / "gain.fits"),
        override_readnoise=str(tmp_path / "rn.fits"),
        **kw,
    )
    res = detect_jumps(
        data, gdq, pdq, gain, rn, Jump(**kw), nframes=nframes, groupgap=0, tgroup=TGROUP
    )
    np.testing.assert_array_equal(res.groupdq, out.groupdq)
    np.testing.assert_array_equal(res.pixeldq, out.pixeldq)
    assert res.primary_cosmic_rays == out.meta.exposure.primary_cosmic_rays
    assert res.number_extended_events == out.meta.exposure.extended_emission_events
    assert out.meta.cal_step.jump == res.status == "COMPLETE"


@pytest.mark.jwst
def test_sigma_clip_bounds_are_bit_identical_to_astropy():
    """The Wirth-median / sequential-sum emulation gives astropy's bounds to the last bit."""
    stats = pytest.importorskip("astropy.stats")
    rng = np.random.default_rng(11)
    for n in (2, 3, 4, 5, 17, 100, 129):
        mag = 10.0 ** rng.uniform(-4, 5, (n, 200))
        values = (rng.normal(0, 1, (n, 200)) * mag).astype(np.float32).astype(np.float64)
        values[rng.random(values.shape) < 0.1] = np.nan
        values[:, 0] = np.nan
        with pytest.warns(Warning):
            _, lo, hi = stats.sigma_clip(values, sigma=4.0, axis=0, return_bounds=True)
        lo2, hi2 = jump_fast._sigma_clip_bounds(values, np.isfinite(values), 4.0, 5)
        np.testing.assert_array_equal(lo2, lo)
        np.testing.assert_array_equal(hi2, hi)


@pytest.mark.jwst
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_sigma_clip_mask_is_astropys_including_ties_at_a_bound(dtype):
    """The sorted fast path plus its exact fallback give astropy's mask, bit for bit."""
    stats = pytest.importorskip("astropy.stats")
    rng = np.random.default_rng(12)
    for n in (2, 3, 4, 5, 17, 100, 129):
        mag = 10.0 ** rng.uniform(-4, 5, (n, 300))
        values = (rng.normal(0, 1, (n, 300)) * mag).astype(np.float32).astype(np.float64)
        values[rng.random(values.shape) < 0.1] = np.nan
        values[:, 0] = np.nan  # nothing valid
        values[:, 1] = 3.0  # constant: every value on both bounds
        values[:, 2] = np.round(values[:, 2])  # ties
        values[: n // 2, 3], values[n // 2 :, 3] = 1.0, 2.0  # two values
        values[:, 4] = rng.integers(-2, 3, n)  # few distinct values
        values[0, 5] = 1e6  # one outlier
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            expect = stats.sigma_clip(values, sigma=4.0, axis=0, maxiters=5).mask
        got = jump_fast._sigma_clip_mask(values.astype(dtype), np.isfinite(values), 4.0, 5)
        np.testing.assert_array_equal(got, expect)


@pytest.mark.parametrize("shape", [(1, 1, 3, 4), (3, 4, 6, 9), (5, 19, 8, 33), (40, 19, 4, 4)])
def test_nanmedian_is_numpys(shape):
    rng = np.random.default_rng(13)
    a = rng.normal(0, 10.0 ** rng.uniform(-3, 4, shape), shape).astype(np.float32)
    a[rng.random(shape) < 0.3] = np.nan
    a[:, :, 0, 0] = np.nan
    a[:, :, 0, 1] = 2.5
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expect = np.nanmedian(a.astype(np.float64), axis=(0, 1))
    for arr in (a, a.astype(np.float64)):
        got = jump_fast._nanmedian(arr, axis=(0, 1))
        assert got.dtype == np.float64
        np.testing.assert_array_equal(got, expect)


# --------------------------------------------------------------------------------------------
# Contracts: inputs untouched, row chunks with a 1-row halo


def test_inputs_are_not_modified():
    pytest.importorskip("skimage")
    data, gdq, pdq, gain, rn = _random_ramps(3, 3, 5, 8, 16)
    copies = [a.copy() for a in (data, gdq, pdq, gain, rn)]
    params = Jump(after_jump_flag_dn1=10.0, after_jump_flag_time1=30.0, expand_large_events=True)
    res = detect_jumps(data, gdq, pdq, gain, rn, params, nframes=1, groupgap=0, tgroup=TGROUP)
    for before, after in zip(copies, (data, gdq, pdq, gain, rn), strict=True):
        np.testing.assert_array_equal(before, after)
    assert not np.shares_memory(res.groupdq, gdq)
    assert not np.shares_memory(res.pixeldq, pdq)
    assert res.groupdq.dtype == np.uint8 and res.pixeldq.dtype == np.uint32


def _in_two_halves(data, gdq, pdq, gain, rn, params, split, frame):
    """Rows [0, split) computed with halo row ``split``; rows [split, ny) with halo split-1."""
    kwargs = dict(nframes=1, groupgap=0, tgroup=TGROUP)
    top = slice(0, split + 1)
    bottom = slice(split - 1, None)

    def run(rows, fr):
        return detect_jumps(
            data[:, :, rows], gdq[:, :, rows], pdq[rows], gain[rows], rn[rows], params,
            frame=fr, **kwargs,
        )  # fmt: skip

    a, b = run(top, frame), run(bottom, frame)
    if a.sigclip_planes is not None:
        # a chunk's plane test can only be too eager; rerun with the whole-frame AND
        whole = a.sigclip_planes & b.sigclip_planes
        fr = dataclasses.replace(frame, sigclip_planes=whole)
        if not np.array_equal(a.sigclip_planes, whole):
            a = run(top, fr)
        if not np.array_equal(b.sigclip_planes, whole):
            b = run(bottom, fr)
    gdq_out = np.concatenate([a.groupdq[:, :, :split], b.groupdq[:, :, 1:]], axis=2)
    pdq_out = np.concatenate([a.pixeldq[:split], b.pixeldq[1:]])
    ncr = a.primary_crs_in(slice(0, split)) + b.primary_crs_in(slice(1, None))
    return gdq_out, pdq_out, ncr


@pytest.mark.parametrize(
    "name", ["iterative", "single_pass", "sigma_clip", "sigma_clip_all_diffs", "after_jump"]
)
def test_two_row_halves_with_a_one_row_halo_reproduce_the_whole(name):
    nints, ngroups, ny, nx, nframes, kw = CASES[name]
    params = Jump(**kw)
    data, gdq, pdq, gain, rn = _random_ramps(4, nints, ngroups, ny + 1, nx)
    # an all-DNU plane and a gain median that differs between the halves
    gdq[0, 1] |= DNU
    gain[: ny // 2] *= 1.3
    whole = detect_jumps(data, gdq, pdq, gain, rn, params, nframes=1, groupgap=0, tgroup=TGROUP)
    fs = frame_stats(all_dnu_planes(gdq), gain)
    g, p, ncr = _in_two_halves(data, gdq, pdq, gain, rn, params, ny // 2, fs)
    np.testing.assert_array_equal(g, whole.groupdq)
    np.testing.assert_array_equal(p, whole.pixeldq)
    assert ncr == whole.number_crs
    # without the whole-frame statistics the halves would not all agree (gain median)
    if kw.get("after_jump_flag_dn1"):
        g2, _, _ = _in_two_halves(
            data, gdq, pdq, gain, rn, params, ny // 2, FrameStats(fs.all_dnu, np.float32(1.0))
        )
        assert not np.array_equal(g2, whole.groupdq)


def test_two_row_halves_with_a_plane_that_is_all_jump_or_dnu_in_one_half():
    # 4 x 1 frame, sigma clip: row 0 has a CR in plane (7, 2), row 1 is DNU there. The top
    # chunk (row 0 + halo row 1) sees an all-JUMP/DNU plane; the whole frame does not.
    data = _ramp(100, 4, 4, 1)
    data[7, 2:, 0, 0] += 500
    gdq = np.zeros(data.shape, np.uint8)
    gdq[7, 2, 1, 0] = DNU
    pdq = np.zeros((4, 1), np.uint32)
    gain = np.ones((4, 1), np.float32)
    rn = np.full((4, 1), 5.0, np.float32)
    params = Jump()
    whole = detect_jumps(data, gdq, pdq, gain, rn, params, nframes=1, groupgap=0, tgroup=TGROUP)
    assert _jumps(whole.groupdq) == [(7, 2, 0, 0)]
    fs = frame_stats(all_dnu_planes(gdq), gain)
    g, _, ncr = _in_two_halves(data, gdq, pdq, gain, rn, params, 1, fs)
    np.testing.assert_array_equal(g, whole.groupdq)
    assert ncr == whole.number_crs == 1
    # the top chunk alone would have reset the CR
    alone = detect_jumps(
        data[:, :, :2], gdq[:, :, :2], pdq[:2], gain[:2], rn[:2], params,
        nframes=1, groupgap=0, tgroup=TGROUP, frame=fs,
    )  # fmt: skip
    assert alone.sigclip_planes[7, 2] and _jumps(alone.groupdq) == []


@pytest.mark.jwst
def test_snowballs_after_chunks_match_the_whole_frame():
    """Chunks with snowballs off, then flag_snowballs on the whole frame = one whole run."""
    pytest.importorskip("skimage")
    params = Jump(expand_large_events=True, edge_size=5)
    data, gdq, pdq, gain, rn = _random_ramps(6, 2, 6, 40, 32, cr=0.004, sat=0.0)
    _add_snowball(data, gdq, 0, 2, 20, 16, 7, 3.2)
    _add_snowball(data, gdq, 1, 3, 19, 12, 6, 3.0)  # across the split row
    whole = detect_jumps(data, gdq, pdq, gain, rn, params, nframes=1, groupgap=0, tgroup=TGROUP)
    no_snow = dataclasses.replace(params, expand_large_events=False)
    g, _, _ = _in_two_halves(
        data, gdq, pdq, gain, rn, no_snow, 20, frame_stats(all_dnu_planes(gdq), gain)
    )
    g, n = jump.flag_snowballs(g, params, tgroup=TGROUP)
    np.testing.assert_array_equal(g, whole.groupdq)
    assert n == whole.n_snowballs > 0
