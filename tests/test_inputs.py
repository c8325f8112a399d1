"""Inputs checked at the edge: keywords against the data, what is not a file, options given
twice or too large, the same input twice in `run` and `batch`, and a fuzz of the readers."""

import logging
import os
import shutil

import numpy as np
import pytest
from astropy.io import fits

from tsogpu import batch
from tsogpu.cli import main
from tsogpu.config import PipelineConfig, parse_refs
from tsogpu.errors import ConfigError, InputError, TsogpuError
from tsogpu.io.describe import demo_summary, describe
from tsogpu.io.reffiles import load_reference, segment_references
from tsogpu.io.uncal import inspect_uncal, read_uncal
from tsogpu.memory import capped_to_machine, machine_memory
from tsogpu.pipeline.in_memory import run_segment
from tsogpu.pipeline.resume import say_if_overwritten
from tsogpu.simulate import simulate


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    return simulate("niriss_soss", tmp_path_factory.mktemp("soss"), nints=2, ngroups=3, seed=5)


def _variant(sim, tmp_path, edit, source=None, name="variant_uncal.fits"):
    """A copy of the simulated uncal (or ``source``) with ``edit(hdul)`` applied."""
    out = tmp_path / name
    with fits.open(source or sim.uncal) as hdul:
        hdul = fits.HDUList([h.copy() for h in hdul])
        edit(hdul)
        hdul.writeto(out, output_verify="silentfix")
    return out


def _set(**cards):
    def edit(hdul):
        for key, value in cards.items():
            if value is None:
                del hdul[0].header[key]
            else:
                hdul[0].header[key] = value

    return edit


# -- point 4: keywords against the data -------------------------------------------------------


def test_simulated_segment_passes(sim):
    exposure, shape, _ = inspect_uncal(sim.uncal)
    assert shape[0] == exposure.intend - exposure.intstart + 1 <= exposure.nints


@pytest.mark.parametrize(
    "cards, match",
    [
        ({"INTEND": 99}, "INTSTART <= INTEND <= NINTS"),
        ({"INTSTART": 0}, "INTSTART <= INTEND <= NINTS"),
        ({"NINTS": 1}, "INTSTART <= INTEND <= NINTS"),
        ({"INTEND": None}, "INTSTART and INTEND come together"),
        ({"NFRAMES": 4}, r"TGROUP = .* NFRAMES or GROUPGAP"),
        ({"GROUPGAP": 2}, r"TGROUP = .* NFRAMES or GROUPGAP"),
        ({"TGROUP": 0.0}, "TFRAME and TGROUP must be positive"),
    ],
)
def test_keywords_checked_against_each_other(sim, tmp_path, cards, match):
    path = _variant(sim, tmp_path, _set(**cards))
    with pytest.raises(InputError, match=match):
        inspect_uncal(path)


def test_segment_integrations_against_sci(sim, tmp_path):
    h = fits.getheader(sim.uncal)
    # a segment's SCI holds INTEND - INTSTART + 1 integrations, not NINTS
    path = _variant(sim, tmp_path, _set(INTEND=h["INTSTART"], NINTS=h["NINTS"] + 5))
    with pytest.raises(InputError, match="SCI has 2 integrations but INTSTART"):
        inspect_uncal(path)
    whole = _variant(sim, tmp_path, _set(INTSTART=None, INTEND=None, NINTS=3), name="w_uncal.fits")
    with pytest.raises(InputError, match="SCI has 2 integrations but NINTS = 3"):
        inspect_uncal(whole)


def test_within_tolerance_tgroup_passes(sim, tmp_path):
    h = fits.getheader(sim.uncal)
    path = _variant(sim, tmp_path, _set(TGROUP=round(h["TGROUP"] * (1 + 2e-4), 6)))
    inspect_uncal(path)


@pytest.mark.parametrize("kind", ["device", "fifo"])
def test_not_a_regular_file_is_refused_at_once(sim, tmp_path, kind):
    if kind == "device":
        path = "/dev/zero"
        if not os.path.exists(path):
            pytest.skip("no /dev/zero")
    else:
        path = tmp_path / "pipe_uncal.fits"
        os.mkfifo(path)  # nothing writes to it: reading would block for ever
    with pytest.raises(InputError, match="not a regular file"):
        read_uncal(path)
    with pytest.raises(TsogpuError, match="not a regular file"):
        load_reference("gain", path, inspect_uncal(sim.uncal)[0])
    assert main(["info", str(path)]) == 2


def test_ref_type_given_twice_is_an_error(sim, tmp_path):
    assert parse_refs(["gain=a.fits", "mask = b.fits"]) == {"gain": "a.fits", "mask": "b.fits"}
    with pytest.raises(ConfigError, match="--ref gain= given twice"):
        parse_refs(["gain=a.fits", "gain=b.fits"])
    argv = ["run", str(sim.uncal), "--out", str(tmp_path / "out")]
    assert main([*argv, "--ref", "gain=a.fits", "--ref", "gain=b.fits"]) == 2
    assert not (tmp_path / "out").exists()


def test_max_memory_above_the_machine_is_capped(caplog):
    total = machine_memory()
    assert capped_to_machine(total // 2) == total // 2
    with caplog.at_level(logging.WARNING, logger="tsogpu.memory"):
        assert capped_to_machine(total * 4) == total
    assert "more than this machine's" in caplog.text


def test_nan_or_zero_gain_is_logged_and_kept(sim, tmp_path, caplog):
    def edit(hdul):
        hdul["SCI"].data[0, :3] = np.nan
        hdul["SCI"].data[1, :2] = 0

    path = _variant(sim, tmp_path, edit, source=sim.refs["gain"], name="gain.fits")
    exposure = inspect_uncal(sim.uncal)[0]
    with caplog.at_level(logging.WARNING, logger="tsogpu.io.reffiles"):
        ref = load_reference("gain", path, exposure)
    gain = ref.arrays["data"]
    bad = int(np.count_nonzero(np.isnan(gain) | (gain == 0)))
    assert bad >= 3 and np.isnan(gain).sum() >= 3  # kept, as jwst keeps it
    assert f"{bad} of {gain.size} pixel(s) have a gain of NaN, inf or 0" in caplog.text


# -- point 5: run and batch agree --------------------------------------------------------------


def test_same_input_twice_is_an_error_in_run_and_batch(sim, tmp_path):
    out = tmp_path / "out"
    for command in ("run", "batch"):
        assert main([command, str(sim.uncal), str(sim.uncal), "--out", str(out)]) == 2
    link = tmp_path / "link_uncal.fits"
    link.symlink_to(sim.uncal)
    with pytest.raises(InputError, match="given twice"):
        batch.check_distinct([sim.uncal, link])
    with pytest.raises(InputError, match="given twice"):  # a folder and a file in it overlap
        batch.expand_inputs([sim.uncal.parent, sim.uncal])
    assert not out.exists()


def test_same_file_name_in_two_folders_is_an_error_in_run_and_batch(sim, tmp_path):
    other = tmp_path / "other"
    other.mkdir()
    copy = other / sim.uncal.name
    shutil.copy(sim.uncal, copy)
    out = tmp_path / "out"
    for command in ("run", "batch"):
        assert main([command, str(sim.uncal), str(copy), "--out", str(out)]) == 2
    with pytest.raises(InputError, match="would write the same products"):
        batch.check_distinct([sim.uncal, copy])
    plain = other / sim.uncal.name.replace("_uncal.fits", ".fits")  # the same products too
    with pytest.raises(InputError, match="would write the same products"):
        batch.check_distinct([sim.uncal, plain])
    assert not out.exists()


def test_run_says_when_it_replaces_products(sim, tmp_path, caplog):
    config = PipelineConfig()
    with caplog.at_level(logging.INFO, logger="tsogpu.pipeline.resume"):
        say_if_overwritten(sim.uncal, tmp_path, config)
        assert caplog.text == ""
        (tmp_path / sim.uncal.name.replace("_uncal", "_rate")).write_bytes(b"")
        say_if_overwritten(sim.uncal, tmp_path, config)
    assert "replacing" in caplog.text and "_rate.fits" in caplog.text


# -- point 7: info, the demo's summary, the progress counter -----------------------------------


def test_info_says_when_a_file_is_truncated(sim, tmp_path):
    assert "TRUNCATED" not in describe(sim.uncal)
    short = tmp_path / "short_uncal.fits"
    short.write_bytes(sim.uncal.read_bytes()[: os.path.getsize(sim.uncal) // 2])
    assert "TRUNCATED: the file has" in describe(short)


def test_demo_summary_names_only_the_demos_files(tmp_path):
    import time

    (tmp_path / "mine.txt").write_text("kept")
    before, since = set(tmp_path.iterdir()), time.time()
    (tmp_path / "inputs").mkdir()
    (tmp_path / "inputs" / "a_uncal.fits").write_bytes(b"x" * 2**20)
    (tmp_path / "a_rate.fits").write_bytes(b"x" * 2**20)
    line = demo_summary(tmp_path, before, since)
    assert "wrote 2 files, 2.0 MiB" in line
    assert line.endswith(f"rm -r {tmp_path / 'a_rate.fits'} {tmp_path / 'inputs'}")
    assert demo_summary(tmp_path, None, since).endswith(f"rm -r {tmp_path}")


def test_progress_covers_ramp_fit_and_gain_scale(sim):
    config = PipelineConfig(refs={t: str(p) for t, p in sim.refs.items()})
    refs, _ = segment_references(sim.uncal, config)
    stages = []
    run_segment(read_uncal(sim.uncal), refs, config, on_step=lambda s, seg: stages.append(s))
    assert stages[-2:] == ["jump", "ramp_fit + gain_scale"]


def test_simulator_does_not_log_its_own_dq_def(tmp_path, caplog):
    with caplog.at_level(logging.WARNING):
        simulate("nrs_bots", tmp_path, nints=1, ngroups=2, seed=3)
    assert "SIM_NOT_A_MNEMONIC" not in caplog.text


# -- point 6: a fuzz of the readers ------------------------------------------------------------

FUZZ_SEED, FUZZ_CASES = 18, 60


def _mutations(rng, path, n):
    """``n`` (description, edit(hdul) or bytes-edit) mutations of a FITS file, from ``rng``."""
    with fits.open(path) as hdul:
        names = [h.name for h in hdul]
        keys = [k for k in hdul[0].header if k not in ("SIMPLE", "BITPIX", "NAXIS", "EXTEND", "")]
        images = [h.name for h in hdul[1:] if h.is_image and h.data is not None]
    size = os.path.getsize(path)
    for _ in range(n):
        kind = rng.choice(["remove", "retype", "drop", "truncate", "reshape", "bytes"])
        if kind == "remove":
            key = str(rng.choice(keys))
            yield f"remove {key}", ("hdul", lambda h, k=key: h[0].header.remove(k))
        elif kind == "retype":
            key = str(rng.choice(keys))
            value = [str(rng.integers(100)), -1, 0, 1.5, True, "X"][rng.integers(6)]

            def retype(h, k=key, v=value):
                h[0].header[k] = v

            yield f"retype {key}={value!r}", ("hdul", retype)
        elif kind == "drop" and len(names) > 1:
            name = str(rng.choice(names[1:]))
            yield f"drop {name}", ("hdul", lambda h, n=name: h.pop(h.index_of(n)))
        elif kind == "reshape" and images:
            name = str(rng.choice(images))

            def reshape(h, n=name):
                data = h[n].data
                h[n].data = data.reshape(-1)[: data.size // 2].copy()

            yield f"reshape {name}", ("hdul", reshape)
        elif kind == "bytes":
            at = int(rng.integers(0, size))
            junk = rng.integers(0, 256, int(rng.integers(1, 64)), dtype=np.uint8).tobytes()
            yield f"bytes at {at}", ("bytes", lambda b, a=at, j=junk: b[:a] + j + b[a + len(j) :])
        else:
            cut = int(rng.integers(0, size))
            yield f"truncate at {cut}", ("bytes", lambda b, c=cut: b[:c])


def _mutated(source, tmp_path, i, how, edit):
    out = tmp_path / f"m{i}_uncal.fits"
    if how == "bytes":
        out.write_bytes(edit(source.read_bytes()))
        return out
    with fits.open(source) as hdul:
        hdul = fits.HDUList([h.copy() for h in hdul])
        edit(hdul)
        hdul.writeto(out, output_verify="silentfix")
    return out


def test_fuzz_uncal_and_reference_readers(sim, tmp_path):
    """Mutated real files (keywords removed or retyped, extensions dropped, arrays reshaped,
    files truncated, random bytes): each is read or refused with a TsogpuError, nothing else,
    and the readers write nothing."""
    rng = np.random.default_rng(FUZZ_SEED)
    exposure = inspect_uncal(sim.uncal)[0]
    work = tmp_path / "work"
    work.mkdir()
    sources = [("uncal", sim.uncal), ("gain", sim.refs["gain"]), ("mask", sim.refs["mask"])]
    refused = 0
    for i, (what, edit) in enumerate(_mutations(rng, sim.uncal, FUZZ_CASES)):
        reftype, source = sources[i % len(sources)]
        try:
            path = _mutated(source, work, i, *edit)
        except Exception:  # astropy would not write this mutation: nothing to read
            continue
        before = sorted(os.listdir(work))
        try:
            if reftype == "uncal":
                inspect_uncal(path)
                read_uncal(path)
                read_uncal(path, raw=True)
            else:
                load_reference(reftype, path, exposure)
        except TsogpuError:
            refused += 1
        except Exception as exc:
            pytest.fail(f"{reftype} {what}: {type(exc).__name__}: {exc}")
        assert sorted(os.listdir(work)) == before, what
    assert refused >= FUZZ_CASES // 4  # most mutations are caught, not read as if whole
