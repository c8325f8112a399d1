"""The exposure report's presentation: figures, DS9 images, the HTML page, and the page as a
browser shows it (headless Chromium; ``slow``)."""

import json
import re
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("matplotlib")
pytest.importorskip("xarray")

from astropy.io import fits  # noqa: E402
from chromium_cdp import find_chromium, render  # noqa: E402  (tests/chromium_cdp.py)
from report_data import synthetic_exposure  # noqa: E402  (tests/report_data.py)

from tsogpu import dq  # noqa: E402
from tsogpu.errors import ConfigError  # noqa: E402
from tsogpu.report.ds9 import write_ds9_images  # noqa: E402
from tsogpu.report.figures import FIGURES, make_figures  # noqa: E402
from tsogpu.report.html import write_report  # noqa: E402
from tsogpu.report.maps import pixel_maps  # noqa: E402
from tsogpu.report.report import make_report  # noqa: E402

REPO = Path(__file__).parents[1]
NAME = "jw01366004001_04101_00001_nrs1"
HOSTILE = "<script>alert('x')</script>"


def _png_size(path):
    head = Path(path).read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    return struct.unpack(">II", head[16:24])


@pytest.fixture(scope="module")
def ds():
    return synthetic_exposure(nints=24, ny=20, nx=96, name=NAME)


def test_figures_are_pngs_readable_alone(ds, tmp_path):
    paths = make_figures(ds, tmp_path, NAME)
    assert list(paths) == list(FIGURES)
    for key, path in paths.items():
        assert path == tmp_path / f"{NAME}_{FIGURES[key][0]}.png"
        width, height = _png_size(path)
        assert width == 1100 and 200 <= height <= 2000, (key, width, height)
        assert path.stat().st_size > 10_000, key  # drawn, not blank
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in paths.values())


def test_figures_leave_matplotlib_alone(ds, tmp_path):
    import matplotlib

    rc, backend = dict(matplotlib.rcParams), matplotlib.get_backend()
    had_pyplot = "matplotlib.pyplot" in sys.modules
    make_figures(ds, tmp_path, NAME)
    assert dict(matplotlib.rcParams) == rc and matplotlib.get_backend() == backend
    assert had_pyplot or "matplotlib.pyplot" not in sys.modules


def test_figures_without_the_optional_series(ds, tmp_path):
    """A product with only the cubes (no time series, datetimes on ``time``, a dead frame)."""
    bare = ds[["rateints", "err", "dq"]].copy()
    bare["rateints"][:, 0, :] = np.nan
    bare = bare.assign_coords(
        time=np.datetime64("2024-01-01") + np.arange(bare.sizes["time"]) * np.timedelta64(60, "s")
    )
    paths = make_figures(bare, tmp_path, NAME)
    assert all(_png_size(p)[0] == 1100 for p in paths.values())


def test_pixel_maps_by_blocks_equal_the_whole(ds):
    whole, blocks = pixel_maps(ds), pixel_maps(ds, block_bytes=1)
    np.testing.assert_array_equal(whole.median_rate, blocks.median_rate)
    np.testing.assert_array_equal(whole.dq_any, blocks.dq_any)
    for k in whole.counts:
        np.testing.assert_array_equal(whole.counts[k], blocks.counts[k])
        np.testing.assert_array_equal(whole.per_time[k], blocks.per_time[k])
    flags = ds["dq"].values
    assert whole.fractions()["JUMP_DET"] == pytest.approx(((flags & dq.JUMP_DET) != 0).mean())
    np.testing.assert_array_equal(whole.per_time["JUMP_DET"], ds["n_jump"].values)


def test_ds9_images_are_single_hdu(ds, tmp_path):
    paths = write_ds9_images(ds, tmp_path, NAME)
    assert paths == {
        "median_rate": tmp_path / f"{NAME}_median_rate.fits",
        "dq_map": tmp_path / f"{NAME}_dq_map.fits",
    }
    with fits.open(paths["median_rate"]) as hdul:
        assert len(hdul) == 1 and hdul[0].header["BUNIT"] == "DN/s"
        assert hdul[0].data.dtype == np.dtype(">f4")
        with np.errstate(all="ignore"), pytest.warns(RuntimeWarning, match="All-NaN"):
            expected = np.nanmedian(ds["rateints"].values, axis=0)
        np.testing.assert_array_equal(hdul[0].data, expected.astype(np.float32))
    with fits.open(paths["dq_map"]) as hdul:
        assert len(hdul) == 1 and hdul[0].data.dtype.kind == "u"
        np.testing.assert_array_equal(hdul[0].data, np.bitwise_or.reduce(ds["dq"].values, 0))


def _report(ds, out):
    products = {
        "rateints": out / "segments" / f"{NAME}_seg001_rateints.fits",
        "exposure product": out / f"{NAME}_tso.nc",
    }
    for p in products.values():
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"x")
    summary = {
        "timings": {"pass 1": 12.5, "total": 75.0},
        "peak_memory": 3 * 2**30,
        "warnings": ["2 segments had no <ZEROFRAME>"],
    }
    return make_report(ds, out, NAME, products=products, summary=summary)


def test_report_embeds_every_figure_and_links_relatively(ds, tmp_path):
    paths = _report(ds, tmp_path)
    text = paths["report"].read_text()
    assert paths["report"] == tmp_path / f"{NAME}_report.html"
    for png in paths["figures"].values():
        assert (
            "data:image/png;base64," + __import__("base64").b64encode(png.read_bytes()).decode()
            in text
        )
    assert len(re.findall(r"<img ", text)) == len(FIGURES)
    assert "<script" not in text.lower()
    assert not re.search(r"""(src|href)=["']?(https?:|//|file:)""", text)
    assert "Content-Security-Policy" in text
    for href in (
        f"segments/{NAME}_seg001_rateints.fits",
        f"{NAME}_tso.nc",
        f"{NAME}_median_rate.fits",
        f"{NAME}_dq_map.fits",
    ):
        assert f'href="{href}"' in text
    assert "75.0 s (1.2 min)" in text and "3.00 GiB" in text
    assert "&lt;ZEROFRAME&gt;" in text and "JUMP_DET" in text


def test_report_from_a_lazily_opened_netcdf(ds, tmp_path):
    """As ``tsogpu report`` gets it: the ``_tso.nc`` opened lazily, read by blocks."""
    xr = pytest.importorskip("xarray")
    pytest.importorskip("h5netcdf")
    nc = tmp_path / f"{NAME}_tso.nc"
    ds.to_netcdf(nc, engine="h5netcdf")
    with xr.open_dataset(nc, engine="h5netcdf") as lazy:
        maps = pixel_maps(lazy, block_bytes=4096)
        paths = make_report(lazy, tmp_path / "out", NAME, products=[nc])
    np.testing.assert_array_equal(maps.median_rate, pixel_maps(ds).median_rate)
    text = paths["report"].read_text()
    assert f'href="../{NAME}_tso.nc"' in text and "rejection_threshold" in text


def test_report_escapes_hostile_strings(ds, tmp_path):
    hostile = ds.copy()
    hostile.attrs.update(
        TSOPARS=json.dumps({"jump": {"note": HOSTILE}}),
        R_GAIN=HOSTILE,
        segments=json.dumps([{"file": HOSTILE}]),
        TSOBACK=HOSTILE,
        extra=HOSTILE,
        TSODEV=np.array([1, 2]),  # netCDF attributes may be arrays
    )
    figures = make_figures(ds, tmp_path, NAME)
    path = write_report(
        hostile,
        tmp_path,
        NAME,
        figures=figures,
        products=[tmp_path / HOSTILE],
        summary={"warnings": [HOSTILE], HOSTILE: HOSTILE},
    )
    text = path.read_text()
    assert "<script" not in text.lower()
    assert text.count("&lt;script&gt;") >= 7


def test_report_extra_is_named_when_missing(ds, tmp_path, monkeypatch):
    import importlib

    real = importlib.import_module

    def without_matplotlib(name, *args):
        if name == "matplotlib":
            raise ImportError(name)
        return real(name, *args)

    monkeypatch.setattr(importlib, "import_module", without_matplotlib)
    with pytest.raises(ConfigError, match=r"matplotlib.*pip install 'tsogpu\[report\]'"):
        make_report(ds, tmp_path, NAME)
    assert not list(tmp_path.iterdir())  # nothing written


def test_report_module_imports_no_plotting():
    code = "import sys, tsogpu.report.report; assert 'matplotlib' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO)


@pytest.mark.slow
def test_report_renders_in_chromium(ds, tmp_path):
    """The page as a reader gets it: no console error, every figure decoded. The screenshot
    is CI's artefact (build/report-screenshot.png)."""
    if find_chromium() is None:
        pytest.skip("no chromium binary on the PATH (Debian: apt-get install chromium)")
    paths = _report(ds, tmp_path)
    page = render(paths["report"])
    assert page.errors == []
    assert len(page.images) == len(FIGURES)
    assert all(w > 0 and h > 0 for w, h in page.images), page.images
    assert page.title == f"{NAME}: tsogpu Stage-1 report"
    shot = REPO / "build" / "report-screenshot.png"
    shot.parent.mkdir(exist_ok=True)
    shot.write_bytes(page.screenshot)
    width, height = _png_size(shot)
    assert width == 1280 and height > 2000  # the whole page, figures included


@pytest.mark.slow
def test_chromium_check_sees_errors(tmp_path):
    """The check above would fail: a console error, a script error, a missing image and a
    blocked external image are all reported."""
    if find_chromium() is None:
        pytest.skip("no chromium binary on the PATH (Debian: apt-get install chromium)")
    page = tmp_path / "bad.html"
    page.write_text(
        "<!DOCTYPE html><html><head><meta http-equiv='Content-Security-Policy' "
        "content=\"img-src 'self'\"><title>bad</title></head><body>"
        "<script>console.error('boom'); undefinedFunction();</script>"
        "<img src='missing.png'><img src='https://example.invalid/x.png'></body></html>"
    )
    got = render(page)
    text = "\n".join(got.errors)
    assert "boom" in text and "Uncaught" in text and "missing.png" in text
    assert "example.invalid" in text
    assert got.images == [(0, 0), (0, 0)]
