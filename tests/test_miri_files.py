"""MIRI files: the simulator's uncal segment and nine reference files, and their reading
(tsogpu.io.reffiles with tsogpu.io.miri_references): layouts, cut-outs, jwst's parameters,
errors naming the file. The jwst-marked tests open the same files with stdatamodels and run
calwebb_detector1 on them."""

import numpy as np
import pytest
from astropy.io import fits

from tsogpu import dq
from tsogpu.algorithms import rscd
from tsogpu.errors import ConfigError, ReferenceFileError
from tsogpu.io.reffiles import load_reference, resolve_references
from tsogpu.io.uncal import inspect_uncal, read_uncal
from tsogpu.segment import Exposure
from tsogpu.simulate import simulate
from tsogpu.simulate.miri_files import emicorr_tree
from tsogpu.simulate.miri_modes import SUBARRAYS, miri_geometry, pixel_clocks
from tsogpu.simulate.miri_ramps import emi_signal

MIRI_REFTYPES = (
    "mask", "saturation", "linearity", "gain", "readnoise", "dark", "reset", "rscd", "emicorr",
)  # fmt: skip

# jwst.emicorr.emicorr.subarray_clocks: (rowclocks, frameclocks)
JWST_CLOCKS = {
    "SLITLESSPRISM": (28, 15904),
    "SUB64": (28, 8512),
    "SUB128": (44, 11904),
    "SUB256": (96, 29952),
    "BRIGHTSKY": (162, 86528),
    "FULL": (271, 277504),
}
# MIRI documentation: SUBSTRT1, SUBSTRT2, SUBSIZE1, SUBSIZE2
REAL_GEOMETRY = {
    "FULL": (1, 1, 1032, 1024),
    "BRIGHTSKY": (457, 51, 512, 512),
    "SUB256": (413, 51, 256, 256),
    "SUB128": (1, 889, 136, 128),
    "SUB64": (1, 779, 72, 64),
    "SLITLESSPRISM": (1, 529, 72, 416),
}


@pytest.fixture(scope="module")
def lrs(tmp_path_factory):
    out = tmp_path_factory.mktemp("miri_lrs")
    return simulate("miri_lrs", out, nints=3, ngroups=6, seed=7, cosmic_rays=False)


def miri_exposure(**changes):
    fields = dict(
        instrument="MIRI", detector="MIRIMAGE", exp_type="MIR_LRS-SLITLESS", readpatt="FASTR1",
        nints=3, ngroups=6, nframes=1, groupgap=0, tframe=0.15904, tgroup=0.15904,
        subarray="SLITLESSPRISM", substrt1=1, substrt2=529, subsize1=72, subsize2=416,
        fastaxis=1, slowaxis=2, noutputs=4,
    )  # fmt: skip
    fields.update(changes)
    return Exposure(**fields)


def write_fits(path, reftype, extensions, **keywords):
    primary = fits.PrimaryHDU()
    primary.header.update(
        {"TELESCOP": "JWST", "INSTRUME": "MIRI", "DETECTOR": "MIRIMAGE", "REFTYPE": reftype}
    )
    for key, value in keywords.items():
        primary.header[key] = value
    hdus = [primary]
    for name, value in extensions.items():
        if isinstance(value, fits.BinTableHDU):
            value.name = name
            hdus.append(value)
        else:
            hdus.append(fits.ImageHDU(value, name=name))
    fits.HDUList(hdus).writeto(path)
    return str(path)


def error(reftype, path, exposure=None):
    with pytest.raises(ReferenceFileError) as info:
        load_reference(reftype, path, exposure or miri_exposure())
    assert str(path) in str(info.value)
    return str(info.value)


# ---------------------------------------------------------------------------------------------
# Geometry and clocks


@pytest.mark.parametrize("name", list(REAL_GEOMETRY))
def test_subarrays_have_the_real_geometry_and_jwst_clocks(name):
    geo = miri_geometry(name, "FASTR1")
    assert (geo.substrt1, geo.substrt2, geo.nx, geo.ny) == REAL_GEOMETRY[name]
    assert (geo.rowclocks, geo.frameclocks) == JWST_CLOCKS[name]
    assert geo.tframe == pytest.approx(geo.frameclocks * 1e-5)
    # reference columns: the 4 at each edge of the 1032 columns
    cols = np.arange(geo.substrt1 - 1, geo.substrt1 - 1 + geo.nx)
    np.testing.assert_array_equal(geo.refpix[0], (cols < 4) | (cols >= 1028))
    assert set(SUBARRAYS) == set(REAL_GEOMETRY)


def test_pixel_clocks_count_as_jwst_emicorr():
    geo = miri_geometry("SUB64", "FASTR1")
    t = pixel_clocks(geo, 5, 2)
    start = 2 * 6 * geo.frameclocks  # two integrations of 5 groups + the R1 reset frame
    assert t[0, 0, 0] == start
    assert t[0, 0, 3] == start and t[0, 0, 4] == start + 1  # four outputs read together
    assert t[0, 1, 0] - t[0, 0, 0] == geo.rowclocks
    assert t[1, 0, 0] - t[0, 0, 0] == geo.frameclocks


def test_slow_pattern_is_full_frame_only():
    assert miri_geometry("FULL", "SLOWR1").frameclocks == 2388992
    with pytest.raises(ConfigError, match="FULL"):
        miri_geometry("SUB64", "SLOWR1")
    with pytest.raises(ConfigError, match="FASTR1"):
        miri_geometry("SUB64", "FAST")


# ---------------------------------------------------------------------------------------------
# The simulated files, read


def test_uncal_keywords_and_reading(lrs):
    with fits.open(lrs.uncal) as hdul:
        h = hdul[0].header
        assert "ZEROFRAME" not in hdul
        assert hdul["SCI"].data.shape == (3, 6, 416, 72) == lrs.shape
    expected = {
        "INSTRUME": "MIRI", "DETECTOR": "MIRIMAGE", "EXP_TYPE": "MIR_LRS-SLITLESS",
        "READPATT": "FASTR1", "SUBARRAY": "SLITLESSPRISM", "SUBSTRT1": 1, "SUBSTRT2": 529,
        "SUBSIZE1": 72, "SUBSIZE2": 416, "FASTAXIS": 1, "SLOWAXIS": 2, "NFRAMES": 1,
        "GROUPGAP": 0, "NSAMPLES": 1, "TSOVISIT": True, "FILTER": "P750L",
    }  # fmt: skip
    assert {k: h[k] for k in expected} == expected
    assert h["TFRAME"] == pytest.approx(0.15904) and h["TGROUP"] == pytest.approx(0.15904)
    exposure, shape, zeroframe = inspect_uncal(lrs.uncal)
    assert shape == lrs.shape and not zeroframe and exposure.nsamples == 1
    seg = read_uncal(lrs.uncal)
    assert seg.zeroframe is None and seg.exposure.instrument == "MIRI"
    assert seg.data.dtype == np.float32 and np.all(seg.data > 0)


def test_every_reference_file_has_its_reftype_and_reads(lrs):
    assert tuple(sorted(lrs.refs)) == tuple(sorted(MIRI_REFTYPES))
    exposure = read_uncal(lrs.uncal).exposure
    refs = {t: load_reference(t, lrs.refs[t], exposure) for t in MIRI_REFTYPES}
    for reftype, ref in refs.items():
        assert ref.header["REFTYPE"].lower() == reftype
        assert ref.header["INSTRUME"] == "MIRI" and ref.header["DETECTOR"] == "MIRIMAGE"
    yx = (416, 72)
    for t in ("mask", "saturation", "gain", "readnoise"):
        assert ref_shape(refs[t]) == yx, t
    assert refs["linearity"].arrays["coeffs"].shape == (5, *yx)
    dark = refs["dark"]
    assert dark.arrays["data"].shape == (3, 9, *yx) and dark.arrays["dq"].shape == (3, 1, *yx)
    assert (dark.header["NFRAMES"], dark.header["GROUPGAP"]) == (1, 0)
    reset = refs["reset"]
    assert reset.arrays["data"].shape == (2, 6, *yx) and reset.arrays["dq"].shape == yx
    assert (reset.header["NINTS"], reset.header["NGROUPS"]) == (2, 6)
    assert rscd.table_row(refs["rscd"].param["table"], "FASTR1", "SLITLESSPRISM") == (1, 3)
    assert refs["rscd"].param["table"].size == 12
    emi = refs["emicorr"]
    assert emi.param == {
        "subname": "SLITLESSPRISM",
        "rowclocks": 28,
        "frameclocks": 15904,
        "frequency_names": ("Hz390", "Hz218a"),
        "frequencies": (390.625, 218.52055),
    }
    assert emi.arrays["Hz390"].shape == (500,)


def ref_shape(ref):
    return next(iter(ref.arrays.values())).shape


def test_full_frame_references_are_cut_to_the_subarray(lrs):
    exposure = read_uncal(lrs.uncal).exposure
    ref = load_reference("mask", lrs.refs["mask"], exposure)
    full = load_reference("mask", lrs.refs["mask"], miri_exposure(
        subarray="FULL", substrt2=1, subsize1=1032, subsize2=1024))  # fmt: skip
    np.testing.assert_array_equal(ref.arrays["dq"], full.arrays["dq"][528:944, 0:72])
    assert np.all(ref.arrays["dq"][:, :4] & dq.REFERENCE_PIXEL)
    assert not np.any(ref.arrays["dq"][:, 4:] & dq.REFERENCE_PIXEL)


def test_miri_effects_are_in_the_ramps(lrs):
    t = np.load(lrs.truth)
    data = read_uncal(lrs.uncal).data
    ref = t["refpix"]
    # reference columns: bias, reset anomaly, first/last frame, EMI, read noise
    for k in (0, 1):
        step = data[k, 0] - data[k, 5]
        want = t["reset_amp"][k] * (1 - np.exp(-5 / 1.5)) + t["first_frame"] - t["last_frame"]
        assert np.mean((step - want)[ref]) == pytest.approx(0.0, abs=2.0)
    assert np.mean(t["reset_amp"][0]) > 2 * np.mean(t["reset_amp"][1])
    # EMI: group differences of the reference columns follow the injected waveform
    geo = miri_geometry("SLITLESSPRISM", "FASTR1")
    emi = emi_signal(geo, 6, 2, t["emi_phase"])
    seen = (data[2, 5] - data[2, 4])[ref]
    injected = (emi[5] - emi[4])[ref]
    assert np.corrcoef(seen, injected)[0, 1] > 0.3


def test_image_mode_is_sub64_with_a_point_source(tmp_path):
    sim = simulate("miri_image", tmp_path, nints=2, ngroups=4, seed=1, full_frame_refs=False)
    h = fits.getheader(sim.uncal)
    assert (h["EXP_TYPE"], h["SUBARRAY"], h["SUBSTRT2"], h["SUBSIZE1"], h["SUBSIZE2"]) == (
        "MIR_IMAGE", "SUB64", 779, 72, 64,
    )  # fmt: skip
    flux = np.load(sim.truth)["flux"]
    y, x = np.unravel_index(np.argmax(flux), flux.shape)
    assert abs(y - 32) <= 2 and abs(x - 38) <= 2
    assert fits.getdata(sim.refs["gain"]).shape == (64, 72)


def test_near_infrared_options_are_refused_for_miri(tmp_path):
    with pytest.raises(ConfigError, match="ncols"):
        simulate("miri_lrs", tmp_path, nints=1, ngroups=3, ncols=16)
    with pytest.raises(ConfigError, match="MIRI"):
        simulate("nrs_bots", tmp_path, nints=1, ngroups=3, subarray="SUB64")


def test_cli_simulate_miri(tmp_path, capsys):
    from tsogpu.cli import main

    assert main(["simulate", "--mode", "miri_lrs", "--nints", "2", "--ngroups", "3",
                 "--seed", "2", "--out", str(tmp_path)]) == 0  # fmt: skip
    printed = capsys.readouterr().out
    for reftype in MIRI_REFTYPES:
        assert f"--ref {reftype}=" in printed


# ---------------------------------------------------------------------------------------------
# Reading hand-built files: layouts, jwst's rules, errors


def test_miri_dark_is_4d_remapped_and_uncut(tmp_path):
    sci = np.arange(2 * 3 * 416 * 72, dtype=np.float32).reshape(2, 3, 416, 72)
    dqa = np.zeros((2, 1, 416, 72), np.uint32)
    dqa[1, 0, 5, 6] = 1
    path = write_fits(tmp_path / "d.fits", "DARK", {"SCI": sci, "DQ": dqa},
                      NFRAMES=1, GROUPGAP=0, SUBSTRT1=1, SUBSTRT2=529)  # fmt: skip
    ref = load_reference("dark", path, miri_exposure())
    np.testing.assert_array_equal(ref.arrays["data"], sci)
    assert ref.arrays["dq"].shape == (2, 1, 416, 72) and ref.arrays["dq"][1, 0, 5, 6] == 1
    # without DQ: zeros of SCI's shape (the DarkMIRIModel default)
    path = write_fits(tmp_path / "n.fits", "DARK", {"SCI": sci}, NFRAMES=1, GROUPGAP=0)
    assert load_reference("dark", path, miri_exposure()).arrays["dq"].shape == sci.shape
    # errors
    path = write_fits(tmp_path / "f.fits", "DARK", {"SCI": sci, "DQ": dqa[:1]},
                      NFRAMES=1, GROUPGAP=0)  # fmt: skip
    assert "fewer integrations" in error("dark", path)
    path = write_fits(tmp_path / "3.fits", "DARK", {"SCI": sci[0]}, NFRAMES=1, GROUPGAP=0)
    assert "expected 4-D" in error("dark", path)
    path = write_fits(tmp_path / "s.fits", "DARK", {"SCI": sci[..., :64, :]},
                      NFRAMES=1, GROUPGAP=0)  # fmt: skip
    assert "does not cut darks" in error("dark", path)
    nir = miri_exposure(instrument="NIRCAM", detector="MIRIMAGE")
    path = write_fits(tmp_path / "i.fits", "DARK", {"SCI": sci}, NFRAMES=1, GROUPGAP=0,
                      INSTRUME="ANY")  # fmt: skip
    assert "near-infrared darks are 3-D" in error("dark", path, nir)


def test_reset_trimmed_to_its_keywords_nan_zeroed(tmp_path):
    sci = np.ones((3, 8, 416, 72), np.float32)
    sci[0, 0, 0, 0] = np.nan
    path = write_fits(tmp_path / "r.fits", "RESET", {"SCI": sci}, NINTS=2, NGROUPS=5)
    ref = load_reference("reset", path, miri_exposure())
    assert ref.arrays["data"].shape == (2, 5, 416, 72)
    assert ref.arrays["data"][0, 0, 0, 0] == 0.0
    assert ref.arrays["dq"].shape == (416, 72) and not ref.arrays["dq"].any()
    assert "NGROUPS" in error("reset", write_fits(tmp_path / "k.fits", "RESET", {"SCI": sci},
                                                  NINTS=2))  # fmt: skip
    path = write_fits(tmp_path / "b.fits", "RESET", {"SCI": sci}, NINTS=4, NGROUPS=5)
    assert "NINTS=4" in error("reset", path)
    path = write_fits(tmp_path / "c.fits", "RESET", {"SCI": sci[..., :64, :]}, NINTS=1, NGROUPS=1)
    assert "does not cut resets" in error("reset", path)
    path = write_fits(tmp_path / "w.fits", "DARK", {"SCI": sci}, NINTS=1, NGROUPS=1)
    assert "'dark' reference" in error("reset", path)


def rscd_table(rows, names=("SUBARRAY", "READPATT", "GROUP_SKIP1", "GROUP_SKIP")):
    sub, rp, s1, s2 = zip(*rows, strict=True)
    return fits.BinTableHDU.from_columns([
        fits.Column(name=names[0], format="17A", array=np.array(sub)),
        fits.Column(name=names[1], format="12A", array=np.array(rp)),
        fits.Column(name=names[2], format="J", array=np.array(s1)),
        fits.Column(name=names[3], format="J", array=np.array(s2)),
    ])  # fmt: skip


def test_rscd_row_for_readpatt_and_subarray(tmp_path):
    rows = [("SUB64", "FASTR1", 2, 4), ("SLITLESSPRISM", "FASTR1", 1, 3),
            ("SLITLESSPRISM", "FASTR1", 9, 9), ("SLITLESSPRISM", "SLOWR1", 0, 1)]  # fmt: skip
    path = write_fits(tmp_path / "r.fits", "RSCD", {"RSCD_GROUP_SKIP": rscd_table(rows)})
    table = load_reference("rscd", path, miri_exposure()).param["table"]
    assert rscd.table_row(table, "FASTR1", "SLITLESSPRISM") == (1, 3)  # the first match
    assert rscd.table_row(table, "FASTR1", "SUBPRISM") == (1, 3)
    assert rscd.table_row(table, "FAST", "SLITLESSPRISM") is None
    assert "RSCD_GROUP_SKIP" in error("rscd", write_fits(tmp_path / "e.fits", "RSCD", {}))
    bad = rscd_table(rows, names=("SUBARRAY", "READPATT", "SKIP1", "GROUP_SKIP"))
    path = write_fits(tmp_path / "c.fits", "RSCD", {"RSCD_GROUP_SKIP": bad})
    assert "group_skip1" in error("rscd", path)


def write_emicorr(path, tree, meta=None):
    import asdf

    tree = dict(tree)
    tree["meta"] = meta or {"reftype": "emicorr", "instrument": {"name": "MIRI"}}
    asdf.AsdfFile(tree).write_to(path)
    return str(path)


def test_emicorr_case_and_frequencies(tmp_path):
    path = write_emicorr(tmp_path / "e.asdf", emicorr_tree())
    full = miri_exposure(subarray="FULL", substrt2=1, subsize1=1032, subsize2=1024)
    ref = load_reference("emicorr", path, full)
    assert ref.param["subname"] == "FULL_FAST" and ref.param["rowclocks"] == 271
    slow = load_reference("emicorr", path, miri_exposure(readpatt="SLOWR1", subarray="FULL"))
    assert slow.param["subname"] == "FULL_SLOW" and slow.param["frameclocks"] == 2388992
    none = load_reference("emicorr", path, miri_exposure(readpatt="RAPID"))
    assert none.param["rowclocks"] is None and none.param["frequency_names"] == ()
    unknown = load_reference("emicorr", path, miri_exposure(subarray="MASK1550"))
    assert unknown.param["subname"] == "MASK1550" and unknown.arrays == {}
    tree = emicorr_tree()
    del tree["frequencies"]["Hz218a"]
    assert "'Hz218a'" in error("emicorr", write_emicorr(tmp_path / "m.asdf", tree))
    assert "'frequencies'" in error("emicorr", write_emicorr(tmp_path / "n.asdf", {"x": 1}))
    (tmp_path / "t.asdf").write_text("not asdf")
    assert "not a readable ASDF" in error("emicorr", tmp_path / "t.asdf")
    path = write_emicorr(tmp_path / "w.asdf", emicorr_tree(), meta={"reftype": "dark"})
    assert "'dark' reference" in error("emicorr", path)


def test_overrides_and_na_for_the_miri_types(tmp_path, monkeypatch):
    monkeypatch.delenv("CRDS_PATH", raising=False)
    monkeypatch.delenv("CRDS_SERVER_URL", raising=False)
    paths = resolve_references(miri_exposure(), ["reset", "rscd", "emicorr"],
                               {"reset": "r.fits", "rscd": "N/A", "emicorr": "N/A"})  # fmt: skip
    assert paths == {"reset": "r.fits", "rscd": "N/A", "emicorr": "N/A"}


# ---------------------------------------------------------------------------------------------
# jwst opens the same files and runs calwebb_detector1 on them


@pytest.mark.jwst
def test_reference_contents_equal_jwst_models(lrs):
    pytest.importorskip("jwst")
    from jwst.emicorr import emicorr
    from jwst.rscd import rscd_sub
    from stdatamodels.jwst import datamodels

    exposure = read_uncal(lrs.uncal).exposure
    with datamodels.RampModel(str(lrs.uncal)) as sci:
        with datamodels.RSCDModel(str(lrs.refs["rscd"])) as model:
            table = load_reference("rscd", lrs.refs["rscd"], exposure).param["table"]
            s1, s2p = rscd.table_row(table, exposure.readpatt, exposure.subarray)
            expected = rscd_sub.get_rscd_parameters(sci, model)
            assert {"skip_int1": s1, "skip_int2p": s2p} == expected
        with datamodels.EmiModel(str(lrs.refs["emicorr"])) as model:
            ref = load_reference("emicorr", lrs.refs["emicorr"], exposure)
            subname, rows, frames, names = emicorr.get_subarcase(
                model, exposure.subarray, exposure.readpatt, exposure.detector
            )
            assert (subname, rows, frames, tuple(names)) == tuple(
                ref.param[k] for k in ("subname", "rowclocks", "frameclocks", "frequency_names")
            )
            for name, freq in zip(names, ref.param["frequencies"], strict=True):
                f, amplitudes = emicorr.get_frequency_info(model, name)
                assert f == freq
                np.testing.assert_array_equal(np.asarray(amplitudes), ref.arrays[name])
    with datamodels.DarkMIRIModel(str(lrs.refs["dark"])) as model:
        ref = load_reference("dark", lrs.refs["dark"], exposure)
        np.testing.assert_array_equal(ref.arrays["data"], model.data)
        np.testing.assert_array_equal(ref.arrays["dq"], model.dq)
    with datamodels.ResetModel(str(lrs.refs["reset"])) as model:
        ref = load_reference("reset", lrs.refs["reset"], exposure)
        n, g = model.meta.exposure.nints, model.meta.exposure.ngroups
        np.testing.assert_array_equal(ref.arrays["data"], np.nan_to_num(model.data[:n, :g]))
        np.testing.assert_array_equal(ref.arrays["dq"], model.dq)


@pytest.mark.jwst
def test_jwst_detector1_runs_on_simulated_miri(lrs, tmp_path):
    pytest.importorskip("jwst")
    from jwst.pipeline import Detector1Pipeline

    r = {k: str(v) for k, v in lrs.refs.items()}
    rn_gain = {"override_gain": r["gain"], "override_readnoise": r["readnoise"]}
    steps = {
        "dq_init": {"override_mask": r["mask"]},
        "emicorr": {"skip": False, "override_emicorr": r["emicorr"]},
        "saturation": {"override_saturation": r["saturation"], "override_superbias": "N/A"},
        "ipc": {"skip": True},
        "firstframe": {"skip": False},
        "reset": {"override_reset": r["reset"]},
        "linearity": {"override_linearity": r["linearity"]},
        "rscd": {"override_rscd": r["rscd"]},
        "dark_current": {"override_dark": r["dark"]},
        "refpix": {"override_refpix": "N/A", "override_sirskernel": "N/A"},
        **{
            s: {"skip": True}
            for s in ("charge_migration", "picture_frame", "clean_flicker_noise", "persistence")
        },  # fmt: skip
        "jump": rn_gain,
        "ramp_fit": rn_gain,
        "gain_scale": {"override_gain": r["gain"]},
    }
    Detector1Pipeline.call(str(lrs.uncal), steps=steps, output_dir=str(tmp_path),
                           save_results=True)  # fmt: skip
    rateints = tmp_path / lrs.uncal.name.replace("_uncal.fits", "_rateints.fits")
    assert rateints.exists()
    with fits.open(rateints) as hdul:
        h = hdul[0].header
        for key in ("S_MIREMI", "S_FRSTFR", "S_LASTFR", "S_RESET", "S_LINEAR", "S_RSCD",
                    "S_DARK", "S_JUMP", "S_RAMP"):  # fmt: skip
            assert h[key] == "COMPLETE", key
        rates = hdul["SCI"].data
    t = np.load(lrs.truth)
    clean = ~t["refpix"] & (t["sat_group"] < 0).all(axis=0)
    good = clean & (t["flux"] > 0.3 * t["flux"][clean].max())
    assert good.sum() > 100
    for i in range(rates.shape[0]):
        ratio = rates[i][good] / t["rate"][i][good]
        assert np.isfinite(ratio).mean() > 0.9, i
        assert np.nanmedian(ratio) == pytest.approx(1.0, abs=0.02), i


def test_crds_chooses_the_miri_types(lrs, monkeypatch):
    import sys
    import types

    from tsogpu.io import crds_lookup
    from tsogpu.io.reffiles import load_references
    from tsogpu.io.uncal import read_primary_header

    header = read_primary_header(lrs.uncal)
    exposure = read_uncal(lrs.uncal).exposure
    parameters = crds_lookup.crds_parameters(exposure, header)
    assert parameters["meta.instrument.name"] == "MIRI"
    assert parameters["meta.instrument.detector"] == "MIRIMAGE"
    assert parameters["meta.exposure.type"] == "MIR_LRS-SLITLESS"
    assert parameters["meta.exposure.readpatt"] == "FASTR1"
    assert parameters["meta.subarray.name"] == "SLITLESSPRISM"
    assert parameters["meta.instrument.filter"] == "P750L"

    asked = []

    def getreferences(parameters, reftypes=None, context=None, observatory=None):
        asked.append(list(reftypes))
        return {t: str(lrs.refs[t]) for t in reftypes}

    crds = types.ModuleType("crds")
    core = types.ModuleType("crds.core")
    heavy = types.ModuleType("crds.core.heavy_client")
    crds.getreferences = getreferences
    heavy.get_processing_mode = lambda observatory: (False, "jwst_1234.pmap")
    crds.core, core.heavy_client = core, heavy
    for name, module in (("crds", crds), ("crds.core", core), ("crds.core.heavy_client", heavy)):
        monkeypatch.setitem(sys.modules, name, module)
    monkeypatch.setenv("CRDS_PATH", "/nonexistent/crds_cache")
    refs, context = load_references(exposure, ["reset", "rscd", "emicorr", "dark"], {},
                                    header=header)  # fmt: skip
    assert asked == [["reset", "rscd", "emicorr", "dark"]] and context == "jwst_1234.pmap"
    assert refs["emicorr"].name == "crds://" + lrs.refs["emicorr"].name
    assert rscd.table_row(refs["rscd"].param["table"], "FASTR1", "SLITLESSPRISM") == (1, 3)
    assert refs["dark"].arrays["data"].ndim == 4
