"""Ramp fitting's MIRI rule (stcal 1.20 ``ols_fit.py: discard_miri_groups``):
``ramp_fit.miri_groups`` decides the groups from the whole array's all-DNU planes,
``fit_ramps(groups=...)`` fits them, JUMP_DET cleared in the new first group. Hand-built
decisions, the specification against stcal with a MIRI model (``jwst``), the tuned path and the
kernels against the specification."""

import numpy as np
import pytest
from test_ramp_fit import _assert_matches, _random_case, stcal_fit
from test_spec_vs_fast import run_both_fit

from tsogpu import dq
from tsogpu.algorithms import jump, ramp_fit
from tsogpu.config import RampFit
from tsogpu.launchers import ramp_fit as kramp_fit

DNU = np.uint8(dq.DO_NOT_USE)
JUMP = np.uint8(dq.JUMP_DET)


def _planes(ngroups, dnu_groups, nints=2):
    planes = np.zeros((nints, ngroups), bool)
    planes[:, list(dnu_groups)] = True
    return planes


@pytest.mark.parametrize(
    ("ngroups", "dnu_groups", "want"),
    [
        (1, [0], (0, 1)),  # NGROUPS == 1: stcal does not apply the rule
        (6, [], (0, 6)),
        (6, [0], (1, 6)),
        (6, [0, 1, 5], (2, 5)),
        (6, [4, 5], (0, 5)),  # only the final group
        (6, [0, 2], (1, 6)),  # a DNU group after a usable one stays
        (3, [0, 2], None),  # one group left
        (4, [0, 1, 2, 3], None),
        (2, [0], None),
    ],
)
def test_miri_groups(ngroups, dnu_groups, want):
    assert ramp_fit.miri_groups(_planes(ngroups, dnu_groups), RampFit()) == want


def test_miri_groups_needs_every_integration_and_folds_the_group_range():
    planes = _planes(6, [0])
    planes[1, 0] = False  # integration 1 has a usable group 0 somewhere
    assert ramp_fit.miri_groups(planes, RampFit()) == (0, 6)
    assert ramp_fit.miri_groups(_planes(8, []), RampFit(firstgroup=2, lastgroup=5)) == (2, 7)


def _miri_case(seed, nints, ngroups, lead, trail, ny=10, nx=13):
    arrays, dark, _, timing = _random_case(seed, nints, ngroups, ny, nx, chargeloss=True)
    data, gdq = arrays[:2]
    gdq[:, :lead] |= DNU  # firstframe / rscd
    if trail:
        gdq[:, -1] |= DNU  # lastframe
    gdq[:, lead, ::2, ::3] |= JUMP  # to be cleared where groups were dropped
    return arrays, dark, timing


CASES = [  # nints, ngroups, leading all-DNU groups, final all-DNU group, suppress
    (2, 8, 1, True, True),
    (3, 10, 3, True, False),
    (2, 6, 0, True, True),
    (2, 5, 2, False, True),
    (1, 4, 2, True, True),  # one group left: no fit
]


@pytest.mark.jwst
@pytest.mark.parametrize("case", CASES)
def test_miri_fit_matches_stcal(case):
    nints, ngroups, lead, trail, suppress = case
    arrays, dark, timing = _miri_case(sum(case), nints, ngroups, lead, trail)
    params = RampFit(suppress_one_group=suppress)
    groups = ramp_fit.miri_groups(jump.all_dnu_planes(arrays[1]), params)
    theirs = stcal_fit(arrays, params, timing, dark=dark, instrument="MIRI")
    if groups is None:
        assert theirs is None
        return
    before = [a.copy() for a in arrays]
    ours = ramp_fit.fit_ramps(*arrays, params, average_dark_current=dark, groups=groups, **timing)
    for a, b in zip(before, arrays, strict=True):
        assert a.tobytes() == b.tobytes()
    _assert_matches(ours.rateints, theirs[0], "rateints")
    _assert_matches(ours.rate, theirs[1], "rate")


@pytest.mark.parametrize("case", CASES[:4])
def test_miri_fit_spec_vs_fast(case):
    nints, ngroups, lead, trail, suppress = case
    arrays, dark, timing = _miri_case(sum(case), nints, ngroups, lead, trail)
    params = RampFit(suppress_one_group=suppress)
    groups = ramp_fit.miri_groups(jump.all_dnu_planes(arrays[1]), params)
    data, gdq, pdq, gain, rn = arrays
    run_both_fit(data, gdq, pdq, gain, rn, dark, params=params, groups=groups, **timing)


@pytest.mark.parametrize("case", CASES[:4])
def test_miri_fit_kernel(kernels, case):
    nints, ngroups, lead, trail, suppress = case
    arrays, dark, timing = _miri_case(sum(case), nints, ngroups, lead, trail)
    params = RampFit(suppress_one_group=suppress)
    groups = ramp_fit.miri_groups(jump.all_dnu_planes(arrays[1]), params)
    want = ramp_fit.fit_ramps(*arrays, params, average_dark_current=dark, groups=groups, **timing)
    dev = [kernels.put(np.ascontiguousarray(a)) for a in (*arrays, dark)]
    got = kramp_fit.fit_ramps(
        kernels, *dev[:5], params, average_dark_current=dev[5], groups=groups, **timing
    )
    for prod in ("rateints", "rate"):
        for name in ramp_fit.RateProduct._fields:
            a = np.asarray(kernels.get(getattr(getattr(got, prod), name)))
            b = getattr(getattr(want, prod), name)
            assert a.dtype == b.dtype and a.shape == b.shape, (prod, name)
            same = (a == b) | (np.isnan(a) & np.isnan(b)) if a.dtype.kind == "f" else a == b
            assert same.all(), (prod, name, np.argwhere(~same)[:5])
