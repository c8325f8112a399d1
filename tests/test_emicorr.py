"""emicorr (tsogpu/algorithms/emicorr.py, emicorr_sequential.py; kernels/emicorr.cu): hand-built
cases, jwst 3.0 as the oracle, and the kernels against NumPy bit for bit."""

import types
import warnings

import numpy as np
import pytest

from tsogpu.algorithms import emicorr, emicorr_sequential
from tsogpu.launchers import emicorr as launchers
from tsogpu.segment import Exposure

FREQ = 390.625  # Hz: a period of 256 pixel clocks
ROWCLOCKS, FRAMECLOCKS = 28, 15904  # SLITLESSPRISM


def params(**kw):
    """jwst's defaults (tsogpu.config.EmiCorr, whose ``onthefly_corr_freq`` () is jwst's
    None), with ``kw`` changed."""
    p = dict(algorithm="joint", nints_to_phase=None, nbins=None, scale_reference=True,
             onthefly_corr_freq=(), use_n_cycles=3, fit_ints_separately=False)  # fmt: skip
    p.update(kw)
    return types.SimpleNamespace(**p)


def test_parameters_are_the_configs():
    from dataclasses import asdict

    from tsogpu.config import EmiCorr

    assert asdict(EmiCorr()) == vars(params())


def exposure(shape, readpatt="FASTR1", subarray="SLITLESSPRISM", instrument="MIRI", **kw):
    nints, ngroups, ny, nx = shape
    keys = dict(instrument=instrument, detector="MIRIMAGE", exp_type="MIR_LRS-SLITLESS",
                readpatt=readpatt, nints=nints, ngroups=ngroups, nframes=1, groupgap=0,
                tframe=0.159, tgroup=0.159, subarray=subarray, substrt1=1, substrt2=1,
                subsize1=nx, subsize2=ny, fastaxis=1, slowaxis=2, noutputs=4)  # fmt: skip
    keys.update(kw)
    return Exposure(**keys)


def reference(waves, subarray="SLITLESSPRISM", rowclocks=ROWCLOCKS, frameclocks=FRAMECLOCKS):
    """The plain EMICORR reference: {name: (frequency, phase amplitudes)} for FAST and SLOW."""
    names = list(waves)
    return {
        "frequencies": {
            n: {"frequency": f, "phase_amplitudes": np.asarray(w)} for n, (f, w) in waves.items()
        },
        "subarray_cases": {
            subarray: {
                "rowclocks": rowclocks,
                "frameclocks": frameclocks,
                "freqs": {"FAST": names, "SLOW": {"MIRIMAGE": names}},
            },
        },  # fmt: skip
    }


def sine_wave(n=128, phase=0.3):
    return np.sin(2 * np.pi * np.arange(n) / n + phase)


def read_times(shape, rowclocks=ROWCLOCKS, frameclocks=FRAMECLOCKS):
    """Each read's time in pixel clocks since the first (FASTR1), per (int, group, y, x)."""
    nints, ngroups, ny, nx = shape
    frame = ny * rowclocks + (1024 - ny) * 7
    i, g = np.meshgrid(np.arange(nints), np.arange(ngroups), indexing="ij")
    base = (i * ngroups + g) * frame + i * frameclocks
    within = np.arange(ny)[:, None] * rowclocks + np.arange(nx)[None, :] // 4
    return base[:, :, None, None] + within[None, None]


def ramps(shape, amp=3.0, freq=FREQ, noise=2.0, seed=0):
    """(with EMI, without): linear ramps plus a sine of ``amp`` DN at ``freq`` on the reads."""
    rng = np.random.default_rng(seed)
    nints, ngroups, ny, nx = shape
    slope = rng.uniform(5, 50, (ny, nx))
    clean = 1000 + slope * np.arange(ngroups)[None, :, None, None] * np.ones((nints, 1, 1, 1))
    clean = clean + rng.normal(0, noise, shape)
    period = 1 / freq / 10e-6
    emi = amp * np.sin(2 * np.pi * read_times(shape) / period + 0.7)
    return (clean + emi).astype(np.float32), clean.astype(np.float32)


SHAPE = (3, 10, 64, 72)


# ---- hand-built ---------------------------------------------------------------------------


@pytest.mark.parametrize("separately", [False, True])
def test_joint_removes_a_sine_at_its_frequency(separately):
    data, clean = ramps(SHAPE, noise=0.0)
    pdq = np.zeros(SHAPE[2:], np.uint32)
    out = emicorr.correct_emi(
        data, None, pdq, exposure(SHAPE), params(fit_ints_separately=separately),
        reference({"Hz390": (FREQ, sine_wave())}),
    )  # fmt: skip
    before = np.std(data.astype(np.float64) - clean)
    after = np.std(out.astype(np.float64) - clean)
    assert before > 2.0
    # what is left is a ramp offset and the 128-sample waveform's interpolation error
    resid = out.astype(np.float64) - clean
    resid -= resid.mean(axis=1, keepdims=True)
    assert np.std(resid) < 0.05 * before and after < before
    assert out.dtype == np.float32 and not np.shares_memory(out, data)


def test_sequential_on_the_fly_removes_a_sine():
    shape = (3, 12, 64, 72)
    data, clean = ramps(shape, noise=0.0)
    out = emicorr.correct_emi(
        data, None, np.zeros(shape[2:], np.uint32), exposure(shape),
        params(algorithm="sequential", onthefly_corr_freq=(FREQ,)), None,
    )  # fmt: skip
    resid = out.astype(np.float64) - clean
    resid -= resid.mean(axis=1, keepdims=True)
    assert np.std(resid) < 0.3 * np.std(data.astype(np.float64) - clean)


def test_flat_data_is_unchanged():
    data = np.ones(SHAPE, np.float32)
    out = emicorr.correct_emi(
        data, None, np.zeros(SHAPE[2:], np.uint32), exposure(SHAPE), params(),
        reference({"Hz390": (FREQ, sine_wave())}),
    )  # fmt: skip
    np.testing.assert_array_equal(out, data)


@pytest.mark.parametrize(
    "case",
    ["nircam", "readpatt", "two_groups", "no_reference", "no_case", "no_frequency"],
)
def test_jwst_skips(case):
    shape = (1, 2 if case == "two_groups" else 5, 20, 20)
    exp = exposure(shape)
    ref = reference({"Hz390": (FREQ, sine_wave())})
    if case == "nircam":
        exp = exposure(shape, instrument="NIRCAM")
    elif case == "readpatt":
        exp = exposure(shape, readpatt="ANY")
    elif case == "no_reference":
        ref = None
    elif case == "no_case":
        exp = exposure(shape, subarray="SUB64")
    elif case == "no_frequency":
        ref["subarray_cases"]["SLITLESSPRISM"]["freqs"]["FAST"] = []
    data = np.ones(shape, np.float32)
    assert (
        emicorr.correct_emi(data, None, np.zeros((20, 20), np.uint32), exp, params(), ref) is None
    )


def picked(ref, exposure):
    """``ref`` as tsogpu.io.reffiles gives an EMICORR file: the exposure's case picked
    (``param``), the waveforms by name (``arrays``)."""
    case = emicorr.subarray_case(ref, exposure.subarray, exposure.readpatt, exposure.detector)
    if case is None:
        param = {"subname": None, "rowclocks": None, "frameclocks": None, "frequency_names": ()}
        return types.SimpleNamespace(param=dict(param, frequencies=()), arrays={})
    rowclocks, frameclocks, names = case
    freqs = ref["frequencies"]
    param = {"subname": exposure.subarray, "rowclocks": rowclocks, "frameclocks": frameclocks,
             "frequency_names": tuple(names),
             "frequencies": tuple(freqs[n]["frequency"] for n in names)}  # fmt: skip
    return types.SimpleNamespace(
        param=param, arrays={n: freqs[n]["phase_amplitudes"] for n in names}
    )


def test_a_picked_case_is_the_whole_reference():
    data, _ = ramps(SHAPE)
    pdq = np.zeros(SHAPE[2:], np.uint32)
    ref = reference({"Hz390": (FREQ, sine_wave()), "Hz218": (218.52055, sine_wave(256))})
    exp = exposure(SHAPE)
    whole = emicorr.correct_emi(data, None, pdq, exp, params(), ref)
    np.testing.assert_array_equal(
        emicorr.correct_emi(data, None, pdq, exp, params(), picked(ref, exp)), whole
    )
    other = exposure(SHAPE, subarray="SUB64")
    assert emicorr.correct_emi(data, None, pdq, other, params(), picked(ref, other)) is None


def test_configuration():
    ref = reference({"a": (10.0, [1.0] * 8), "b": (390.625, [2.0] * 8)}, subarray="FULL_SLOW")
    ref["subarray_cases"]["FULL_SLOW"]["freqs"]["SLOW"] = {"MIRIMAGE": ["b"], "MIRIFULONG": ["a"]}
    shape = (1, 5, 8, 8)
    cfg = emicorr.configure(exposure(shape, "SLOWR1", "FULL"), 5, params(), ref)
    assert [f.name for f in cfg.frequencies] == ["b"] and cfg.algorithm == "joint"
    assert cfg.nsamples == 9 and (cfg.rowclocks, cfg.frameclocks) == (ROWCLOCKS, FRAMECLOCKS)
    assert emicorr.configure(exposure(shape, "FASTR1", "FULL"), 5, params(), ref) is None
    # on the fly: jwst's clocks, sequential, the reference ignored
    fly = emicorr.configure(
        exposure(shape, "FAST", "FULL"), 5, params(onthefly_corr_freq=(218.3,)), ref
    )
    assert fly.algorithm == "sequential" and (fly.rowclocks, fly.frameclocks) == (271, 277504)
    assert [f.name for f in fly.frequencies] == ["218.3"] and fly.frequencies[0].wave is None
    assert emicorr.configure(exposure(shape, "SLOW"), 5, params(), None) is None


def test_group_std_and_median_as_numpy():
    rng = np.random.default_rng(3)
    for shape in [(2, 17, 9, 12), (1, 3, 5, 8), (2, 2, 1, 1)]:
        d = (rng.normal(size=shape) * 100 + 1000).astype(np.float32)
        std = emicorr.group_std(d)
        np.testing.assert_array_equal(std, np.std(d, axis=1))
        for v in (std, std[:1], std.ravel()[:1]):
            np.testing.assert_array_equal(emicorr.median_f32(v), np.median(v))
    v = np.array([1, np.nan, 2], np.float32)
    assert np.isnan(emicorr.median_f32(v))


def test_spline_is_scipys_cubic_interpolation():
    interpolate = pytest.importorskip("scipy.interpolate")
    rng = np.random.default_rng(1)
    for n in (2, 5, 64):
        w = rng.normal(size=n)
        spline, x = emicorr.wave_spline(w)
        f = interpolate.interp1d(x, np.r_[w[-1], w, w[0]], kind="cubic")
        p = np.r_[rng.uniform(0, 1, 2000), x[1:-1], 0.0]
        np.testing.assert_allclose(emicorr.spline_eval(spline, p), f(p), rtol=0, atol=1e-13)


def test_sequential_phases_count_across_integrations():
    shape = (2, 3, 4, 8)
    period = 256.0
    ph = emicorr_sequential.read_phases(shape, ROWCLOCKS, FRAMECLOCKS, 1, period, "FASTR1", 0)
    t = read_times(shape)[..., ::4]
    np.testing.assert_array_equal(ph, (t / period) % 1)
    quirk = emicorr_sequential.read_phases(shape, ROWCLOCKS, FRAMECLOCKS, 1, period, "FASTR1", 258)
    np.testing.assert_array_equal(quirk[..., :-1], ph[..., :-1])
    np.testing.assert_array_equal(quirk[..., -1], ((t[..., -1] + 2**32 + 3) / period) % 1)


def test_sigma_clipped_mean_is_astropys():
    stats = pytest.importorskip("astropy.stats")
    rng = np.random.default_rng(2)
    for v in (
        rng.normal(size=1000),
        np.r_[rng.normal(size=300), 40.0, -35.0, np.nan],
        np.array([]),
    ):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            want = stats.sigma_clipped_stats(v)[0]
        got = emicorr_sequential.sigma_clipped_mean(v)
        assert (np.isnan(want) and np.isnan(got)) or got == want


# ---- jwst 3.0 as the oracle ---------------------------------------------------------------


def jwst_emicorr(data, pdq, exp, p, ref):
    """jwst's ``apply_emicorr`` on a RampModel of ``data`` and an EmiModel of ``ref``."""
    from jwst.emicorr import emicorr as jwst_emi
    from stdatamodels.jwst.datamodels import EmiModel, RampModel

    model = RampModel(data=data.copy(), pixeldq=pdq.copy())
    model.meta.instrument.name = exp.instrument
    model.meta.instrument.detector = exp.detector
    model.meta.subarray.name = exp.subarray
    model.meta.exposure.readpatt = exp.readpatt
    model.meta.subarray.xsize = exp.subsize1
    model.meta.subarray.xstart = exp.substrt1
    model.meta.exposure.nsamples = emicorr.samples_per_pixel(exp)
    emi = None
    if ref is not None:
        emi = EmiModel()
        emi.frequencies = ref["frequencies"]
        emi.subarray_cases = ref["subarray_cases"]
    pars = dict(vars(p))
    pars["onthefly_corr_freq"] = list(pars["onthefly_corr_freq"]) or None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = jwst_emi.apply_emicorr(model, emi, **pars)
    return None if out is None else out.data


ORACLE_CASES = {
    "joint": (SHAPE, "FASTR1", params()),
    "joint_separately": (SHAPE, "FASTR1", params(fit_ints_separately=True)),
    "joint_fast_few_groups": ((5, 4, 64, 72), "FAST", params()),
    "joint_slow": ((2, 6, 40, 72), "SLOWR1", params()),
    "sequential": ((3, 12, 64, 72), "FASTR1", params(algorithm="sequential")),
    "sequential_options": (
        (4, 10, 64, 72), "FASTR1",
        params(algorithm="sequential", nints_to_phase=2, nbins=40, scale_reference=False),
    ),
    "sequential_cycles": (
        (3, 10, 64, 72), "FAST", params(algorithm="sequential", use_n_cycles=None),
    ),
    "on_the_fly": ((3, 10, 64, 72), "FASTR1", params(onthefly_corr_freq=(218.52055,))),
    "on_the_fly_full_last_column": (
        (2, 10, 32, 72), "FAST", params(onthefly_corr_freq=(FREQ,)),
    ),
}  # fmt: skip


@pytest.mark.jwst
@pytest.mark.parametrize("case", list(ORACLE_CASES))
def test_equals_jwst(case):
    pytest.importorskip("jwst")
    shape, readpatt, p = ORACLE_CASES[case]
    data, _ = ramps(shape)
    pdq = np.zeros(shape[2:], np.uint32)
    pdq[5, 7] = 1
    waves = {"Hz390": (FREQ, sine_wave()), "Hz218": (218.52055, sine_wave(256, 1.1) * 0.5)}
    if case == "sequential_options":  # float32 waveforms: jwst's look-up table stays float32
        waves = {n: (f, w.astype(np.float32)) for n, (f, w) in waves.items()}
    ref = reference(waves)
    exp = exposure(shape, readpatt)
    if case == "on_the_fly_full_last_column":  # FULL: SUBSIZE1 1032 puts colstop at 258
        exp = exposure(shape, readpatt, subarray="FULL", subsize1=1032)
    if case.startswith("joint_slow"):
        data[0, :, 3, 9] = np.nan  # a NaN pixel: its std is NaN, never good
    want = jwst_emicorr(data, pdq, exp, p, ref)
    got = emicorr.correct_emi(data, None, pdq, exp, p, ref)
    assert want is not None and got is not None
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=0)
    assert np.mean(got == want) > 0.999  # bit for bit, but for a rounding where a spline differs


@pytest.mark.jwst
def test_plain_reference_from_an_asdf_file(tmp_path):
    asdf = pytest.importorskip("asdf")
    datamodels = pytest.importorskip("stdatamodels.jwst.datamodels")
    ref = reference({"Hz390": (FREQ, sine_wave()), "Hz10": (10.039216, sine_wave(64))})
    model = datamodels.EmiModel()
    model.frequencies = ref["frequencies"]
    model.subarray_cases = ref["subarray_cases"]
    model.meta.reftype = "emicorr"
    model.meta.author = model.meta.description = "test"
    model.meta.pedigree = "GROUND"
    model.meta.useafter = "2024-01-01T00:00:00"
    path = tmp_path / "emicorr.asdf"
    model.save(path)
    with datamodels.EmiModel(path) as opened, asdf.open(path) as af:
        plains = [emicorr.plain_reference(opened.instance), emicorr.plain_reference(af.tree)]
    for plain in plains:  # copies: the files are closed
        assert plain["subarray_cases"] == ref["subarray_cases"]
        for name, entry in ref["frequencies"].items():
            got = plain["frequencies"][name]
            assert got["frequency"] == entry["frequency"]
            assert isinstance(got["phase_amplitudes"], np.ndarray)
            np.testing.assert_array_equal(got["phase_amplitudes"], entry["phase_amplitudes"])


# ---- the kernels against NumPy ------------------------------------------------------------


def bits(a):
    a = a.get() if hasattr(a, "get") else np.asarray(a)
    return a.view(np.uint32)


@pytest.mark.parametrize(
    "case", ["joint", "separately", "two_frequencies", "nan_and_flags", "sequential"]
)
def test_kernels_equal_numpy(kernels, case):
    shape = (3, 8, 48, 72)
    data, _ = ramps(shape, seed=5)
    pdq = np.zeros(shape[2:], np.uint32)
    waves = {"Hz390": (FREQ, sine_wave())}
    p = params()
    if case == "separately":
        p = params(fit_ints_separately=True)
    if case == "two_frequencies":
        waves["Hz218"] = (218.52055, sine_wave(256, 1.1) * 0.5)
    if case == "nan_and_flags":
        data[1, :, 4, 5] = np.nan
        data[2, 3, 10, 11] = np.inf
        pdq[::7, ::5] = 4
    if case == "sequential":
        p = params(algorithm="sequential")
    exp = exposure(shape)
    ref = reference(waves)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        want = emicorr.correct_emi(data, None, pdq, exp, p, ref)
    if case == "two_frequencies":  # the Reference as the backend holds it: arrays on the device
        ref = picked(ref, exp)
        ref.arrays = {n: kernels.put(a) for n, a in ref.arrays.items()}
    got = launchers.correct_emi(kernels, kernels.put(data), None, kernels.put(pdq), exp, p, ref)
    np.testing.assert_array_equal(bits(got), bits(want))


def test_kernel_pieces_equal_numpy(kernels):
    rng = np.random.default_rng(7)
    shape = (2, 5, 16, 24)
    data = (rng.normal(size=shape) * 10 + 100).astype(np.float32)
    data[0, 2, 3, 4] = -0.0
    pdq = (rng.uniform(size=shape[2:]) < 0.1).astype(np.uint32)
    std = emicorr.group_std(data)
    np.testing.assert_array_equal(bits(launchers.group_std(kernels, kernels.put(data))), bits(std))
    assert launchers.median_f32(kernels, kernels.put(std)) == emicorr.median_f32(std)
    phase = emicorr.read_phases(16, 6, ROWCLOCKS, 1, 457.62287)
    labels = emicorr.phase_bins(phase, 37, 24)
    thr = np.float32(2) * emicorr.median_f32(std)
    want = emicorr.bin_sums(data, std, thr, pdq, labels, 37)
    got = launchers.bin_sums(
        kernels, kernels.put(data), kernels.put(std), thr, kernels.put(pdq), labels, 37
    )
    for g, w in zip(got, want, strict=True):
        np.testing.assert_array_equal(g.view(np.uint64), w.view(np.uint64))
    spline, _ = emicorr.wave_spline(sine_wave(37))
    ptc = np.array([-0.013, 0.999])  # a negative phase wraps to [0, 1) as np.remainder does
    amps = np.array([1.7, -0.4])
    want = emicorr.subtract_wave(data, phase, 0.37, ptc, amps, spline)
    got = launchers.subtract_wave(kernels, kernels.put(data), phase, 0.37, ptc, amps, spline)
    np.testing.assert_array_equal(bits(got), bits(want))
