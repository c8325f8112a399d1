"""The command line as a new user meets it: help, demo, info, wrong paths, wrong references."""

import hashlib
import os
import subprocess
import sys

import pytest
from astropy.io import fits

from tsogpu.backends import select_backend
from tsogpu.cli import main
from tsogpu.simulate import simulate


def tsogpu(*args):
    return subprocess.run(
        [sys.executable, "-m", "tsogpu.cli", *map(str, args)], capture_output=True, text=True
    )


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    return simulate("nrs_bots", tmp_path_factory.mktemp("bots"), nints=3, ngroups=4, seed=2)


def ref_args(sim, **replace):
    refs = {**{k: str(v) for k, v in sim.refs.items()}, **replace}
    return [a for k, v in refs.items() for a in ("--ref", f"{k}={v}")]


def test_help():
    res = tsogpu("--help")
    assert res.returncode == 0
    for word in ("run", "demo", "info", "simulate"):
        assert word in res.stdout
    res = tsogpu("run", "--help")
    assert (
        res.returncode == 0 and "--ref TYPE=PATH" in res.stdout and "n_pix_grow_sat" in res.stdout
    )


def test_run_writes_products_jwst_reads(sim, tmp_path):
    datamodels = pytest.importorskip("jwst.datamodels")
    before = hashlib.sha256(open(sim.uncal, "rb").read()).hexdigest()
    res = tsogpu("run", sim.uncal, "--out", tmp_path, *ref_args(sim), "--save-ramp", "-q")
    assert res.returncode == 0, res.stderr
    name = os.path.basename(str(sim.uncal))
    written = [tmp_path / name.replace("_uncal", f"_{s}") for s in ("ramp", "rateints", "rate")]
    assert res.stdout.split() == [str(p) for p in written]
    nints, ngroups, ny, nx = fits.getdata(sim.uncal, "SCI").shape
    with datamodels.open(written[1]) as model:
        assert type(model).__name__ == "CubeModel" and model.data.shape == (nints, ny, nx)
        assert model.meta.cal_step.ramp_fit == "COMPLETE"
        assert model.meta.exposure.primary_cosmic_rays is not None
    with datamodels.open(written[2]) as model:
        assert type(model).__name__ == "ImageModel" and model.data.shape == (ny, nx)
    with datamodels.open(written[0]) as model:
        assert type(model).__name__ == "RampModel"
        assert model.data.shape == (nints, ngroups, ny, nx)
        assert model.meta.cal_step.saturation == "COMPLETE"
        assert model.meta.cal_step.dark_sub == model.meta.cal_step.jump == "COMPLETE"
        assert model.meta.ref_file.saturation.name == os.path.abspath(sim.refs["saturation"])
        assert model.int_times is not None and len(model.int_times) > 0
    header = fits.getheader(written[1])
    # the default backend, auto: what it resolves to on this machine
    assert header["TSOBACK"] == select_backend("auto") and "n_pix_grow_sat" in header["TSOPARS"]
    assert hashlib.sha256(open(sim.uncal, "rb").read()).hexdigest() == before
    # nothing else left behind: no temporary files, no scratch folder
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in written)


def test_info_on_uncal_and_product(sim, tmp_path):
    res = tsogpu("info", sim.uncal)
    assert res.returncode == 0
    assert "NRS1" in res.stdout and "SCI" in res.stdout and "segment 1 of" in res.stdout


def test_wrong_path_one_line(tmp_path):
    res = tsogpu("run", tmp_path / "missing_uncal.fits", "--out", tmp_path)
    assert res.returncode == 2
    lines = [ln for ln in res.stderr.splitlines() if ln.startswith("tsogpu: error")]
    assert len(lines) == 1 and "missing_uncal.fits: no such file" in lines[0]
    assert "Traceback" not in res.stderr


def test_wrong_reference_type(sim, tmp_path):
    res = tsogpu(
        "run", sim.uncal, "--out", tmp_path, *ref_args(sim, saturation=sim.refs["gain"]), "-q"
    )
    assert res.returncode == 2
    assert "saturation" in res.stderr and os.path.basename(str(sim.refs["gain"])) in res.stderr
    assert "Traceback" not in res.stderr
    assert not list(tmp_path.glob("*.fits"))


def test_unknown_option_values(sim, tmp_path):
    res = tsogpu("run", sim.uncal, "--out", tmp_path, "--set", "saturation.grow=2")
    assert res.returncode == 2 and "no parameter 'grow'" in res.stderr
    res = tsogpu("run", sim.uncal, "--out", tmp_path, "--ref", "flat=x.fits")
    assert res.returncode == 2 and "unknown reference type 'flat'" in res.stderr
    res = tsogpu("run", sim.uncal, "--out", tmp_path, *ref_args(sim), "--backend", "cupy")
    assert res.returncode == 2 and "cupy" in res.stderr


def test_demo_in_process(tmp_path, capsys, caplog):
    datamodels = pytest.importorskip("jwst.datamodels")
    assert main(["demo", "--out", str(tmp_path), "--nints", "3", "--ngroups", "4", "-q"]) == 0
    out = capsys.readouterr().out
    assert f"MiB, in {tmp_path}; remove them with: rm -r {tmp_path}" in out.splitlines()[-1]
    assert "SIM_NOT_A_MNEMONIC" not in caplog.text  # the simulator's own DQ_DEF row, quiet
    products = sorted(tmp_path.glob("*_rateints.fits"))
    assert len(products) == 1
    with datamodels.open(products[0]) as model:
        assert model.meta.cal_step.refpix == model.meta.cal_step.ramp_fit == "COMPLETE"


def test_config_file_skip_and_set_reach_the_product(sim, tmp_path):
    import json

    cfg = tmp_path / "tso.toml"
    cfg.write_text('skip = ["dark_current"]\n[saturation]\nn_pix_grow_sat = 0\n')
    out = tmp_path / "out"
    res = tsogpu(
        "run",
        sim.uncal,
        "--out",
        out,
        "--config",
        cfg,
        *ref_args(sim),
        "--set",
        "refpix.side_gain=0.5",
        "-q",
    )
    assert res.returncode == 0, res.stderr
    header = fits.getheader(res.stdout.split()[-1])
    assert header["S_DARK"] == "SKIPPED" and header["S_SATURA"] == "COMPLETE"
    params = json.loads(header["TSOPARS"])
    assert params["saturation"]["n_pix_grow_sat"] == 0
    assert params["refpix"]["side_gain"] == 0.5
    assert params["skip"] == ["dark_current", "emicorr", "firstframe"]  # + jwst's default skips


def test_simulate_command(tmp_path):
    res = tsogpu(
        "simulate",
        "--mode",
        "niriss_soss",
        "--nints",
        "2",
        "--ngroups",
        "3",
        "--out",
        tmp_path,
        "-q",
    )
    assert res.returncode == 0, res.stderr
    uncal = res.stdout.splitlines()[0]
    assert uncal.endswith("_uncal.fits") and fits.getdata(uncal, "SCI").shape[:2] == (2, 3)
    assert res.stdout.count("--ref ") == 7
    res = tsogpu("simulate", "--mode", "miri_mrs", "--out", tmp_path)
    assert res.returncode == 2 and "miri_mrs" in res.stderr and "Traceback" not in res.stderr
