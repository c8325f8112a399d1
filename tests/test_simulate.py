"""The simulator writes real JWST files, seeded, with a truth file that matches the data."""

import re
import warnings

import jwst_oracle
import numpy as np
import pytest
from astropy.io import fits

from tsogpu import dq
from tsogpu.simulate import FULL, MODES, dms_to_detector, simulate

SMALL = {
    "nrs_bots": dict(nints=3, ngroups=4, ncols=64, seed=1, full_frame_refs=True),
    "niriss_soss": dict(nints=3, ngroups=4, ncols=64, nrows=32, seed=1, full_frame_refs=True),
    "nircam_grism": dict(nints=3, ngroups=4, ncols=64, seed=1, full_frame_refs=True),
}
REAL_GEOMETRY = {
    # mode: (DETECTOR, EXP_TYPE, SUBARRAY, SUBSTRT1, SUBSTRT2, SUBSIZE1, SUBSIZE2, FASTAXIS,
    #        SLOWAXIS, READPATT, NOUTPUTS)
    "nrs_bots": ("NRS1", "NRS_BRIGHTOBJ", "SUB2048", 1, 1013, 2048, 32, 2, 1, "NRSRAPID", 1),
    "niriss_soss": ("NIS", "NIS_SOSS", "SUBSTRIP256", 1, 1793, 2048, 256, -2, -1, "NISRAPID", 1),
    "nircam_grism": ("NRCALONG", "NRC_TSGRISM", "SUBGRISM64", 1, 1, 2048, 64, -1, 2, "RAPID", 4),
}
FRAME_TIME = {"nrs_bots": 0.90156, "niriss_soss": 5.494, "nircam_grism": 0.3406}


def sci(path):
    with fits.open(path) as hdul:
        return np.asarray(hdul["SCI"].data)


@pytest.mark.parametrize("mode", list(REAL_GEOMETRY))
def test_modes_have_the_real_geometry(mode):
    m = MODES[mode]
    got = (
        m.detector,
        m.exp_type,
        m.subarray,
        m.substrt1,
        m.substrt2,
        m.subsize1,
        m.subsize2,
        m.fastaxis,
        m.slowaxis,
        m.readpatt,
        m.noutputs,
    )
    assert got == REAL_GEOMETRY[mode]


@pytest.mark.parametrize("mode", list(SMALL))
def test_uncal_keywords_and_layout(mode, simulated):
    kw = SMALL[mode]
    sim = simulated(mode, **kw)
    m = MODES[mode]
    assert re.fullmatch(r"jw\d{11}_\d{5}_\d{5}-seg001_[a-z0-9]+_uncal\.fits", sim.uncal.name)
    assert sim.uncal.name.endswith(f"_{m.detector.lower()}_uncal.fits")
    ny = kw.get("nrows", m.subsize2)
    nx = kw["ncols"]
    with fits.open(sim.uncal) as hdul:
        h = hdul[0].header
        assert hdul["SCI"].data.dtype == np.uint16
        assert hdul["SCI"].data.shape == (3, 4, ny, nx) == sim.shape
        assert h["DATAMODL"] == "Level1bModel"
        assert (h["INSTRUME"], h["DETECTOR"], h["EXP_TYPE"]) == (
            m.instrument,
            m.detector,
            m.exp_type,
        )
        assert h["TSOVISIT"] is True
        assert (h["SUBSIZE1"], h["SUBSIZE2"]) == (nx, ny)
        assert h["SUBARRAY"] == "GENERIC"  # a narrowed cut is no named subarray
        assert h["SUBSTRT1"] == 1
        assert h["SUBSTRT2"] + ny - 1 <= FULL
        assert (h["FASTAXIS"], h["SLOWAXIS"]) == (m.fastaxis, m.slowaxis)
        assert (h["NINTS"], h["NGROUPS"], h["NFRAMES"], h["GROUPGAP"]) == (3, 4, 1, 0)
        assert h["FRMDIVSR"] == 1
        assert h["TGROUP"] == pytest.approx(h["TFRAME"])
        assert h["NOUTPUTS"] == m.noutputs
        assert (h["EXSEGNUM"], h["EXSEGTOT"], h["INTSTART"], h["INTEND"]) == (1, 1, 1, 3)
        assert h["ZEROFRAM"] == (mode == "nircam_grism")
        assert ("ZEROFRAME" in hdul) == (mode == "nircam_grism")
        assert re.fullmatch(r"\d{4}-\d\d-\d\d", h["DATE-OBS"])
        assert re.fullmatch(r"\d\d:\d\d:\d\d\.\d{3}", h["TIME-OBS"])
        times = hdul["INT_TIMES"].data
        assert list(times["integration_number"]) == [1, 2, 3]
        assert np.all(np.diff(times["int_mid_MJD_UTC"]) > 0)
        assert np.all(times["int_start_MJD_UTC"] < times["int_end_MJD_UTC"])
        assert np.allclose(
            times["int_mid_BJD_TDB"] - times["int_mid_MJD_UTC"], 2400000.5, atol=0.01
        )
        group = hdul["GROUP"].data
        assert len(group) == 3 * 4
        assert list(group["group_number"][:4]) == [1, 2, 3, 4]


def test_full_width_modes_keep_real_names_and_frame_times(simulated):
    for mode in REAL_GEOMETRY:
        sim = simulated(mode, nints=1, ngroups=2, seed=3, full_frame_refs=False)
        h = fits.getheader(sim.uncal)
        assert h["SUBARRAY"] == MODES[mode].subarray
        assert (h["SUBSTRT1"], h["SUBSTRT2"]) == (MODES[mode].substrt1, MODES[mode].substrt2)
        assert h["TFRAME"] == pytest.approx(FRAME_TIME[mode], abs=2e-3)


@pytest.mark.parametrize("mode", list(SMALL))
def test_uncal_opens_with_jwst_datamodels(mode, simulated):
    datamodels = pytest.importorskip("stdatamodels.jwst.datamodels")
    sim = simulated(mode, **SMALL[mode])
    with datamodels.open(sim.uncal) as model:
        assert type(model).__name__ == "Level1bModel"
        assert model.data.dtype == np.uint16
        np.testing.assert_array_equal(model.data, sci(sim.uncal))
        assert model.meta.exposure.integration_start == 1
        assert model.int_times["integration_number"].tolist() == [1, 2, 3]
    with datamodels.RampModel(sim.uncal) as ramp:
        assert ramp.data.dtype == np.float32
        assert ramp.data.shape == sim.shape


def test_same_seed_same_bytes_other_seed_other_bytes(simulated, tmp_path):
    kw = SMALL["nrs_bots"]
    first = simulated("nrs_bots", **kw)
    again = simulate("nrs_bots", tmp_path / "again", **{**kw, "full_frame_refs": False})
    other = simulate("nrs_bots", tmp_path / "other", **{**kw, "seed": 2, "full_frame_refs": False})
    assert sci(first.uncal).tobytes() == sci(again.uncal).tobytes()
    assert sci(first.uncal).tobytes() != sci(other.uncal).tobytes()
    a, b = np.load(first.truth), np.load(again.truth)
    np.testing.assert_array_equal(a["cr"], b["cr"])
    np.testing.assert_array_equal(a["rate"], b["rate"])


def test_segments_share_the_detector_and_continue_the_exposure(tmp_path):
    kw = dict(nints=2, ngroups=3, ncols=32, seed=4, full_frame_refs=False)
    seg1 = simulate("nrs_bots", tmp_path / "s1", segment=(1, 3), **kw)
    seg2 = simulate("nrs_bots", tmp_path / "s2", segment=(2, 3), **kw)
    h1, h2 = fits.getheader(seg1.uncal), fits.getheader(seg2.uncal)
    assert "-seg002_" in seg2.uncal.name
    assert (h2["EXSEGNUM"], h2["EXSEGTOT"], h2["INTSTART"], h2["INTEND"], h2["NINTS"]) == (
        2,
        3,
        3,
        4,
        6,
    )
    assert h1["INTEND"] + 1 == h2["INTSTART"]
    t2 = fits.getdata(seg2.uncal, "INT_TIMES")
    assert t2["integration_number"].tolist() == [3, 4]
    for reftype in ("superbias", "dark", "mask"):
        np.testing.assert_array_equal(
            fits.getdata(seg1.refs[reftype], 1), fits.getdata(seg2.refs[reftype], 1)
        )
    assert sci(seg1.uncal).tobytes() != sci(seg2.uncal).tobytes()


REF_CLASSES = {
    "mask": "MaskModel",
    "saturation": "SaturationModel",
    "superbias": "SuperBiasModel",
    "linearity": "LinearityModel",
    "dark": "DarkModel",
    "gain": "GainModel",
    "readnoise": "ReadnoiseModel",
}


@pytest.mark.parametrize("mode", list(SMALL))
def test_reference_files_open_with_their_models(mode, simulated):
    datamodels = pytest.importorskip("stdatamodels.jwst.datamodels")
    from stdatamodels.exceptions import ValidationWarning

    sim = simulated(mode, **SMALL[mode])
    ny, nx = sim.shape[2:]
    assert set(sim.refs) == set(REF_CLASSES)
    for reftype, cls_name in REF_CLASSES.items():
        if reftype == "dark" and mode == "nrs_bots":
            cls_name = "DarkNirspecModel"
        cls = getattr(datamodels, cls_name)
        with warnings.catch_warnings():
            warnings.simplefilter("error", ValidationWarning)
            model = cls(sim.refs[reftype])
            model.validate()
        header = fits.getheader(sim.refs[reftype])
        assert header["REFTYPE"] == reftype.upper()
        assert header["DETECTOR"] == MODES[mode].detector
        data = (
            model.dq
            if reftype == "mask"
            else (model.coeffs if reftype == "linearity" else model.data)
        )
        if reftype in ("superbias", "dark"):
            assert data.shape[-2:] == (ny, nx)
            assert header["SUBSIZE1"] == nx and header["SUBSIZE2"] == ny
        else:
            assert data.shape[-2:] == (FULL, FULL)
            assert header["SUBARRAY"] == "FULL"
        model.close()


def test_dq_def_tables_are_non_standard_and_remap(simulated):
    datamodels = pytest.importorskip("stdatamodels.jwst.datamodels")
    sim = simulated("nrs_bots", **SMALL["nrs_bots"])
    with fits.open(sim.refs["mask"]) as hdul:
        raw = hdul["DQ"].data.astype(np.uint32)
        table = [(int(r["VALUE"]), r["NAME"]) for r in hdul["DQ_DEF"].data]
    assert "REFERENCE_PIXEL" in dict((n, v) for v, n in table)
    assert dict((n, v) for v, n in table)["REFERENCE_PIXEL"] != dq.REFERENCE_PIXEL
    with datamodels.MaskModel(sim.refs["mask"]) as mask:
        remapped = mask.dq
    np.testing.assert_array_equal(dq.remap(raw, table), remapped)
    border = np.zeros((FULL, FULL), bool)
    border[:4] = border[-4:] = True
    border[:, :4] = border[:, -4:] = True
    np.testing.assert_array_equal((remapped & dq.REFERENCE_PIXEL) != 0, border)
    assert np.any(remapped & dq.PIXEL["DEAD"]) and np.any(remapped & dq.PIXEL["HOT"])
    assert np.any(raw & 64)  # the bit whose DQ_DEF name is no JWST mnemonic
    with fits.open(sim.refs["linearity"]) as hdul:
        lin_raw = hdul["DQ"].data.astype(np.uint32)
        coeffs = hdul["COEFFS"].data
        assert "INV_COEFFS" in hdul
    assert not np.any(lin_raw & dq.NO_LIN_CORR)  # stored as bit value 4, not the standard bit
    with datamodels.LinearityModel(sim.refs["linearity"]) as lin:
        assert np.any(lin.dq & dq.NO_LIN_CORR)
    assert np.isnan(coeffs).any() and np.any(coeffs[1] == 0)
    with fits.open(sim.refs["saturation"]) as hdul:
        sat, sat_dq = hdul["SCI"].data, hdul["DQ"].data
    assert np.isnan(sat).any()
    assert np.any(sat_dq[np.isnan(sat)] & dq.NO_SAT_CHECK)
    h = fits.getheader(sim.refs["dark"])
    assert (h["NFRAMES"], h["GROUPGAP"]) == (1, 0)
    assert h["NGROUPS"] >= 4


def test_detector_frame_matches_jwst():
    reffile_utils = pytest.importorskip("jwst.lib.reffile_utils")
    yy, xx = np.mgrid[0:FULL, 0:FULL]
    for mode in MODES.values():
        row, col = dms_to_detector(yy, xx, mode.fastaxis, mode.slowaxis)
        expect_row = reffile_utils.science_detector_frame_transform(
            yy, mode.fastaxis, mode.slowaxis
        )
        expect_col = reffile_utils.science_detector_frame_transform(
            xx, mode.fastaxis, mode.slowaxis
        )
        # science_detector_frame_transform moves pixels; invert: detector pixel (r, c)
        # holds DMS (expect_row[r, c], expect_col[r, c])
        r, c = np.mgrid[0:FULL, 0:FULL]
        assert np.array_equal(row[expect_row, expect_col], r)
        assert np.array_equal(col[expect_row, expect_col], c)


@pytest.mark.parametrize("mode", list(SMALL))
def test_reference_pixels_see_no_light(mode, simulated):
    sim = simulated(mode, **SMALL[mode])
    t = np.load(sim.truth)
    data = sci(sim.uncal).astype(np.float64)
    ref = t["refpix"]
    assert ref.any()
    assert np.all(t["flux"][ref] == 0) and np.all(t["dark_rate"][ref] == 0)
    ramp = data[:, -1] - data[:, 0]
    rn = 4 * MODES[mode].readnoise
    assert np.abs(np.median(ramp[:, ref])) < rn
    assert np.median(ramp[:, ~ref & (t["flux"] > 1000)]) > 10 * rn
    bias = data[:, 0][:, ref]
    assert 10000 < np.median(bias) < 15000


def test_cosmic_rays_are_where_the_data_jump(tmp_path):
    sim = simulate(
        "nircam_grism",
        tmp_path,
        nints=3,
        ngroups=6,
        ncols=96,
        seed=5,
        cr_rate=0.2,
        n_saturating=0,
        full_frame_refs=False,
    )
    t = np.load(sim.truth)
    data = sci(sim.uncal).astype(np.float64)
    crs = t["cr"]
    assert len(crs) > 20
    assert np.all((crs["group"] >= 1) & (crs["group"] < 6))
    assert not np.any(t["refpix"][crs["y"], crs["x"]])
    diffs = np.diff(data, axis=1)  # (nints, ngroups - 1, ny, nx)
    checked = 0
    for c in crs[crs["amplitude"] > 500]:
        d = diffs[c["int"], :, c["y"], c["x"]]
        jump = d[c["group"] - 1]
        others = np.delete(d, c["group"] - 1)
        assert jump - np.median(others) > 0.5 * c["amplitude"], c
        checked += 1
    assert checked > 5


def test_saturated_pixels_saturate(simulated):
    sim = simulated("nrs_bots", **SMALL["nrs_bots"])
    t = np.load(sim.truth)
    data = sci(sim.uncal)
    with fits.open(sim.refs["saturation"]) as hdul:
        h = fits.getheader(sim.uncal)
        y0, x0 = h["SUBSTRT2"] - 1, h["SUBSTRT1"] - 1
        ny, nx = data.shape[2:]
        thresh = hdul["SCI"].data[y0 : y0 + ny, x0 : x0 + nx]
    sat = t["sat_pixels"]
    assert len(sat) >= 4
    # the bright pixels saturate inside the ramp, not in the first group
    assert np.all(sat["group"] >= 1)
    for s in sat:
        ramp = data[s["int"], :, s["y"], s["x"]]
        assert ramp[s["group"]] >= thresh[s["y"], s["x"]]
        assert np.all(ramp[: s["group"]] < thresh[s["y"], s["x"]])
    hit = data >= np.where(np.isnan(thresh), np.inf, thresh)
    assert np.array_equal(hit.any(axis=1) & ~t["refpix"], t["sat_group"] >= 0)
    assert data.max() <= 65535 and data.min() > 0


def test_light_curve_dips_in_the_data(tmp_path):
    sim = simulate(
        "nrs_bots",
        tmp_path,
        nints=20,
        ngroups=3,
        ncols=128,
        seed=6,
        transit_depth=0.05,
        cosmic_rays=False,
        n_saturating=0,
        full_frame_refs=False,
    )
    t = np.load(sim.truth)
    lc = t["light_curve"]
    assert lc[0] == 1.0 and lc[-1] == 1.0
    assert lc.min() == pytest.approx(0.95, abs=1e-3)
    assert np.argmin(lc) in (9, 10)
    data = sci(sim.uncal).astype(np.float64)
    trace = t["flux"] > 0.2 * t["flux"].max()
    signal = (data[:, -1] - data[:, 0])[:, trace].sum(axis=1)
    inside, outside = signal[lc < 0.96].mean(), signal[lc == 1.0].mean()
    assert inside / outside == pytest.approx(0.95, abs=0.01)
    np.testing.assert_allclose(t["rate"], t["flux"][None] * lc[:, None, None], rtol=1e-6, atol=1e-3)


def test_one_over_f_runs_along_the_fast_direction(tmp_path):
    # NIRSpec: the fast direction is DMS y, so each column is one fast-read line
    sim = simulate(
        "nrs_bots",
        tmp_path / "nrs",
        nints=2,
        ngroups=3,
        ncols=256,
        seed=7,
        one_over_f=10.0,
        full_frame_refs=False,
    )
    f = np.load(sim.truth)["one_over_f"]
    assert f.shape == sim.shape
    assert np.allclose(f.std(axis=2), 0.0, atol=1e-4)
    assert 5.0 < f.std() < 20.0
    # NIRCam 4 outputs: the fast direction is x; each row of an amplifier is one line
    sim = simulate(
        "nircam_grism",
        tmp_path / "nrc",
        nints=1,
        ngroups=2,
        seed=7,
        one_over_f=True,
        full_frame_refs=False,
    )
    f = np.load(sim.truth)["one_over_f"][0, 0]
    for amp in range(4):
        block = f[:, amp * 512 : (amp + 1) * 512]
        assert np.allclose(block.std(axis=1), 0.0, atol=1e-4)
        assert block[:, 0].std() > 1.0
    assert not np.allclose(f[:, 0], f[:, 600])
    off = np.load(
        simulate(
            "nrs_bots",
            tmp_path / "off",
            nints=2,
            ngroups=3,
            ncols=32,
            seed=7,
            full_frame_refs=False,
        ).truth
    )["one_over_f"]
    assert off.shape == (2, 3, 1, 1) and not off.any()


def test_readout_patterns_and_zeroframe(tmp_path):
    sim = simulate(
        "nircam_grism",
        tmp_path / "b2",
        nints=2,
        ngroups=3,
        ncols=64,
        seed=8,
        nframes=2,
        full_frame_refs=False,
    )
    h = fits.getheader(sim.uncal)
    assert (h["READPATT"], h["NFRAMES"], h["GROUPGAP"], h["FRMDIVSR"]) == ("BRIGHT2", 2, 0, 2)
    assert h["TGROUP"] == pytest.approx(2 * h["TFRAME"], rel=1e-4)
    with fits.open(sim.uncal) as hdul:
        zf = hdul["ZEROFRAME"].data.astype(np.float64)
        first = hdul["SCI"].data[:, 0].astype(np.float64)
    assert zf.shape == (2, 64, 64)
    bright = np.load(sim.truth)["flux"] > 1000
    # the zero frame is the first frame of the first group: less signal than the group mean
    assert np.all(zf[:, bright] < first[:, bright])
    sim = simulate(
        "nircam_grism",
        tmp_path / "s4",
        nints=1,
        ngroups=3,
        ncols=64,
        seed=8,
        readpatt="SHALLOW4",
        zeroframe=False,
        full_frame_refs=False,
    )
    h = fits.getheader(sim.uncal)
    assert (h["NFRAMES"], h["GROUPGAP"], h["ZEROFRAM"]) == (4, 1, False)
    with pytest.raises(ValueError, match="readpatt"):
        simulate("nircam_grism", tmp_path / "x", readpatt="NISRAPID")
    with pytest.raises(ValueError, match="mode"):
        simulate("miri_mrs", tmp_path / "x")  # not a simulated mode


@pytest.mark.slow
def test_full_size_segment(tmp_path):
    # the speed of this (about 5 s) is measured in bench/, not asserted here
    sim = simulate("nrs_bots", tmp_path, nints=100, ngroups=10, seed=0)
    assert sim.shape == (100, 10, 32, 2048)
    assert fits.getdata(sim.uncal, "SCI").shape == sim.shape


# --------------------------------------------------------------------------------------------
# jwst runs the simulated files (offline, tests/jwst_oracle.py)

STATUS = {step: jwst_oracle.CAL_STEP_KEYWORDS[step] for step in jwst_oracle.PRE_JUMP}
JWST_CASES = {
    "nrs_bots": dict(mode="nrs_bots", nints=3, ngroups=4, ncols=64, seed=21),
    "niriss_soss": dict(mode="niriss_soss", nints=3, ngroups=4, ncols=64, nrows=48, seed=22),
    "nircam_grism": dict(mode="nircam_grism", nints=3, ngroups=4, ncols=64, seed=23),
    "nircam_bright2_divisor": dict(
        mode="nircam_grism", nints=2, ngroups=4, ncols=64, seed=24, nframes=2, frame_divisor=4
    ),
}


@pytest.mark.jwst
@pytest.mark.slow
@pytest.mark.parametrize("case", list(JWST_CASES))
def test_jwst_detector1_runs_on_simulated_segment(case, tmp_path):
    pytest.importorskip("jwst")
    from jwst_oracle import run_jwst_detector1

    kw = dict(JWST_CASES[case])
    sim = simulate(kw.pop("mode"), tmp_path / "in", one_over_f=True, cr_rate=1e-3, **kw)
    out = run_jwst_detector1(sim.uncal, sim.refs, tmp_path / "jwst")
    assert list(out) == list(STATUS)
    last = out["dark_current"]["cal_step"]
    group_scale = "COMPLETE" if "frame_divisor" in kw else "SKIPPED"
    for step, key in STATUS.items():
        expect = group_scale if step == "group_scale" else "COMPLETE"
        assert out[step]["cal_step"][key] == expect, step
        assert last[key] == expect, step
    t = np.load(sim.truth)
    ref = t["refpix"]
    final = out["dark_current"]
    data, pixeldq, groupdq = final["data"], final["pixeldq"], final["groupdq"]
    assert data.shape == sim.shape and np.isfinite(data).all()
    # dq_init: the remapped mask puts REFERENCE_PIXEL exactly on the reference pixels
    np.testing.assert_array_equal((pixeldq & dq.REFERENCE_PIXEL) != 0, ref)
    # saturation: every truth saturation is flagged from its group on
    for s in t["sat_pixels"]:
        assert np.all(groupdq[s["int"], s["group"] :, s["y"], s["x"]] & dq.SATURATED)
    # refpix: the reference pixels end near zero (bias, drift and their 1/f removed)
    refpix_after = out["refpix"]["data"][:, :, ref]
    assert abs(float(np.mean(refpix_after))) < 2.0
    # linearity + dark: the linearised ramps give back the true rate on the trace
    tgroup = fits.getheader(sim.uncal)["TGROUP"]
    ngroups = data.shape[1]
    good = ~ref & (pixeldq == 0) & (t["flux"] > 0.3 * np.max(t["flux"][t["sat_group"].max(0) < 0]))
    good &= (t["sat_group"] < 0).all(axis=0)
    good[t["cr"]["y"], t["cr"]["x"]] = False
    assert good.sum() > 20
    slope = (data[:, -1] - data[:, 0]) / ((ngroups - 1) * tgroup)
    ratio = np.median(slope[:, good] / t["rate"][:, good])
    assert ratio == pytest.approx(1.0, abs=0.01)
    # without the linearity step the same ramps would be clearly sublinear
    raw_slope = out["refpix"]["data"][:, -1] - out["refpix"]["data"][:, 0]
    lin_slope = out["linearity"]["data"][:, -1] - out["linearity"]["data"][:, 0]
    assert np.median(lin_slope[:, good] / raw_slope[:, good]) > 1.005
    if final["zeroframe"] is not None:
        assert np.isfinite(final["zeroframe"]).all()
