"""MIRI through tsogpu's own runners: chunks equal the whole segment, what each MIRI step
removed (``_removed``), the options, and the errors. Against jwst: test_oracle_miri.py."""

import numpy as np
import pytest
from astropy.io import fits

from tsogpu.backends import backend_ops
from tsogpu.cli import main
from tsogpu.config import PipelineConfig
from tsogpu.errors import ConfigError
from tsogpu.io.reffiles import segment_references
from tsogpu.io.uncal import inspect_uncal, read_uncal
from tsogpu.memory import current_rss
from tsogpu.pipeline import process_file, run_segment
from tsogpu.pipeline.chunked import run_chunked
from tsogpu.pipeline.planning import BYTES_PER_SAMPLE_IN_MEMORY, Plan, plan_chunks
from tsogpu.simulate import simulate


@pytest.fixture(scope="module", params=["miri_lrs", "miri_image"])
def miri(request, tmp_path_factory):
    return simulate(
        request.param, tmp_path_factory.mktemp(request.param), nints=4, ngroups=7, seed=51
    )


def config_for(sim, **kw):
    return PipelineConfig(refs={k: str(v) for k, v in sim.refs.items()}, **kw)


@pytest.mark.parametrize("backend", ["numpy", "native"])
@pytest.mark.parametrize("ints, rows, cols", [(1, 7, 1000), (3, 1000, 5)])
def test_chunked_equals_whole(miri, backend, ints, rows, cols, tmp_path):
    """Chunks of integrations (reset, rscd and the dark by the integration's number) and
    tiles (stcal's MIRI group discard over the whole segment) give the whole segment's
    products and records, bit for bit."""
    config = config_for(miri, backend=backend)
    exposure, shape, _ = inspect_uncal(miri.uncal)
    refs, _ = segment_references(miri.uncal, config)
    whole = run_segment(read_uncal(miri.uncal), refs, config)
    plan = Plan(0, ints=ints, rows=rows, cols=cols, halo=1, in_memory=False, threads=1)
    chunked = run_chunked(
        miri.uncal, exposure, shape, refs, config, plan, tmp_path, lambda *a: None,
        ops=backend_ops(backend),
    )  # fmt: skip
    assert chunked.step_status == whole.step_status
    assert whole.step_status["rscd"] == whole.step_status["reset"] == "COMPLETE"
    for product in ("rateints", "rate"):
        for a, b in zip(getattr(chunked, product), getattr(whole, product), strict=True):
            np.testing.assert_array_equal(a, b, err_msg=product)
    assert chunked.removed.keys() == whole.removed.keys() == {"lastframe", "reset", "rscd"}
    for step, values in whole.removed.items():
        np.testing.assert_array_equal(chunked.removed[step], values, err_msg=step)


def test_removed_records_what_each_step_did(miri, tmp_path):
    config = config_for(miri).with_overrides(run=("firstframe",))
    written = process_file(miri.uncal, tmp_path, config)
    removed = next(p for p in written if p.name.endswith("_removed.fits"))
    nints, ngroups, ny, nx = inspect_uncal(miri.uncal)[1]
    reset = fits.getdata(miri.refs["reset"], "SCI")
    rn, rg = fits.getval(miri.refs["reset"], "NINTS"), fits.getval(miri.refs["reset"], "NGROUPS")
    groups = min(ngroups, rg)
    expected = [reset[min(i, rn - 1), :groups].mean(dtype=np.float64) for i in range(nints)]
    with fits.open(removed) as hdul:
        assert fits.getval(removed, "REMSTEPS") == "firstframe,lastframe,reset,rscd"
        np.testing.assert_allclose(hdul["RESET"].data, expected, rtol=1e-12)
        assert hdul["RESET"].header["BUNIT"] == "DN"
        # lastframe: the last group of each pixel not already DO_NOT_USE there
        last = hdul["LASTFRAME"].data
        assert np.all((last > 0.9 * ny * nx) & (last <= ny * nx))
        # firstframe flags group 0, so rscd's first group is already DO_NOT_USE there
        assert np.all(hdul["FIRSTFRAME"].data > 0)
        rscd = hdul["RSCD"].data
        assert rscd[0] < rscd[1] or rscd[0] == 0  # fewer groups in the first integration


def test_rscd_and_frame_options_flag_more_groups(miri, tmp_path):
    base_config = config_for(miri)
    base = run_segment(read_uncal(miri.uncal), segment_references(miri.uncal, base_config)[0],
                       base_config)  # fmt: skip
    more = base_config.with_overrides(
        sets=["rscd.skip_int1=3", "rscd.skip_int2p=3", "lastframe.ngroups=2"]
    )
    refs, _ = segment_references(miri.uncal, more)
    changed = run_segment(read_uncal(miri.uncal), refs, more)
    dnu = lambda r: (r.segment.groupdq & 1) != 0  # noqa: E731
    # three leading groups and two trailing ones in every integration (rscd's back-off
    # aside: pixels saturated early keep their groups, FLUX_ESTIMATED)
    usable = ~dnu(changed)[:, :3] | ((changed.segment.pixeldq & 2**28) != 0)[None, None]
    assert usable.mean() < 0.01
    assert np.all(dnu(changed)[:, -2:].mean(axis=(2, 3)) > 0.99)
    assert dnu(changed).sum() > dnu(base).sum()
    assert changed.removed["rscd"][0] > base.removed["rscd"][0]


def test_emicorr_needs_the_whole_segment_in_memory(miri, tmp_path):
    """jwst fits the EMI over every integration: a chunked plan is refused, saying why."""
    nints, ngroups, ny, nx = inspect_uncal(miri.uncal)[1]
    products = nints * ny * nx * 4 * 7
    half = BYTES_PER_SAMPLE_IN_MEMORY * nints * ngroups * ny * nx // 2
    config = config_for(miri, max_memory=current_rss() + products + half)
    assert not plan_chunks((nints, ngroups, ny, nx), config).in_memory
    with pytest.raises(ConfigError, match="emicorr fits the EMI over every integration"):
        process_file(miri.uncal, tmp_path, config.with_overrides(run=("emicorr",)))
    assert process_file(miri.uncal, tmp_path, config)  # chunked without emicorr


def test_run_step_on_the_command_line(miri, tmp_path, capsys):
    refs = [a for t, p in miri.refs.items() for a in ("--ref", f"{t}={p}")]
    assert main(["run", str(miri.uncal), "--out", str(tmp_path), "-q", "--run-step", "emicorr",
                 "--run-step", "firstframe", *refs]) == 0  # fmt: skip
    header = fits.getheader(next(tmp_path.glob("*_rateints.fits")))
    assert header["S_MIREMI"] == header["S_FRSTFR"] == "COMPLETE"
    assert main(["run", str(miri.uncal), "--out", str(tmp_path / "d"), "-q", *refs]) == 0
    header = fits.getheader(next((tmp_path / "d").glob("*_rateints.fits")))
    assert header["S_MIREMI"] == header["S_FRSTFR"] == "SKIPPED"  # jwst's defaults
    assert header["S_RSCD"] == header["S_RESET"] == header["S_LASTFR"] == "COMPLETE"
