"""The exposure product and report from the command line: ``tsogpu run --report`` on every
segment of an exposure, ``tsogpu report`` on products from elsewhere, and the clear error
without the ``report`` extra."""

import importlib

import pytest

pytest.importorskip("xarray")
pytest.importorskip("matplotlib")

from tsogpu.cli import main  # noqa: E402
from tsogpu.simulate import simulate  # noqa: E402

NSEG = 3


@pytest.fixture(scope="module")
def segments(tmp_path_factory):
    """The uncal files of a 3-segment NIRCam grism exposure and its reference options."""
    work = tmp_path_factory.mktemp("report_cli")
    sims = [
        simulate("nircam_grism", work / "in", nints=4, ngroups=3, ncols=128, seed=3,
                 segment=(k, NSEG), full_frame_refs=False)
        for k in range(1, NSEG + 1)
    ]  # fmt: skip
    refs = [f"--ref={t}={p}" for t, p in sims[0].refs.items()]
    return [str(s.uncal) for s in sims], refs


def test_run_with_report_writes_one_product_and_report(segments, tmp_path, capsys):
    uncal, refs = segments
    out = tmp_path / "out"
    assert main(["run", *uncal, "--out", str(out), *refs, "--report", "-q"]) == 0
    printed = capsys.readouterr().out.split()
    reports = [p for p in printed if p.endswith("_report.html")]
    assert len(reports) == 1
    name = reports[0].rsplit("/", 1)[1].removesuffix("_report.html")
    for suffix in ("tso.nc", "report.html", "median_rate.fits", "dq_map.fits", "light_curve.png"):
        assert (out / f"{name}_{suffix}").is_file(), suffix
    import xarray as xr

    with xr.open_dataset(out / f"{name}_tso.nc", engine="h5netcdf") as ds:
        assert ds.sizes["time"] == 4 * NSEG
        assert ds.attrs["segments"].count("_rateints.fits") == NSEG
    html = (out / f"{name}_report.html").read_text()
    for seg in range(1, NSEG + 1):  # the timings of every segment, and a link to each product
        assert f"seg00{seg}_nrcalong_uncal.fits" in html
        assert f'href="{name.split("_nrcalong")[0]}-seg00{seg}_nrcalong_rateints.fits"' in html


def test_report_command_on_a_folder(segments, tmp_path, capsys):
    uncal, refs = segments
    out = tmp_path / "products"
    assert main(["run", *uncal, "--out", str(out), *refs, "-q"]) == 0
    capsys.readouterr()
    assert main(["report", str(out), "--out", str(tmp_path / "report"), "-q"]) == 0
    (report,) = capsys.readouterr().out.split()
    assert report.endswith("_report.html") and (tmp_path / "report" / report).exists()


def test_report_command_refuses_an_empty_folder(tmp_path, capsys):
    assert main(["report", str(tmp_path), "-q"]) == 2
    assert "no *_rateints.fits" in capsys.readouterr().err


def test_run_report_without_the_extra_fails_before_any_work(
    segments, tmp_path, monkeypatch, capsys
):
    uncal, refs = segments
    real = importlib.import_module

    def without_xarray(name, *args):
        if name == "xarray":
            raise ImportError(name)
        return real(name, *args)

    monkeypatch.setattr(importlib, "import_module", without_xarray)
    out = tmp_path / "out"
    assert main(["run", *uncal, "--out", str(out), *refs, "--report", "-q"]) == 2
    assert "pip install 'tsogpu[report]'" in capsys.readouterr().err
    assert not out.exists()  # nothing was processed
