"""LIKELY kernels (kernels/likely.cu, tsogpu/launchers/likely.py) against the NumPy backend.

The host build (the native backend) is bit-identical to ``tsogpu.algorithms.likely``: DQ
equal, floats equal as bits, NaNs in the same places. Both call C's ``pow`` (glibc) in the
covariance scaling. On a GPU, CUDA's ``pow`` is within 2 ulp of it, and the likelihood jump
search turns some last-bit differences into different decisions (see tests/test_likely.py:
a tie between two usable differences, an exact zero in a two-omit denominator): there the
test asks for DQ equal in all but 1 % of the (integration, pixel) values and floats to 1e-9
relative elsewhere.
"""

import numpy as np
import pytest
from test_likely import differing, random_case

from tsogpu.algorithms import likely
from tsogpu.config import RampFit
from tsogpu.launchers import likely as cu_lk

FIELDS = ("sci", "err", "dq", "var_poisson", "var_rnoise")


def _assert_bits(got, want, label):
    got, want = np.asarray(got), np.asarray(want)
    assert got.dtype == want.dtype and got.shape == want.shape, label
    nan_g, nan_w = np.isnan(got) if got.dtype.kind == "f" else 0, 0
    if got.dtype.kind == "f":
        nan_w = np.isnan(want)
        np.testing.assert_array_equal(nan_g, nan_w, err_msg=f"{label}: NaN places")
        got = np.where(nan_g, 0, got).astype(got.dtype)
        want = np.where(nan_w, 0, want).astype(want.dtype)
    u = f"u{got.itemsize}"
    diff = got.view(u) != want.view(u)
    assert not diff.any(), f"{label}: {diff.sum()} of {diff.size} differ at {np.argwhere(diff)[:5]}"


CASES = [
    # (nints, ngroups, nframes, groupgap, zeroframe, first/last, NaN samples and bad gains)
    (1, 4, 1, 0, False, None, False),
    (3, 5, 1, 0, False, None, False),
    (2, 8, 2, 1, True, None, False),
    (4, 10, 4, 0, True, None, False),
    (9, 12, 1, 0, False, None, False),
    (2, 12, 1, 0, False, (1, 9), False),
    (2, 25, 1, 0, False, None, False),
    (30, 6, 1, 0, False, None, False),
    (5, 7, 2, 0, True, None, True),
    (12, 9, 1, 0, False, None, True),
]


@pytest.mark.parametrize("case", CASES, ids=[f"case{i}" for i in range(len(CASES))])
def test_kernels_match_numpy(kernels, case):
    nints, ngroups, nframes, groupgap, use_zf, group_range, bad = case
    arrays, dark, zeroframe, timing = random_case(
        3000 + CASES.index(case), nints, ngroups, nframes=nframes, groupgap=groupgap, bad=bad
    )
    zeroframe = zeroframe if use_zf else None
    first, last = group_range or (None, None)
    params = RampFit(algorithm="LIKELY", firstgroup=first, lastgroup=last)
    copies = [a.copy() for a in (*arrays, dark)]
    want = likely.fit_ramps_likely(
        *arrays, params, average_dark_current=dark, zeroframe=zeroframe, **timing
    )
    got = cu_lk.fit_ramps_likely(
        kernels,
        *(kernels.put(a) for a in arrays),
        params,
        average_dark_current=kernels.put(dark),
        zeroframe=None if zeroframe is None else kernels.put(zeroframe),
        **timing,
    )
    for before, after in zip(copies, (*arrays, dark), strict=True):
        np.testing.assert_array_equal(before, after)
    got_ints = [kernels.get(a) for a in got.rateints]
    got_rate = [kernels.get(a) for a in got.rate]
    if kernels.name == "host":
        for name, g, w in zip(FIELDS, got_ints, want.rateints, strict=True):
            _assert_bits(g, w, f"rateints {name}")
        for name, g, w in zip(FIELDS, got_rate, want.rate, strict=True):
            _assert_bits(g, w, f"rate {name}")
    else:  # CUDA's pow (module docstring)
        bad = differing(got_ints, want.rateints, rtol=1e-9)
        assert bad.mean() <= 0.01
        assert not (differing(got_rate, want.rate, rtol=1e-9) & ~bad.any(axis=0)).any()


def test_kernels_small_batches_match(kernels, monkeypatch):
    """Pixels fitted and combined in several launches (scratch batches) give the same bits."""
    arrays, dark, _, timing = random_case(3100, 5, 7)
    params = RampFit(algorithm="LIKELY")
    whole = cu_lk.fit_ramps_likely(
        kernels, *(kernels.put(a) for a in arrays), params,
        average_dark_current=kernels.put(dark), **timing,
    )  # fmt: skip
    monkeypatch.setattr(cu_lk, "SCRATCH_WORDS", cu_lk.LK_NARR * 7 * 9)
    parts = cu_lk.fit_ramps_likely(
        kernels, *(kernels.put(a) for a in arrays), params,
        average_dark_current=kernels.put(dark), **timing,
    )  # fmt: skip
    for a, b in zip((*whole.rateints, *whole.rate), (*parts.rateints, *parts.rate), strict=True):
        _assert_bits(kernels.get(a), kernels.get(b), "batches")


def test_kernels_refuse_too_few_groups(kernels):
    arrays, dark, _, timing = random_case(3200, 1, 3)
    with pytest.raises(ValueError, match="at least 4 groups"):
        cu_lk.fit_ramps_likely(kernels, *arrays, RampFit(algorithm="LIKELY"), **timing)
