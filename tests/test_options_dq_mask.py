"""The user DQ mask (``dq_init.user_mask``, ``--dq-mask FILE``; docs/options.md).

The reader (FITS, .npy and text lists, and its errors), dq_init with the mask on NumPy and on
the kernels (host build, and CuPy with a GPU) bit for bit, the whole chain in memory, and the
command line.
"""

import numpy as np
import pytest
from astropy.io import fits

from tsogpu import dq
from tsogpu.algorithms import dq_init
from tsogpu.backends.kernel_ops import KernelOps
from tsogpu.cli import build_parser, make_config
from tsogpu.config import DQInit, PipelineConfig
from tsogpu.errors import ConfigError, InputError
from tsogpu.io.reffiles import segment_references
from tsogpu.io.uncal import read_uncal
from tsogpu.io.user_mask import read_user_mask
from tsogpu.launchers import dq_init as kdq_init
from tsogpu.pipeline import run_segment

DNU = dq.DO_NOT_USE
HOT = dq.PIXEL["HOT"]


def test_fits_image_nonzero_is_flagged(tmp_path):
    img = np.zeros((4, 6), np.int16)
    img[1, 2] = 1
    img[3, 5] = -7  # any nonzero value
    path = tmp_path / "mask.fits"
    fits.HDUList([fits.PrimaryHDU(), fits.ImageHDU(img)]).writeto(path)
    got = read_user_mask(path, (4, 6), "HOT")
    assert got.dtype == np.uint32
    want = np.zeros((4, 6), np.uint32)
    want[1, 2] = want[3, 5] = HOT
    np.testing.assert_array_equal(got, want)
    np.save(tmp_path / "mask.npy", img)
    np.testing.assert_array_equal(read_user_mask(tmp_path / "mask.npy", (4, 6), "HOT"), want)


def test_text_list_of_pixels_and_regions(tmp_path):
    path = tmp_path / "bad.txt"
    path.write_text("# x y, 0-based\n2 1\n\n0:2 3:   # a region to the top edge\n5 0:1\n")
    got = read_user_mask(path, (5, 6))
    want = np.zeros((5, 6), np.uint32)
    want[1, 2] = DNU  # "2 1": x=2 (column), y=1 (row)
    want[3:, 0:2] = DNU
    want[0, 5] = DNU
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("1 2 3\n", r"bad\.txt, line 1: expected 'X Y'"),
        ("a 1\n", r"line 1: x 'a' is not a pixel number"),
        ("1 5\n", r"line 1: y '5' is outside the frame \(0\.\.4"),
        ("\n3:3 0\n", r"line 2: x '3:3' is outside the frame .* or empty"),
        ("6 0\n", r"x '6' is outside"),
    ],
)
def test_text_list_errors_name_the_file_and_line(tmp_path, text, match):
    path = tmp_path / "bad.txt"
    path.write_text(text)
    with pytest.raises(InputError, match=match):
        read_user_mask(path, (5, 6))


def test_image_errors(tmp_path):
    with pytest.raises(InputError, match=r"user_mask: .*nope\.fits: file not found"):
        read_user_mask(tmp_path / "nope.fits", (4, 6))
    path = tmp_path / "wrong.fits"
    fits.PrimaryHDU(np.zeros((4, 5), np.uint8)).writeto(path)
    with pytest.raises(InputError, match=r"wrong\.fits: image shape \(4, 5\).* is \(4, 6\)"):
        read_user_mask(path, (4, 6))
    cube = tmp_path / "cube.fits"
    fits.PrimaryHDU(np.zeros((2, 4, 6), np.uint8)).writeto(cube)
    with pytest.raises(InputError, match=r"cube\.fits: expected a 2-D image"):
        read_user_mask(cube, (4, 6))


def test_bit_must_be_a_dq_name():
    with pytest.raises(ConfigError, match=r"user_mask_bit must be the name of a DQ bit.*'BAD'"):
        DQInit(user_mask_bit="BAD")
    with pytest.raises(ConfigError, match="user_mask_bit"):
        DQInit(user_mask_bit="GOOD")


def test_dq_init_ors_the_user_mask_as_jwst(kernels):
    pdq = np.array([[0, dq.PIXEL["HOT"]], [2, 0]], np.uint32)
    gdq = np.zeros((2, 3, 2, 2), np.uint8)
    mask = np.array([[0, 0], [0, DNU]], np.uint32)
    user = np.array([[DNU, 0], [HOT, 0]], np.uint32)
    new_pdq, new_gdq = dq_init.dq_init(pdq, gdq, mask, user)
    np.testing.assert_array_equal(new_pdq, [[DNU, HOT], [2 | HOT, DNU]])
    # DO_NOT_USE from the user's mask reaches GROUPDQ, as jwst's user_supplied_dq does
    assert (new_gdq[:, :, 0, 0] == DNU).all() and (new_gdq[:, :, 1, 1] == DNU).all()
    assert (new_gdq[:, :, 0, 1] == 0).all() and (new_gdq[:, :, 1, 0] == 0).all()
    # the kernels, bit for bit (random bits)
    rng = np.random.default_rng(3)
    shape = (2, 3, 5, 7)
    gdq = rng.integers(0, 256, shape, dtype=np.uint8)
    pdq = rng.integers(0, 2**32, shape[2:], dtype=np.uint64).astype(np.uint32)
    mask = rng.integers(0, 2**32, shape[2:], dtype=np.uint64).astype(np.uint32)
    user = np.where(rng.random(shape[2:]) < 0.3, np.uint32(DNU), np.uint32(0))
    want = dq_init.dq_init(pdq, gdq, mask, user)
    got = kdq_init.dq_init(kernels, *(kernels.put(a) for a in (pdq, gdq, mask, user)))
    for g, w in zip(got, want, strict=True):
        np.testing.assert_array_equal(kernels.get(g), w)


@pytest.fixture(scope="module")
def small(simulated):
    sim = simulated("nrs_bots", nints=2, ngroups=4, ncols=16, seed=2)
    config = PipelineConfig(refs={k: str(v) for k, v in sim.refs.items()}, skip={"jump"})
    refs, _ = segment_references(sim.uncal, config)
    return sim, config, refs


def test_chain_flags_the_pixels_on_every_backend(small, kernels, tmp_path):
    sim, config, refs = small
    path = tmp_path / "user.txt"
    path.write_text("3 1\n5:7 0:2\n")
    base = run_segment(read_uncal(sim.uncal), refs, config)
    config = config.with_overrides(sets=[f"dq_init.user_mask={path}"])
    want = run_segment(read_uncal(sim.uncal), refs, config)
    got = run_segment(read_uncal(sim.uncal, raw=True), refs, config, ops=KernelOps(kernels))
    flagged = np.zeros(base.segment.pixeldq.shape, bool)
    flagged[1, 3] = True
    flagged[0:2, 5:7] = True
    assert ((want.segment.pixeldq & DNU) != 0)[flagged].all()
    assert np.isnan(want.rateints[0][:, flagged]).all()
    assert np.isfinite(base.rateints[0][:, flagged]).all()
    np.testing.assert_array_equal(want.segment.pixeldq, got.segment.pixeldq)
    np.testing.assert_array_equal(want.segment.groupdq, got.segment.groupdq)
    for a, b in zip(want.rateints, got.rateints, strict=True):
        np.testing.assert_array_equal(a, b)


def test_command_line_flag_sets_the_parameter(tmp_path):
    args = build_parser().parse_args(
        [
            "run",
            "x_uncal.fits",
            "--out",
            "o",
            "--dq-mask",
            "m.fits",
            "--set",
            "dq_init.user_mask_bit=HOT",
        ]
    )
    params = make_config(args).params("dq_init")
    assert params.user_mask == "m.fits" and params.user_mask_bit == "HOT"
