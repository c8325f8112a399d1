"""`tsogpu batch` on a real Dask cluster: the same products as one by one, resumable, safe.

A local cluster of 2 worker processes (one thread each) runs small simulated segments of one
exposure. Products are compared byte for byte with `process_file` run one by one, except
the write date (DATE, also in the ASDF tree, and so the tree's hash of the FITS headers).
A worker is killed for real (SIGKILL) between two product renames; the rerun completes the
products and removes the hidden leftovers.
"""

import os
import re
import shutil
import signal
import subprocess
import sys

import pytest
from astropy.io import fits

from tsogpu import batch, clusters
from tsogpu.backends import select_backend
from tsogpu.cli import main
from tsogpu.config import PipelineConfig
from tsogpu.io.products import INPUT_HASH_KEYWORD
from tsogpu.pipeline import process_file, resume
from tsogpu.simulate import simulate

distributed = pytest.importorskip("distributed", reason="tsogpu[dask] is not installed")

NSEG = 4


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """Four segments of one exposure, their (cut-out) reference files: a read-only folder."""
    folder = tmp_path_factory.mktemp("segments")
    for k in range(1, NSEG + 1):
        sim = simulate(
            "nrs_bots",
            folder,
            nints=4,
            ngroups=5,
            ncols=64,
            seed=21,
            segment=(k, NSEG),
            full_frame_refs=False,
        )
    for truth in folder.glob("*_truth.npz"):
        truth.unlink()
    return folder, {t: str(p) for t, p in sim.refs.items()}


def segment_paths(folder):
    return sorted(folder.glob("*_uncal.fits"))


def copy_segments(inputs, dest):
    """Private copies of the segments to touch or break (times kept: the same input hash);
    the reference files stay where they are, as their paths are in the products."""
    folder, refs = inputs
    dest.mkdir()
    for path in segment_paths(folder):
        shutil.copy2(path, dest)
    return dest, refs


def config_for(refs, **kw):
    # threads and the budget given: they are recorded in TSOPARS, so both runs use the same
    return PipelineConfig(refs=refs, threads=1, max_memory=4 * 2**30, **kw)


@pytest.fixture(scope="module")
def serial(inputs, tmp_path_factory):
    """The products of process_file run one segment after another."""
    folder, refs = inputs
    out = tmp_path_factory.mktemp("serial")
    return {p.name: process_file(p, out, config_for(refs)) for p in segment_paths(folder)}


@pytest.fixture(scope="module")
def cluster():
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0"
    ) as cl:
        yield cl


@pytest.fixture
def client(cluster):
    with distributed.Client(cluster) as c:
        c.wait_for_workers(2, timeout=60)
        yield c


def run(paths, out, config, client, **kw):
    report = batch.run_batch(paths, out, config, client, **kw)
    return {os.path.basename(r["file"]): r for r in report.results}, report


def visible(folder):
    return sorted(p.name for p in folder.iterdir() if not p.name.startswith("."))


def hidden(folder):
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def assert_same_product(path, expected):
    """Byte-identical but for the write date: the primary DATE, repeated in the ASDF tree,
    whose ``_fits_hash`` (of the FITS headers and data) then differs too."""

    def undated(p):
        raw = p.read_bytes()
        date = fits.getval(p, "DATE").encode()
        assert raw.count(date) == 2  # the card and the ASDF tree, nowhere else
        raw = raw.replace(date, b"D" * len(date))
        return re.sub(rb"_fits_hash: [0-9a-f]{64}", b"_fits_hash: " + b"H" * 64, raw)

    if undated(path) == undated(expected):
        return
    with fits.open(path) as got, fits.open(expected) as want:  # say where they differ
        for a, b in zip(got, want, strict=True):
            cards = [tuple(c) for c in a.header.cards if c.keyword != "DATE"]
            assert cards == [tuple(c) for c in b.header.cards if c.keyword != "DATE"], a.name
            if a.name != "ASDF" and a.data is not None:
                assert a.data.tobytes() == b.data.tobytes(), a.name
    pytest.fail(f"{path.name}: differs from {expected} (ASDF tree)")


def assert_same_as_serial(out, serial):
    for products in serial.values():
        for expected in products:
            assert_same_product(out / expected.name, expected)
    assert visible(out) == sorted(p.name for ps in serial.values() for p in ps)
    assert hidden(out) == []


# --------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_batch_equals_one_by_one_and_resumes(inputs, serial, client, tmp_path):
    """(a) the same products as process_file one by one; (b) a rerun skips every segment;
    a parameter changed redoes them all; a touched input redoes that one alone."""
    folder, refs = copy_segments(inputs, tmp_path / "in")
    paths = segment_paths(folder)
    out = tmp_path / "out"
    config = config_for(refs)
    # what process_file (tsogpu run) made is complete for a batch with the same inputs
    serial_out = next(iter(serial.values()))[0].parent
    results, _ = run(paths, serial_out, config, client)
    assert [r["status"] for r in results.values()] == ["skipped"] * NSEG

    results, report = run(paths, out, config, client)
    assert report.ok and [r["status"] for r in results.values()] == ["ok"] * NSEG
    assert {r["backend"] for r in results.values()} == {select_backend(config.backend)}
    assert_same_as_serial(out, serial)

    results, _ = run(paths, out, config, client)
    assert [r["status"] for r in results.values()] == ["skipped"] * NSEG
    assert_same_as_serial(out, serial)

    touched = out / serial[paths[2].name][0].name
    before = fits.getval(touched, INPUT_HASH_KEYWORD)
    os.utime(paths[2])  # a new modification time: that segment's input identity changed
    results, _ = run(paths, out, config, client)
    assert [r["status"] for r in results.values()] == ["skipped", "skipped", "ok", "skipped"]
    assert fits.getval(touched, INPUT_HASH_KEYWORD) != before

    changed = config.with_overrides(sets=["jump.rejection_threshold=5.0"])
    results, _ = run(paths, out, changed, client)
    assert [r["status"] for r in results.values()] == ["ok"] * NSEG
    # execution settings change no product: still complete
    results, _ = run(paths, out, changed.with_overrides(threads=2, max_memory=8 * 2**30), client)
    assert [r["status"] for r in results.values()] == ["skipped"] * NSEG


def test_worker_killed_mid_batch_then_rerun(inputs, serial, cluster, client, tmp_path):
    """(c) a worker process killed (SIGKILL) after one product's rename and before the next:
    that segment fails with the reason, nothing half-written is visible, and the rerun
    completes every product, identical to one by one, with the leftovers gone."""
    folder, refs = inputs
    paths = segment_paths(folder)
    out = tmp_path / "out"
    marker = tmp_path / "killed"
    client.run(die_before_rate_rename, str(marker))
    allowed, cluster.scheduler.allowed_failures = cluster.scheduler.allowed_failures, 0
    try:
        results, report = run(paths, out, config_for(refs), client)
    finally:
        cluster.scheduler.allowed_failures = allowed
        client.run(restore_os)  # the worker that did not die
    killed = marker.read_text()
    assert not report.ok and results[killed]["status"] == "failed"
    assert "worker died" in results[killed]["reason"]
    for r in results.values():  # a task queued on the dead worker fails with it
        assert r["status"] == "ok" or "worker died" in r["reason"]
    stem = killed[: -len("_uncal.fits")]
    # the killed segment, killed between the renames of its product set: _rateints renamed
    # into place, _rate only as a hidden temporary
    assert f"{stem}_rateints.fits" in visible(out) and f"{stem}_rate.fits" not in visible(out)
    left = hidden(out)
    assert any(n.startswith(f".{stem}_rate.fits.") and n.endswith(".tmp") for n in left)
    assert not any(n.startswith(".tsogpu-scratch-") for n in left)  # anonymous scratch
    for name in visible(out):  # whatever is visible is a whole product
        assert fits.getval(out / name, INPUT_HASH_KEYWORD)

    results, report = run(paths, out, config_for(refs), client)
    assert report.ok and results[killed]["status"] == "ok"
    assert_same_as_serial(out, serial)


def die_before_rate_rename(marker):
    """Run in each worker: the first worker to rename a _rate product into place writes the
    segment's name to ``marker`` and kills its own process (SIGKILL) instead."""
    from tsogpu.io import atomic

    real = atomic.os

    class KillingOs:
        def __getattr__(self, name):
            return getattr(real, name)

        @staticmethod
        def replace(src, dst):
            if str(dst).endswith("_rate.fits"):
                try:
                    fd = real.open(marker, real.O_CREAT | real.O_EXCL | real.O_WRONLY)
                except FileExistsError:
                    pass
                else:
                    name = os.path.basename(str(dst)).replace("_rate.fits", "_uncal.fits")
                    real.write(fd, name.encode())
                    real.close(fd)
                    real.kill(real.getpid(), signal.SIGKILL)
            return real.replace(src, dst)

    atomic.os = KillingOs()


def restore_os():
    from tsogpu.io import atomic

    atomic.os = os


def test_failing_inputs_reported_others_complete(inputs, serial, client, tmp_path):
    """(d) a truncated segment and a missing one fail with their reasons; the rest is done."""
    folder, refs = copy_segments(inputs, tmp_path / "in")
    paths = segment_paths(folder)
    data = paths[1].read_bytes()
    paths[1].write_bytes(data[: len(data) // 2])
    missing = folder / "jw00000000000_00000_00000-seg001_nrs1_uncal.fits"
    out = tmp_path / "out"
    results, report = run([*paths, missing], out, config_for(refs), client)
    assert not report.ok
    assert results[paths[1].name]["status"] == "failed"
    assert paths[1].name in results[paths[1].name]["reason"]
    assert "truncated" in results[paths[1].name]["reason"]
    assert results[missing.name]["reason"].endswith("no such file")
    for p in (paths[0], paths[2], paths[3]):
        assert results[p.name]["status"] == "ok"
        for expected in serial[p.name]:
            assert_same_product(out / expected.name, expected)
    assert hidden(out) == []


def test_inputs_and_exposures(inputs, tmp_path, monkeypatch):
    folder, _ = inputs
    paths = segment_paths(folder)
    listing = tmp_path / "list.txt"
    listing.write_text(f"# segments\n{paths[2]}\n\n{os.path.relpath(paths[0], tmp_path)}\n")
    monkeypatch.chdir(tmp_path)
    got = batch.expand_inputs([f"@{listing}", str(folder / "*seg002*_uncal.fits")])
    assert got == [paths[2], paths[0], paths[1]]
    with pytest.raises(batch.InputError, match="given twice"):  # the list and the glob overlap
        batch.expand_inputs([f"@{listing}", str(folder / "*seg00[12]*_uncal.fits")])
    assert batch.expand_inputs([folder]) == paths
    ordered, exposures, warnings = batch.group_exposures([paths[3], paths[0], paths[1]])
    assert ordered == [paths[0], paths[1], paths[3]]
    assert [e.key for e in exposures] == ["jw01366003001_04101_00001_nrs1"]
    assert warnings == [
        "exposure jw01366003001_04101_00001_nrs1: segment 3 of 4 not among the inputs"
    ]
    renamed = tmp_path / "renamed_uncal.fits"  # grouped by its keywords
    shutil.copy(paths[1], renamed)
    ordered, exposures, warnings = batch.group_exposures([renamed, paths[0]])
    assert ordered == [paths[0], renamed] and len(exposures) == 1
    assert warnings[0].endswith("segments 3, 4 of 4 not among the inputs")
    shutil.copy(paths[1], tmp_path / paths[1].name)
    with pytest.raises(batch.InputError, match="would write the same products"):
        batch.group_exposures([paths[1], tmp_path / paths[1].name])
    with pytest.raises(batch.InputError, match="matches no file"):
        batch.expand_inputs([str(tmp_path / "nothing*_uncal.fits")])
    with pytest.raises(batch.InputError, match="cannot read the list"):
        batch.expand_inputs(["@" + str(tmp_path / "missing.txt")])
    assert main(["batch", str(tmp_path / "nothing*"), "--out", str(tmp_path)]) == 2
    assert main(["simulate", "--segment", "2", "--out", str(tmp_path)]) == 2  # not K/N


def test_side_products_count_for_completeness(inputs, tmp_path):
    """With refpix.sky_method and superbias.scale, a segment is complete only with its
    _oneoverf and _biasscale too; superbias=N/A writes no _biasscale and needs none."""
    folder, refs = inputs
    path = segment_paths(folder)[0]
    options = ["refpix.sky_method=roeba", "superbias.scale=integration"]
    config = config_for(refs).with_overrides(sets=options)
    out = tmp_path / "out"
    written = process_file(path, out, config)
    assert {p.name.rsplit("_", 1)[1] for p in written} == {
        "rateints.fits", "rate.fits", "oneoverf.fits", "biasscale.fits"
    }  # fmt: skip
    assert sorted(resume.complete_products(path, out, config)) == sorted(written)
    for side in ("oneoverf", "biasscale"):
        kept = out / "kept.fits"
        victim = next(p for p in written if p.name.endswith(f"_{side}.fits"))
        victim.rename(kept)
        assert resume.complete_products(path, out, config) is None, side
        kept.rename(victim)
    no_bias = config.with_overrides(refs={"superbias": "N/A"})
    written = process_file(path, tmp_path / "no_bias", no_bias)
    assert not [p for p in written if p.name.endswith("_biasscale.fits")]
    assert sorted(resume.complete_products(path, tmp_path / "no_bias", no_bias)) == sorted(written)


def test_missing_cluster_package_is_a_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "dask_jobqueue", None)
    with pytest.raises(clusters.ConfigError, match=r"pip install 'tsogpu\[slurm\]'"):
        clusters.require("dask_jobqueue")


def test_slurm_job_script():
    jobqueue = pytest.importorskip("dask_jobqueue")
    options = clusters.SlurmOptions(
        queue="gpu", account="jwst", walltime="02:00:00", memory="32GB", cores=8
    )
    with jobqueue.SLURMCluster(**options.cluster_kwargs()) as cluster:  # submits no job
        script = cluster.job_script()
    assert "#SBATCH -p gpu" in script and "#SBATCH -A jwst" in script
    assert "--nworkers 8" in script and "--nthreads 1" in script


@pytest.mark.slow
def test_cli_progress_ctrl_c_and_resume(inputs, serial, cluster, tmp_path):
    """(e) `tsogpu batch` as a user runs it: a line per segment, Ctrl-C (SIGINT to the
    process group, as a terminal sends it) stops it with the partial summary and exit 130;
    the same command resumes (here on a running scheduler) and ends with the table."""
    folder, refs = inputs
    out = tmp_path / "out"
    refs_args = [a for t, p in refs.items() for a in ("--ref", f"{t}={p}")]
    args = ["--out", str(out), *refs_args, "--threads", "1", "--max-memory", "4G"]
    # one worker: segments one after another, so Ctrl-C after the first lands mid-batch
    cmd = [sys.executable, "-m", "tsogpu.cli", "batch", str(folder), *args, "--workers", "1"]
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    err = []
    for line in proc.stderr:
        err.append(line)
        if line.startswith(f"[1/{NSEG}]"):
            os.killpg(proc.pid, signal.SIGINT)
            break
    err += proc.stderr.readlines()
    stdout = proc.stdout.read()
    assert proc.wait(timeout=60) == 130, "".join(err) + stdout
    stderr = "".join(err)
    assert "interrupted; the same command resumes the batch" in stderr
    assert "Traceback" not in stderr
    assert stdout.splitlines()[0].split() == ["file", "status", "time", "backend", "device"]
    assert "interrupted" in stdout and f"{NSEG} files: 1 ok" in stdout

    bad = tmp_path / "broken-seg001_nrs1_uncal.fits"
    bad.write_bytes(b"SIMPLE  = T" + b" " * 100)
    cmd = [sys.executable, "-m", "tsogpu.cli", "batch", str(folder), str(bad), *args]
    res = subprocess.run(
        [*cmd, "--scheduler", cluster.scheduler_address], capture_output=True, text=True
    )
    assert res.returncode == 2, res.stderr
    progress = [ln for ln in res.stderr.splitlines() if ln.startswith("[")]
    assert len(progress) == NSEG + 1, res.stderr
    assert progress[-1].startswith(f"[{NSEG + 1}/{NSEG + 1}]")
    rows = {ln.split()[0]: ln.split()[1] for ln in res.stdout.splitlines()[2 : 3 + NSEG]}
    assert rows[bad.name] == "failed" and "ok" in rows.values() and "skipped" in rows.values()
    assert f"{NSEG + 1} files:" in res.stdout and "1 failed" in res.stdout
    assert f"{bad.name}: {bad}: not a readable FITS file" in res.stdout
    assert "warnings:" not in res.stdout  # one whole exposure, and a file of its own
    assert_same_as_serial(out, serial)


def test_report_formatting():
    results = [
        {
            "file": "/d/a_uncal.fits",
            "status": "ok",
            "reason": "",
            "seconds": 1.25,
            "backend": "numpy",
            "device": "cpu",
            "host": "h",
            "products": [],
        },
        {
            "file": "/d/b_uncal.fits",
            "status": "failed",
            "reason": "/d/b_uncal.fits: no such file",
            "seconds": 0.0,
            "backend": "",
            "device": "",
            "host": "h",
            "products": [],
        },
    ]
    assert batch.format_progress(2, 12, results[1]) == (
        "[ 2/12] b_uncal.fits failed 0.0 s: /d/b_uncal.fits: no such file"
    )
    text = batch.format_summary(batch.BatchReport(results, ["exposure x: segment 2 of 3"], 3.0))
    lines = text.splitlines()
    assert lines[0].split() == ["file", "status", "time", "backend", "device"]
    assert lines[2].split() == ["a_uncal.fits", "ok", "1.2", "s", "numpy", "cpu"]
    assert "2 files: 1 ok, 1 failed in 3.0 s" in text
    assert "  b_uncal.fits: /d/b_uncal.fits: no such file" in lines
    assert lines[-1] == "  exposure x: segment 2 of 3"
