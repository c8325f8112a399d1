"""The MIRI flagging steps firstframe, lastframe, reset and rscd (tsogpu/algorithms): hand-built
pixels for each rule, jwst 3.0's own functions as the oracle on the same arrays (marked
``jwst``), and each kernel against NumPy bit for bit (``kernels``: host build, and the GPU where
present)."""

from types import SimpleNamespace

import numpy as np
import pytest

from tsogpu import dq
from tsogpu.algorithms import firstframe, lastframe, reset, rscd
from tsogpu.launchers import firstframe as kfirstframe
from tsogpu.launchers import lastframe as klastframe
from tsogpu.launchers import reset as kreset
from tsogpu.launchers import rscd as krscd

F32 = np.float32
DNU = np.uint8(dq.DO_NOT_USE)
SAT = np.uint8(dq.SATURATED)
JUMP = np.uint8(dq.JUMP_DET)
FLUX = np.uint32(dq.PIXEL["FLUX_ESTIMATED"])

# inf - inf in the reset subtraction
pytestmark = pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")


def _ramp(nints, ngroups, ny=1, nx=1):
    return np.zeros((nints, ngroups, ny, nx), np.uint8), np.zeros((ny, nx), np.uint32)


def _saturate_from(gdq, integ, group, y=0, x=0):
    """SATURATED from ``group`` on, as the saturation step leaves a ramp."""
    gdq[integ, group:, y, x] |= SAT


def _random_dq(rng, shape, sat_frac=0.3):
    """Random GROUPDQ (low bits, no SAT) with monotonic SATURATED ramps, and random PIXELDQ."""
    nints, ngroups, ny, nx = shape
    gdq = (rng.integers(0, 256, shape) & ~np.int64(SAT) & 0x0D).astype(np.uint8)
    first_sat = rng.integers(0, ngroups + 1, (nints, 1, ny, nx))
    first_sat[rng.random((nints, 1, ny, nx)) > sat_frac] = ngroups
    gdq |= np.where(np.arange(ngroups)[None, :, None, None] >= first_sat, SAT, 0).astype(np.uint8)
    pdq = rng.integers(0, 2**32, (ny, nx), dtype=np.uint64).astype(np.uint32)
    return gdq, pdq


# ---------------------------------------------------------------------------------------------
# firstframe


def test_firstframe_flags_group_0_of_every_integration():
    gdq, pdq = _ramp(2, 5)
    gdq[1, 0] = JUMP
    out, out_pdq = firstframe.flag_first_groups(gdq, pdq, bright_use_group1=False)
    assert (out[:, 0] & DNU).all() and out[1, 0, 0, 0] == JUMP | DNU
    assert not (out[:, 1:] & DNU).any()
    assert (out_pdq == pdq).all()
    assert not (gdq & DNU).any()  # input untouched


def test_firstframe_bright_use_group1_keeps_group_0_where_group_2_saturates():
    gdq, pdq = _ramp(3, 6, 1, 2)
    _saturate_from(gdq, 1, 2, x=0)  # integration 1, pixel 0: group 2 saturated
    _saturate_from(gdq, 2, 4, x=0)  # integration 2: group 2 not saturated
    _saturate_from(gdq, 0, 3, x=1)
    out, out_pdq = firstframe.flag_first_groups(gdq, pdq)
    assert out[1, 0, 0, 0] & DNU == 0  # kept
    assert out[0, 0, 0, 0] & DNU and out[2, 0, 0, 0] & DNU
    assert (out[:, 0, 0, 1] & DNU).all()
    assert out_pdq[0, 0] == FLUX and out_pdq[0, 1] == 0


@pytest.mark.parametrize(("ngroups", "applies"), [(3, False), (4, True)])
def test_firstframe_needs_more_than_3_groups(ngroups, applies):
    assert firstframe.applies(ngroups) is applies
    gdq, pdq = _ramp(1, ngroups)
    out, _ = firstframe.flag_first_groups(gdq, pdq)
    assert bool(out[0, 0, 0, 0] & DNU) is applies


def test_firstframe_option_flags_n_groups_and_tests_group_n_plus_1():
    gdq, pdq = _ramp(1, 6, 1, 2)
    _saturate_from(gdq, 0, 3, x=1)  # group n + 1 = 3 saturated: kept
    out, out_pdq = firstframe.flag_first_groups(gdq, pdq, ngroups=2)
    assert (out[0, :2, 0, 0] & DNU).all() and not (out[0, 2:, 0, 0] & DNU).any()
    assert not (out[0, :, 0, 1] & DNU).any() and out_pdq[0, 1] == FLUX
    assert firstframe.applies(5, 2) and not firstframe.applies(4, 2)


# ---------------------------------------------------------------------------------------------
# lastframe


@pytest.mark.parametrize(("ngroups", "applies"), [(2, False), (3, True)])
def test_lastframe_flags_the_final_group_of_more_than_2(ngroups, applies):
    assert lastframe.applies(ngroups) is applies
    gdq, _ = _ramp(2, ngroups)
    out = lastframe.flag_last_groups(gdq)
    assert bool((out[:, -1] & DNU).all()) is applies
    assert not (out[:, :-1] & DNU).any()


def test_lastframe_option_flags_n_groups():
    gdq, _ = _ramp(1, 5)
    out = lastframe.flag_last_groups(gdq, ngroups=2)
    assert (out[0, :, 0, 0] & DNU).tolist() == [0, 0, 0, 1, 1]
    assert lastframe.applies(4, 2) and not lastframe.applies(3, 2)


# ---------------------------------------------------------------------------------------------
# reset


def _reset_case(rng, nints=5, ngroups=6, reset_nints=2, reset_ngroups=4, ny=3, nx=4):
    data = rng.normal(1000, 50, (nints, ngroups, ny, nx)).astype(F32)
    ref = rng.normal(5, 2, (reset_nints, reset_ngroups, ny, nx)).astype(F32)
    ref[0, -1, 0, 0] = np.nan
    ref_dq = rng.integers(0, 2**32, (ny, nx), dtype=np.uint64).astype(np.uint32)
    pdq = rng.integers(0, 2**32, (ny, nx), dtype=np.uint64).astype(np.uint32)
    return data, pdq, ref, ref_dq


def test_reset_uses_the_last_reference_integration_past_its_nints():
    rng = np.random.default_rng(1)
    data, pdq, ref, ref_dq = _reset_case(rng)
    out, out_pdq = reset.subtract_reset(data, pdq, ref, ref_dq, int_start=0)
    assert (out[0, :4] == data[0, :4] - np.where(np.isnan(ref[0]), F32(0), ref[0])).all()
    assert out[0, 3, 0, 0] == data[0, 3, 0, 0]  # NaN counts as 0
    for i in (1, 2, 4):
        assert (out[i, :4] == data[i, :4] - ref[1]).all()
    assert (out[:, 4:] == data[:, 4:]).all()  # groups past the reference's NGROUPS
    assert (out_pdq == pdq | ref_dq).all()


def test_reset_chunks_equal_the_whole():
    rng = np.random.default_rng(2)
    data, pdq, ref, ref_dq = _reset_case(rng, nints=7, reset_nints=3)
    whole, whole_pdq = reset.subtract_reset(data, pdq, ref, ref_dq, int_start=10)
    want, _ = reset.subtract_reset(data[:0], pdq, ref, ref_dq, 0)
    assert want.shape[0] == 0
    for a, b in ((0, 1), (1, 4), (4, 7)):
        part, part_pdq = reset.subtract_reset(data[a:b], pdq, ref, ref_dq, int_start=10 + a)
        assert part.tobytes() == whole[a:b].tobytes()
        assert (part_pdq == whole_pdq).all()
    # a segment starting at exposure integration 1: its data[0] uses reference integration 1
    seg, _ = reset.subtract_reset(data[:2], pdq, ref, ref_dq, int_start=1)
    assert (seg[0, :4] == data[0, :4] - ref[1]).all() and (seg[1, :4] == data[1, :4] - ref[2]).all()


def test_reset_more_reference_groups_than_science():
    rng = np.random.default_rng(3)
    data, pdq, ref, ref_dq = _reset_case(rng, ngroups=3, reset_ngroups=5)
    out, _ = reset.subtract_reset(data, pdq, ref, ref_dq, 0)
    assert (out[3] == data[3] - ref[1, :3]).all()


# ---------------------------------------------------------------------------------------------
# rscd: the host rules


def _table(rows, skip1=True, text="U"):
    dtype = [("subarray", f"{text}17"), ("readpatt", f"{text}12"), ("group_skip", "<i4")]
    if skip1:
        dtype.insert(2, ("group_skip1", "<i4"))
        return np.array([(s, r, a, b) for s, r, a, b in rows], dtype=dtype)
    return np.array([(s, r, b) for s, r, _, b in rows], dtype=dtype)


ROWS = [
    ("FULL", "FASTR1", 3, 2),
    ("SLITLESSPRISM", "FASTR1", 4, 3),
    ("SLITLESSPRISM", "SLOWR1", 1, 1),
]


def _exposure(ngroups, nints=10, subarray="SLITLESSPRISM", readpatt="FASTR1"):
    return SimpleNamespace(ngroups=ngroups, nints=nints, subarray=subarray, readpatt=readpatt)


@pytest.mark.parametrize(
    ("ngroups", "want"),
    [(2, None), (3, (0, 0)), (4, (1, 1)), (5, (1, 1)), (6, (3, 3)), (7, (4, 3)), (40, (4, 3))],
)
def test_rscd_skip_groups_rules(ngroups, want):
    assert rscd.skip_groups(_table(ROWS), _exposure(ngroups)) == want


def test_rscd_skip_groups_table_lookup():
    table = _table(ROWS)
    assert rscd.skip_groups(table, _exposure(40, subarray="SUBPRISM")) == (4, 3)
    assert rscd.skip_groups(table, _exposure(40, readpatt="SLOWR1")) == (1, 1)
    assert rscd.skip_groups(table, _exposure(40, subarray="SUB64")) is None
    assert rscd.skip_groups(_table(ROWS, text="S"), _exposure(40)) == (4, 3)
    columns = {name: _table(ROWS)[name] for name in _table(ROWS).dtype.names}
    assert rscd.skip_groups(columns, _exposure(40)) == (4, 3)
    # an old file without group_skip1: the first integration skips 1
    assert rscd.skip_groups(_table(ROWS, skip1=False), _exposure(40)) == (1, 3)


# ---------------------------------------------------------------------------------------------
# rscd: the flags


def test_rscd_first_integration_and_the_rest():
    gdq, pdq = _ramp(3, 10)
    out, out_pdq = rscd.flag_rscd(gdq, pdq, 4, 2, int_start=0)
    assert (out[0, :, 0, 0] & DNU).tolist() == [1] * 4 + [0] * 6
    assert (out[1, :, 0, 0] & DNU).tolist() == [1] * 2 + [0] * 8
    assert (out[2, :, 0, 0] & DNU).tolist() == [1] * 2 + [0] * 8
    assert out_pdq[0, 0] == 0
    later, _ = rscd.flag_rscd(gdq, pdq, 4, 2, int_start=5)  # no first integration here
    assert (later[:, :, 0, 0] & DNU).sum(axis=1).tolist() == [2, 2, 2]


@pytest.mark.parametrize(
    ("first_sat", "skip", "flux"),
    [
        (None, 3, False),  # no saturation
        (5, 3, False),  # group skip + 2: two usable groups left anyway
        (4, 2, True),  # backed off by one
        (3, 1, True),
        (2, 0, True),
        (1, 0, True),  # floor at 0
        (0, 3, False),  # saturated from group 0: cannot be recovered, not lowered
    ],
)
def test_rscd_saturation_backs_off(first_sat, skip, flux):
    gdq, pdq = _ramp(2, 10)
    if first_sat is not None:
        _saturate_from(gdq, 1, first_sat)
    out, out_pdq = rscd.flag_rscd(gdq, pdq, 3, 3, int_start=0)
    assert (out[1, :, 0, 0] & DNU).tolist() == [1] * skip + [0] * (10 - skip)
    assert (out[0, :, 0, 0] & DNU).tolist() == [1] * 3 + [0] * 7
    assert bool(out_pdq[0, 0] & FLUX) is flux


def test_rscd_chunks_equal_the_whole():
    rng = np.random.default_rng(4)
    gdq, pdq = _random_dq(rng, (6, 9, 4, 5))
    for int_start in (0, 3):
        whole, whole_pdq = rscd.flag_rscd(gdq, pdq, 4, 2, int_start)
        flux = np.zeros_like(pdq)
        for a, b in ((0, 1), (1, 3), (3, 6)):
            part, part_pdq = rscd.flag_rscd(gdq[a:b], pdq, 4, 2, int_start + a)
            assert part.tobytes() == whole[a:b].tobytes()
            flux |= part_pdq
        assert (flux == whole_pdq).all()


def test_rscd_refuses_a_skip_without_room():
    gdq, pdq = _ramp(2, 5)
    with pytest.raises(ValueError, match="groups to skip"):
        rscd.flag_rscd(gdq, pdq, 4, 1, int_start=0)
    rscd.flag_rscd(gdq, pdq, 4, 1, int_start=1)  # skip_int1 is not used there


# ---------------------------------------------------------------------------------------------
# jwst 3.0 as the oracle, on the same arrays


def _ramp_model(gdq, pdq, data=None, ngroups_meta=None, nints=None, int_start=None):
    from stdatamodels.jwst import datamodels

    shape = gdq.shape
    model = datamodels.RampModel(shape)
    model.data = np.zeros(shape, F32) if data is None else data.copy()
    model.groupdq = gdq.copy()
    model.pixeldq = pdq.copy()
    model.meta.instrument.name = "MIRI"
    model.meta.instrument.detector = "MIRIMAGE"
    model.meta.exposure.ngroups = shape[1] if ngroups_meta is None else ngroups_meta
    model.meta.exposure.nints = shape[0] if nints is None else nints
    model.meta.exposure.readpatt = "FASTR1"
    model.meta.subarray.name = "SLITLESSPRISM"
    if int_start is not None:
        model.meta.exposure.integration_start = int_start + 1
        model.meta.exposure.integration_end = int_start + shape[0]
    return model


@pytest.mark.jwst
@pytest.mark.parametrize("bright", [False, True])
@pytest.mark.parametrize("ngroups", [3, 4, 7])
def test_firstframe_and_lastframe_oracle(bright, ngroups):
    from jwst.firstframe import firstframe_sub
    from jwst.lastframe import lastframe_sub

    rng = np.random.default_rng(ngroups)
    gdq, pdq = _random_dq(rng, (4, ngroups, 6, 7))
    model = firstframe_sub.do_correction(_ramp_model(gdq, pdq), bright_use_group1=bright)
    out, out_pdq = firstframe.flag_first_groups(gdq, pdq, bright_use_group1=bright)
    assert (out == model.groupdq).all() and (out_pdq == model.pixeldq).all()
    status = "COMPLETE" if firstframe.applies(ngroups) else "SKIPPED"
    assert model.meta.cal_step.firstframe == status

    model = lastframe_sub.do_correction(_ramp_model(gdq, pdq))
    assert (lastframe.flag_last_groups(gdq) == model.groupdq).all()
    status = "COMPLETE" if lastframe.applies(ngroups) else "SKIPPED"
    assert model.meta.cal_step.lastframe == status


@pytest.mark.jwst
@pytest.mark.parametrize(("int_start", "reset_shape"), [(None, (2, 4)), (3, (5, 8)), (0, (1, 6))])
def test_reset_oracle(int_start, reset_shape):
    from jwst.reset import reset_sub
    from stdatamodels.jwst import datamodels

    rng = np.random.default_rng(5)
    data, pdq, ref, ref_dq = _reset_case(rng, 4, 6, *reset_shape)
    ramp = _ramp_model(
        np.zeros(data.shape, np.uint8), pdq, data, nints=20 if int_start else None,
        int_start=int_start,
    )  # fmt: skip
    reset_model = datamodels.ResetModel(data=ref.copy(), dq=ref_dq.copy())
    reset_model.meta.exposure.nints, reset_model.meta.exposure.ngroups = reset_shape
    model = reset_sub.do_correction(ramp, reset_model)
    out, out_pdq = reset.subtract_reset(data, pdq, ref, ref_dq, int_start or 0)
    assert out.tobytes() == model.data.tobytes()
    assert (out_pdq == model.pixeldq).all()


@pytest.mark.jwst
@pytest.mark.parametrize(
    ("ngroups", "nints", "int_start"),
    [(2, 3, None), (3, 3, None), (5, 4, None), (9, 1, None), (12, 5, None), (12, 4, 0),
     (12, 4, 6), (40, 3, 2)],
)  # fmt: skip
def test_rscd_oracle(ngroups, nints, int_start):
    from jwst.rscd import rscd_sub
    from stdatamodels.jwst import datamodels

    rng = np.random.default_rng(ngroups * 100 + nints)
    gdq, pdq = _random_dq(rng, (nints, ngroups, 8, 9), sat_frac=0.5)
    table = _table(ROWS)
    rscd_model = datamodels.RSCDModel()
    rscd_model.rscd_group_skip_table = table
    exp_nints = nints if int_start is None else int_start + nints + 5
    model = rscd_sub.do_correction(
        _ramp_model(gdq, pdq, nints=exp_nints, int_start=int_start), rscd_model
    )
    skips = rscd.skip_groups(table, _exposure(ngroups, exp_nints))
    if skips is None:
        assert model.meta.cal_step.rscd == "SKIPPED"
        return
    assert model.meta.cal_step.rscd == "COMPLETE"
    out, out_pdq = rscd.flag_rscd(gdq, pdq, *skips, int_start=int_start or 0)
    assert (out == model.groupdq).all()
    assert (out_pdq == model.pixeldq).all()


# ---------------------------------------------------------------------------------------------
# the kernels against NumPy


def _same(kernels, got, want):
    got = np.asarray(kernels.get(got))
    assert got.dtype == want.dtype and got.shape == want.shape
    assert got.tobytes() == want.tobytes()


SHAPES = [(1, 4, 1, 1), (2, 5, 3, 1), (3, 9, 5, 7), (4, 12, 16, 3)]


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize(("n", "bright"), [(1, True), (1, False), (2, True)])
def test_firstframe_kernel(kernels, shape, n, bright):
    rng = np.random.default_rng(sum(shape) + n)
    gdq, pdq = _random_dq(rng, shape)
    got = kfirstframe.flag_first_groups(kernels, *map(kernels.put, (gdq, pdq)), n, bright)
    want = firstframe.flag_first_groups(gdq, pdq, n, bright)
    for g, w in zip(got, want, strict=True):
        _same(kernels, g, w)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("n", [1, 2, 3])
def test_lastframe_kernel(kernels, shape, n):
    gdq, _ = _random_dq(np.random.default_rng(sum(shape)), shape)
    got = klastframe.flag_last_groups(kernels, kernels.put(gdq), n)
    _same(kernels, got, lastframe.flag_last_groups(gdq, n))


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize(("reset_shape", "int_start"), [((2, 3), 0), ((3, 20), 1), ((1, 1), 7)])
def test_reset_kernel(kernels, shape, reset_shape, int_start):
    rng = np.random.default_rng(sum(shape))
    data, pdq, ref, ref_dq = _reset_case(rng, *shape[:2], *reset_shape, *shape[2:])
    for value in (np.nan, np.inf, -np.inf, -0.0, 1e-40):
        data[rng.random(data.shape) < 0.05] = F32(value)
        ref[rng.random(ref.shape) < 0.05] = F32(value)
    args = [kernels.put(a) for a in (data, pdq, ref, ref_dq)]
    got = kreset.subtract_reset(kernels, *args, int_start)
    want = reset.subtract_reset(data, pdq, ref, ref_dq, int_start)
    if kernels.name != "host":  # a GPU's NaN payloads may differ; the positions may not
        want = (np.where(np.isnan(want[0]), F32(np.nan), want[0]), want[1])
        got = (kernels.xp.where(kernels.xp.isnan(got[0]), F32(np.nan), got[0]), got[1])
    for g, w in zip(got, want, strict=True):
        _same(kernels, g, w)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize(
    ("skips", "int_start"), [((1, 1), 0), ((2, 1), 0), ((0, 2), 3), ((2, 0), 0)]
)
def test_rscd_kernel(kernels, shape, skips, int_start):
    rng = np.random.default_rng(sum(shape) + int_start)
    gdq, pdq = _random_dq(rng, shape, sat_frac=0.6)
    got = krscd.flag_rscd(kernels, kernels.put(gdq), kernels.put(pdq), *skips, int_start)
    want = rscd.flag_rscd(gdq, pdq, *skips, int_start)
    for g, w in zip(got, want, strict=True):
        _same(kernels, g, w)
    with pytest.raises(ValueError, match="groups to skip"):
        krscd.flag_rscd(kernels, kernels.put(gdq), kernels.put(pdq), shape[1], 0, 0)
