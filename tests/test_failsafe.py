"""A run killed (SIGTERM, SIGKILL) leaves nothing behind and its rerun gives the products of
an uninterrupted run, bit for bit; a full or unwritable output folder is the user's error."""

import errno
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from product_digests import hdu_digests

from tsogpu.errors import OutputError
from tsogpu.io import atomic
from tsogpu.pipeline import preflight, process_file
from tsogpu.simulate import simulate

# a budget that cuts the segment into many chunks and tiles: a run of a few seconds
RUN_OPTIONS = ("--max-memory", "220M", "--threads", "1")


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    return simulate("nrs_bots", tmp_path_factory.mktemp("failsafe"), nints=40, ngroups=6, seed=3)


def run_args(sim, out):
    refs = [a for k, v in sim.refs.items() for a in ("--ref", f"{k}={v}")]
    return [sys.executable, "-m", "tsogpu.cli", "run", str(sim.uncal), "--out", str(out), *refs]


@pytest.fixture(scope="module")
def reference(sim, tmp_path_factory):
    """Digests of an uninterrupted run's products, by file name."""
    out = tmp_path_factory.mktemp("reference")
    subprocess.run([*run_args(sim, out), *RUN_OPTIONS, "-q"], check=True, capture_output=True)
    return {p.name: hdu_digests(p) for p in out.iterdir()}


@pytest.fixture(scope="module")
def progress_lines(sim, tmp_path_factory):
    """How many lines of stderr (progress, log) a whole run writes: kills are timed by them."""
    out = tmp_path_factory.mktemp("timing")
    res = subprocess.run([*run_args(sim, out), *RUN_OPTIONS], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    return len(res.stderr.splitlines())


def killed_run(sim, out, signum, after):
    """Run, send ``signum`` once ``after`` lines of stderr have come (or a line containing
    ``after``, a str); (returncode, stderr)."""
    proc = subprocess.Popen([*run_args(sim, out), *RUN_OPTIONS], stderr=subprocess.PIPE, text=True)
    seen = []
    for line in proc.stderr:
        seen.append(line)
        if (after in line) if isinstance(after, str) else len(seen) >= after:
            proc.send_signal(signum)
            break
    rest = proc.stderr.read()
    proc.wait(timeout=120)
    return proc.returncode, "".join(seen) + rest


def hidden(out):
    return sorted(p.name for p in out.iterdir() if p.name.startswith("."))


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGKILL], ids=["TERM", "KILL"])
@pytest.mark.parametrize(
    "point",
    [
        pytest.param("early", marks=pytest.mark.slow),
        pytest.param("random", marks=pytest.mark.slow),
        "late",
    ],
)
def test_killed_run_leaves_nothing_and_rerun_is_identical(
    sim, reference, progress_lines, tmp_path, signum, point
):
    lines = progress_lines
    after = {
        "early": 2,
        "random": random.Random().randrange(2, lines),
        "late": "ramp fit: 40/40",  # the last tile: the products are being written
    }[point]
    out = tmp_path / "out"
    code, err = killed_run(sim, out, signum, after)
    if code == 0:  # it finished before the signal: still a valid case
        assert sorted(p.name for p in out.iterdir()) == sorted(reference)
    elif signum == signal.SIGTERM:
        assert code == 143, err
        assert "tsogpu: interrupted (SIGTERM)" in err
        assert hidden(out) == []  # scratch and temporary products cleaned up
    else:
        assert code == -signal.SIGKILL
        # the scratch ramp is anonymous: nothing of it, ever; a product's temporary file may be
        assert not [n for n in hidden(out) if n.startswith(".tsogpu-scratch")]
    # all of the products or none
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith(".")) in (
        [],
        sorted(reference),
    )
    left = hidden(out)
    res = subprocess.run([*run_args(sim, out), *RUN_OPTIONS], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    if left and code != 0:  # a temporary product of the killed run: removed, and said
        assert "removed what a killed run left" in res.stderr
    assert hidden(out) == []
    assert {p.name: hdu_digests(p) for p in out.iterdir()} == reference


def test_unwritable_output_folder_is_a_user_error(sim, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    # the input does not even exist: the output folder is checked first
    cmd = [sys.executable, "-m", "tsogpu.cli", "run", "missing.fits", "--out", str(blocker / "o")]
    res = subprocess.run(cmd, capture_output=True, text=True)
    assert res.returncode == 2, res.stderr
    assert f"cannot write to {blocker / 'o'}" in res.stderr
    assert "internal error" not in res.stderr


def test_too_little_space_found_before_the_run(sim, tmp_path, monkeypatch):
    monkeypatch.setattr(preflight.shutil, "disk_usage", lambda path: _usage(10**6))
    with pytest.raises(OutputError, match=r"no space left on .*: needs ~0\.\d+ GB, has 0\.00 GB"):
        process_file(sim.uncal, tmp_path, _config(sim))
    assert list(tmp_path.iterdir()) == []


def test_disk_full_while_writing_removes_the_set(sim, tmp_path, monkeypatch):
    calls = []
    real_fsync = os.fsync

    def fsync(fd):  # the first product is written, the second finds the disk full
        calls.append(fd)
        if len(calls) == 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        real_fsync(fd)

    monkeypatch.setattr(atomic.os, "fsync", fsync)
    with pytest.raises(OutputError, match="no space left on"):
        process_file(sim.uncal, tmp_path, _config(sim))
    assert len(calls) == 2
    assert list(tmp_path.iterdir()) == []  # neither _rateints nor a temporary file


def test_no_space_seen_through_a_wrapping_error():
    try:
        try:
            raise OSError(errno.ENOSPC, "No space left on device")
        except OSError:
            raise AttributeError("'list' object has no attribute '_file'")  # noqa: B904
    except AttributeError as exc:
        assert preflight.no_space(exc)
    assert not preflight.no_space(ValueError("x"))


def test_full_tmpfs(sim, tmp_path):
    folder = tmp_path / "small"
    folder.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(folder)], capture_output=True
    )
    if mounted.returncode != 0:
        pytest.skip("cannot mount a tmpfs here")
    try:
        res = subprocess.run([*run_args(sim, folder), "-q"], capture_output=True, text=True)
        assert res.returncode == 2, res.stderr
        assert f"no space left on {folder}: needs ~" in res.stderr
        assert list(folder.iterdir()) == []
    finally:
        subprocess.run(["umount", str(folder)], check=False)


def _usage(free):
    return shutil._ntuple_diskusage(10**9, 10**9 - free, free)


def _config(sim):
    from tsogpu.config import PipelineConfig

    return PipelineConfig(refs={k: str(v) for k, v in sim.refs.items()}, threads=1)


def test_product_set_renames_all_or_none(tmp_path):
    paths = [tmp_path / "a.fits", tmp_path / "b.fits"]
    with pytest.raises(RuntimeError), atomic.product_set():
        atomic.write_atomically(paths[0], lambda fh: fh.write(b"a"))
        assert not paths[0].exists()  # renamed only at the end of the set
        raise RuntimeError
    assert list(tmp_path.iterdir()) == []
    with atomic.product_set():
        for p in paths:
            atomic.write_atomically(p, lambda fh: fh.write(b"x"))
    assert sorted(Path(p).name for p in tmp_path.iterdir()) == ["a.fits", "b.fits"]


def test_batch_terminated_leaves_no_scratch(sim, tmp_path):
    pytest.importorskip("distributed")
    out = tmp_path / "out"
    cmd = run_args(sim, out)
    cmd[3] = "batch"
    proc = subprocess.Popen(
        [*cmd, "--workers", "1", "--max-memory", "300M"], stderr=subprocess.PIPE, text=True
    )
    seen = []
    for line in proc.stderr:  # the cluster is up and the segment sent: let it start
        seen.append(line)
        if "segment(s) of" in line:
            time.sleep(2)
            proc.send_signal(signal.SIGTERM)
            break
    err = "".join(seen) + proc.stderr.read()
    proc.wait(timeout=120)
    if proc.returncode != 0:  # else it finished before the signal
        assert proc.returncode == 143, err
        assert "interrupted" in err
    assert hidden(out) == []
