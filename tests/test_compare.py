"""``tsogpu compare``: hand-built products with the expected differences worked out, the
command's exit codes, and tsogpu against jwst 3.0 on one simulated segment (bit-identical)."""

import numpy as np
import pytest
from astropy.io import fits
from stdatamodels.jwst import datamodels

from tsogpu import dq
from tsogpu.cli import main
from tsogpu.compare import compare_figure, compare_products, format_comparison
from tsogpu.errors import InputError

NINTS, NY, NX = 3, 4, 5


def arrays(seed=0, shape=(NINTS, NY, NX)):
    """SCI, ERR, DQ, VAR_POISSON, VAR_RNOISE of a small product (positive, distinct values)."""
    rng = np.random.default_rng(seed)
    sci = rng.uniform(10.0, 20.0, shape).astype(np.float32)
    return {
        "data": sci,
        "err": np.sqrt(sci).astype(np.float32),
        "dq": np.zeros(shape, np.uint32),
        "var_poisson": (sci / 10).astype(np.float32),
        "var_rnoise": np.full(shape, 0.5, np.float32),
    }


def write_cube(path, values, **meta):
    """A _rateints product as jwst writes it (a CubeModel through stdatamodels)."""
    model = datamodels.CubeModel(**values)
    model.meta.observation.obs_id = meta.get("obs_id", "V01234001001P0000000002101")
    model.meta.exposure.segment_number = meta.get("segment", 1)
    model.meta.exposure.integration_start = meta.get("intstart", 1)
    model.save(path)
    model.close()
    return path


def write_plain(path, values):
    """Another pipeline's rateints: a plain FITS file with SCI, ERR and DQ only (int32 DQ)."""
    hdus = [fits.PrimaryHDU()]
    for key, name in (("data", "SCI"), ("err", "ERR"), ("dq", "DQ")):
        data = values[key].astype(np.int32) if key == "dq" else values[key]
        hdus.append(fits.ImageHDU(data, name=name))
    fits.HDUList(hdus).writeto(path)
    return path


@pytest.fixture
def pair(tmp_path):
    """Write A and B from two dicts of arrays; returns the two paths."""

    def make(values_a, values_b=None, writer=write_cube, **meta_b):
        a = writer(tmp_path / "a_rateints.fits", values_a)
        if writer is write_cube:
            b = write_cube(tmp_path / "b_rateints.fits", values_b or values_a, **meta_b)
        else:
            b = writer(tmp_path / "b_rateints.fits", values_b or values_a)
        return a, b

    return make


def test_identical_files_are_within_with_zero_differences(pair):
    a, b = pair(arrays())
    c = compare_products(a, b)
    assert c.within() and c.within(0.0) and not c.failures()
    assert c.shape == (NINTS, NY, NX) and not c.warnings
    assert list(c.floats) == ["SCI", "ERR", "VAR_POISSON", "VAR_RNOISE"]
    for f in c.floats.values():
        assert f.max_rel == f.median_rel == 0.0 and f.beyond == 0
        assert f.compared == f.exact == NINTS * NY * NX and f.exact_fraction == 1.0
        assert f.nan_only_a == f.nan_only_b == f.nan_both == 0
    assert c.dq.equal == c.dq.pixels == NINTS * NY * NX and c.dq.bits == {}
    np.testing.assert_array_equal(c.white_light.ratio, np.ones(NINTS))
    assert c.white_light.good.tolist() == [NY * NX] * NINTS
    assert c.white_light.integrations.tolist() == [1, 2, 3]
    assert "WITHIN rtol 1e-05" in format_comparison(c)


def test_one_pixel_beyond_rtol_is_counted(pair):
    values = arrays()
    other = {k: v.copy() for k, v in values.items()}
    other["data"][1, 2, 3] *= np.float32(1.001)  # 1e-3 relative, 100 times rtol
    other["data"][0, 0, 0] = np.nextafter(other["data"][0, 0, 0], np.float32(100))  # 1 ULP
    c = compare_products(*pair(values, other), rtol=1e-5)
    sci = c.floats["SCI"]
    a, b = np.float64(values["data"][1, 2, 3]), np.float64(other["data"][1, 2, 3])
    assert sci.max_rel == pytest.approx(abs(a - b) / max(a, b), rel=1e-12)
    assert sci.worst == (1, 2, 3) and sci.beyond == 1
    assert sci.exact == NINTS * NY * NX - 2 and sci.median_rel == 0.0
    assert sci.worst_map[2, 3] == pytest.approx(sci.max_rel) and sci.worst_map[1, 1] == 0
    assert c.floats["ERR"].max_rel == 0.0
    assert not c.within() and c.within(2e-3)
    assert c.failures() == [f"SCI: max relative difference {sci.max_rel:.3g} > 1e-05"]
    # the white light of integration 1 (0-based) moves by that pixel's share of the sum
    ratio = c.white_light.ratio
    expected = (
        values["data"][1].astype(np.float64).sum() / other["data"][1].astype(np.float64).sum()
    )
    assert ratio[1] == pytest.approx(expected, rel=1e-12) and ratio[2] == 1.0
    report = format_comparison(c)
    assert "NOT WITHIN rtol 1e-05" in report and "(1, 2, 3)" in report


def test_nan_agreement_counted(pair):
    values = arrays()
    other = {k: v.copy() for k, v in values.items()}
    values["data"][0, 0, 0] = np.nan  # A only
    other["data"][2, 3, 4] = np.nan  # B only
    other["data"][1, 1, 1] = np.inf  # B only: not finite counts as NaN
    values["data"][0, 1, 1] = other["data"][0, 1, 1] = np.nan  # both
    c = compare_products(*pair(values, other))
    sci = c.floats["SCI"]
    assert (sci.nan_only_a, sci.nan_only_b, sci.nan_both) == (1, 2, 1)
    assert sci.compared == NINTS * NY * NX - 4 and sci.max_rel == 0.0
    assert not c.within() and c.failures() == ["SCI: 3 pixel(s) NaN in one product only"]
    # white light: the pixels finite in both only, so still 1
    np.testing.assert_array_equal(c.white_light.ratio, np.ones(NINTS))
    assert c.white_light.good.tolist() == [NY * NX - 2, NY * NX - 1, NY * NX - 1]


def test_dq_confusion_table_exact(pair):
    values = arrays()
    other = {k: v.copy() for k, v in values.items()}
    dnu, sat, jump, ref = dq.DO_NOT_USE, dq.SATURATED, dq.JUMP_DET, dq.REFERENCE_PIXEL
    values["dq"][0, 0, :3] = dnu | sat  # both: 2 pixels; A only: 1
    other["dq"][0, 0, :2] = dnu | sat
    values["dq"][1, 2, 2] = jump  # B only jump, at another pixel
    other["dq"][2, 2, 2] = jump
    values["dq"][:, 3, 4] = ref  # the top bit, in both
    other["dq"][:, 3, 4] = ref
    c = compare_products(*pair(values, other))
    assert c.dq.bits == {
        "DO_NOT_USE": (2, 1, 0),
        "SATURATED": (2, 1, 0),
        "JUMP_DET": (0, 1, 1),
        "REFERENCE_PIXEL": (NINTS, 0, 0),
    }
    assert c.dq.pixels - c.dq.equal == 3 and not c.within()
    assert c.failures() == ["DQ: 3 value(s) differ"]
    # white light leaves out DO_NOT_USE in either
    assert c.white_light.good.tolist() == [NY * NX - 3, NY * NX, NY * NX]
    assert "JUMP_DET" in format_comparison(c)


def test_another_pipelines_plain_file_and_extension_choice(pair):
    values = arrays()
    values["dq"][0, 0, 0] = dq.DO_NOT_USE | dq.REFERENCE_PIXEL  # int32 negative in B's file
    a, b = pair(values, writer=write_plain)
    c = compare_products(a, b)
    assert list(c.floats) == ["SCI", "ERR"] and c.within() and c.dq.within()
    assert c.origin_b == "origin unknown"
    c = compare_products(a, b, extensions=["sci", "DQ"])
    assert list(c.floats) == ["SCI"] and c.dq is not None
    with pytest.raises(InputError, match="no VAR_POISSON extension"):
        compare_products(a, b, extensions=["VAR_POISSON"])
    with pytest.raises(InputError, match="unknown extension"):
        compare_products(a, b, extensions=["GROUPDQ"])


def test_one_dq_plane_for_all_integrations(tmp_path):
    values = {**arrays(), "dq": np.zeros((NY, NX), np.uint32)}
    values["dq"][1, 1] = dq.DO_NOT_USE
    a = write_plain(tmp_path / "a.fits", values)
    b = write_plain(tmp_path / "b.fits", values)
    c = compare_products(a, b)
    assert c.within() and c.dq.pixels == NY * NX and c.dq.bits == {"DO_NOT_USE": (1, 0, 0)}
    assert c.white_light.good.tolist() == [NY * NX - 1] * NINTS


def test_rate_images_compare(tmp_path):
    values = arrays(shape=(NY, NX))
    paths = []
    for name in ("a", "b"):
        model = datamodels.ImageModel(**values)
        model.save(tmp_path / f"{name}_rate.fits")
        paths.append(tmp_path / f"{name}_rate.fits")
    c = compare_products(*paths)
    assert c.within() and c.shape == (NY, NX) and c.white_light.ratio.tolist() == [1.0]


def test_shape_mismatch_is_a_clear_error(tmp_path):
    a = write_cube(tmp_path / "a_rateints.fits", arrays())
    b = write_cube(tmp_path / "b_rateints.fits", arrays(shape=(NINTS + 1, NY, NX)))
    with pytest.raises(InputError, match=r"b_rateints.fits: SCI has shape \(4, 4, 5\)") as err:
        compare_products(a, b)
    assert "(3, 4, 5)" in str(err.value)
    rate = tmp_path / "c_rate.fits"
    datamodels.ImageModel(**arrays(shape=(NY, NX))).save(rate)
    with pytest.raises(InputError, match="c_rate.fits"):
        compare_products(a, rate)
    no_err = tmp_path / "no_err.fits"
    fits.HDUList([fits.PrimaryHDU(), fits.ImageHDU(arrays()["data"], name="SCI")]).writeto(no_err)
    with pytest.raises(InputError, match="no_err.fits: no ERR, DQ extension"):
        compare_products(a, no_err)
    with pytest.raises(InputError, match="missing.fits: no such file"):
        compare_products(a, tmp_path / "missing.fits")


def test_different_exposures_warned(pair):
    a, b = pair(arrays(), segment=2, intstart=4)
    c = compare_products(a, b)
    assert c.within()  # same pixels: the warning is a note, not a verdict
    assert [w.split(" ")[0] for w in c.warnings] == ["EXSEGNUM", "INTSTART"]
    assert "warning: EXSEGNUM differs" in format_comparison(c)


def test_figure_written_atomically(pair, tmp_path):
    pytest.importorskip("matplotlib")
    values = arrays()
    other = {k: v.copy() for k, v in values.items()}
    other["data"][1, 2, 3] *= np.float32(1.001)
    c = compare_products(*pair(values, other))
    path = compare_figure(c, tmp_path / "fig" / "compare.png")
    assert path.read_bytes().startswith(b"\x89PNG")
    assert [p.name for p in path.parent.iterdir()] == ["compare.png"]


def test_figure_skipped_without_matplotlib(pair, tmp_path, monkeypatch, caplog):
    import sys

    c = compare_products(*pair(arrays()))
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)  # import fails
    assert compare_figure(c, tmp_path / "compare.png") is None
    assert "figure skipped" in caplog.text and not (tmp_path / "compare.png").exists()


def test_cli_exit_codes(pair, tmp_path, capsys):
    values = arrays()
    other = {k: v.copy() for k, v in values.items()}
    other["data"][1, 2, 3] *= np.float32(1.001)
    a, b = pair(values, other)
    assert main(["compare", str(a), str(a), "-q"]) == 0
    assert "WITHIN rtol 1e-05" in capsys.readouterr().out
    assert main(["compare", str(a), str(b), "-q"]) == 1
    assert "NOT WITHIN" in capsys.readouterr().out
    assert main(["compare", str(a), str(b), "--rtol", "0.01", "-q"]) == 0
    assert main(["compare", str(a), str(b), "--extensions", "ERR,DQ", "-q"]) == 0
    capsys.readouterr()
    assert main(["compare", str(a), str(tmp_path / "missing.fits"), "-q"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("tsogpu: error:") and "missing.fits" in err[0]
    assert main(["compare", str(a), str(b), "--extensions", "SCI,FOO", "-q"]) == 2
    assert "FOO" in capsys.readouterr().err
    assert main(["compare", str(a), str(b), "--rtol", "-1", "-q"]) == 2
    assert main(["compare", str(a), str(b), "--extensions", "", "-q"]) == 2
    assert main(["compare", str(a), str(b), "--extensions", ",", "-q"]) == 2
    capsys.readouterr()
    figure = tmp_path / "c.png"
    assert main(["compare", str(a), str(b), "--figure", str(figure), "-q"]) == 1
    out = capsys.readouterr().out
    assert f"figure: {figure}" in out or "figure skipped" in out


@pytest.mark.jwst
@pytest.mark.slow
def test_tsogpu_against_jwst_rateints_within_1e_5(tmp_path, capsys):
    pytest.importorskip("jwst")
    import jwst_oracle  # tests/jwst_oracle.py: runs jwst offline
    from test_oracle_rates import CASES  # the segments already held to jwst there

    from tsogpu.config import PipelineConfig
    from tsogpu.pipeline import process_file
    from tsogpu.simulate import simulate

    kw = dict(CASES["nrs_bots"])
    sim = simulate(kw.pop("mode"), tmp_path / "in", **kw)
    config = PipelineConfig(refs={k: str(v) for k, v in sim.refs.items()})
    ours = {p.name.rsplit("_", 1)[1]: p for p in process_file(sim.uncal, tmp_path / "ours", config)}
    theirs = jwst_oracle.run_jwst_detector1(
        sim.uncal, sim.refs, tmp_path / "jwst", steps_to_compare=("ramp_fit",), skip=()
    )["ramp_fit"]
    figure = tmp_path / "compare.png"
    argv = ["compare", str(ours["rateints.fits"]), str(theirs["ints"]["path"]), "--rtol", "1e-5"]
    assert main([*argv, "--figure", str(figure), "-q"]) == 0
    report = capsys.readouterr().out
    print(report)
    assert "WITHIN rtol 1e-05" in report and "jwst 3.0" in report and "tsogpu" in report
    assert main(["compare", str(ours["rate.fits"]), str(theirs["path"]), "-q"]) == 0
    c = compare_products(ours["rateints.fits"], theirs["ints"]["path"])
    assert (
        not c.warnings
        and c.dq.within()
        and set(c.floats)
        == {
            "SCI",
            "ERR",
            "VAR_POISSON",
            "VAR_RNOISE",
        }
    )
    assert c.white_light.ratio.shape == (kw["nints"],)
    np.testing.assert_allclose(c.white_light.ratio, 1.0, rtol=1e-5)
