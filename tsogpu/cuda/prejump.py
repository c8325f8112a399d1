"""Launchers of kernels/prejump.cu: the simple pre-jump steps and gain_scale on the device.

Each function takes the kernels object ``k`` (``tsogpu.cuda.loader.DeviceKernels``, or the
host build in the tests) first, then the parameters of the NumPy function of
``tsogpu/algorithms/`` it mirrors, and returns what that function returns, bit for bit. Arrays
are device arrays (``k.xp``); inputs are never modified. Host-side work is limited to scalars
(scale factors, read-pattern means, per-group dilution factors, frame counts).
"""

import numpy as np

from ..algorithms.saturation import mean_reads, read_pattern
from ..errors import InputError
from . import sources


def _dqv(k):
    return k.xp.asarray(sources.dq_values())


def _c(k, a, dtype):
    """``a`` as a C-contiguous device array of ``dtype`` (no copy when it already is one)."""
    return k.xp.ascontiguousarray(k.xp.asarray(a, dtype=dtype))


def _i64(v):
    return np.int64(v)


def _host(a):
    """``a`` as a NumPy array (copied back from the device where it is there)."""
    return a.get() if hasattr(a, "get") else np.asarray(a)


def _mul(k, a, scale):
    a = _c(k, a, np.float32)
    out = k.xp.empty(a.shape, dtype=np.float32)
    k.launch("tso_pj_mul_f32", a.size, a, out, np.float32(scale), _i64(a.size))
    return out


def _or_image(k, a, b):
    a = _c(k, a, np.uint32)
    b = _c(k, b, np.uint32)
    out = k.xp.empty(a.shape, dtype=np.uint32)
    k.launch("tso_pj_or_u32", a.size, a, b, out, _i64(a.size))
    return out


# ---------------------------------------------------------------------------------------------
# group_scale, dq_init


def group_scale(k, data, nframes, frame_divisor):
    """``tsogpu.algorithms.group_scale.group_scale`` (``needs_group_scale`` stays on the host)."""
    # float64 quotient on the host, rounded once to float32, as the NumPy function does
    return _mul(k, data, np.float32(float(frame_divisor) / nframes))


def dq_init(k, pixeldq, groupdq, mask_dq):
    """``tsogpu.algorithms.dq_init.dq_init``: (pixeldq | mask, groupdq | mask & DO_NOT_USE)."""
    mask = _c(k, mask_dq, np.uint32)
    new_pixeldq = _or_image(k, pixeldq, mask)
    gdq = _c(k, groupdq, np.uint8)
    new_groupdq = k.xp.empty(gdq.shape, dtype=np.uint8)
    k.launch(
        "tso_pj_dq_init_groups",
        gdq.size,
        gdq,
        mask,
        _dqv(k),
        new_groupdq,
        _i64(mask.size),
        _i64(gdq.size),
    )
    return new_pixeldq, new_groupdq


# ---------------------------------------------------------------------------------------------
# saturation


def flag_saturation(
    k,
    data,
    groupdq,
    pixeldq,
    sat_thresh,
    sat_dq,
    *,
    bias=None,
    zeroframe=None,
    nframes=1,
    n_pix_grow_sat=1,
    use_readpatt=True,
):
    """``tsogpu.algorithms.saturation.flag_saturation``.

    Launches: thresholds (per pixel); the forward pass (per integration and pixel) into a
    flags buffer; its growth (per sample) into the new GROUPDQ; with a read pattern, the
    partial-saturation mask (per sample) and its growth ORed in as DO_NOT_USE, then the group-2
    test (per integration and pixel); ZEROFRAME (per integration and pixel).
    """
    xp = k.xp
    data = _c(k, data, np.float32)
    groupdq = _c(k, groupdq, np.uint8)
    nints, ngroups, ny, nx = data.shape
    npix = ny * nx
    nsamp = data.size
    half = max(int(n_pix_grow_sat), 0)
    dqv = _dqv(k)

    # 1. thresholds, and the final pixeldq
    thresh = xp.empty((ny, nx), dtype=np.float32)
    no_check = xp.empty((ny, nx), dtype=np.uint8)
    new_pixeldq = xp.empty((ny, nx), dtype=np.uint32)
    k.launch(
        "tso_pj_sat_refs",
        npix,
        _c(k, sat_thresh, np.float32),
        _c(k, sat_dq, np.uint32),
        _c(k, pixeldq, np.uint32),
        dqv,
        thresh,
        no_check,
        new_pixeldq,
        _i64(npix),
    )

    # 2. forward pass, then the growth in a separate launch (it reads neighbours' flags)
    gdq = xp.empty(data.shape, dtype=np.uint8)
    flags = xp.empty(data.shape, dtype=np.uint8) if half > 0 else gdq
    k.launch(
        "tso_pj_sat_forward",
        nints * npix,
        data,
        groupdq,
        thresh,
        dqv,
        flags,
        _i64(ngroups),
        _i64(npix),
        _i64(nints * npix),
    )
    if half > 0:
        k.launch(
            "tso_pj_sat_grow_sat",
            nsamp,
            flags,
            dqv,
            gdq,
            _i64(ny),
            _i64(nx),
            _i64(half),
            _i64(nsamp),
        )
        del flags

    if use_readpatt:
        pattern = read_pattern(ngroups, nframes)
        mean_read = mean_reads(pattern)
        # 3. backward pass: dilution per group (float64, host), groups with dilution 1 skipped
        dilution = np.ones(ngroups, dtype=np.float64)
        active = np.zeros(ngroups, dtype=np.uint8)
        for g in range(ngroups - 1):
            dilution[g] = mean_read[g] / np.float64(pattern[g][-1])
            active[g] = dilution[g] != 1.0
        if active.any():
            partial = xp.empty(data.shape, dtype=np.uint8)
            k.launch(
                "tso_pj_sat_partial",
                nsamp,
                data,
                gdq,
                thresh,
                no_check,
                xp.asarray(dilution),
                xp.asarray(active),
                dqv,
                partial,
                _i64(ngroups),
                _i64(npix),
                _i64(nsamp),
            )
            k.launch(
                "tso_pj_sat_grow_partial",
                nsamp,
                partial,
                dqv,
                gdq,
                _i64(ny),
                _i64(nx),
                _i64(half),
                _i64(nsamp),
            )
            del partial
        # 4. group-2 test (a missing bias is 0.0)
        if ngroups > 2:
            if bias is None:
                bias32 = xp.zeros((ny, nx), dtype=np.float32)
            else:
                bias32 = _c(k, bias, np.float32)
            k.launch(
                "tso_pj_sat_group2",
                nints * npix,
                data,
                gdq,
                thresh,
                bias32,
                dqv,
                np.float64(mean_read[0]),
                np.float64(pattern[2][-1]),
                np.float32(len(pattern[1])),
                _i64(ngroups),
                _i64(npix),
                _i64(nints * npix),
            )

    # 5. ZEROFRAME
    new_zeroframe = None
    if zeroframe is not None:
        zf = _c(k, zeroframe, np.float32)
        new_zeroframe = xp.empty(zf.shape, dtype=np.float32)
        k.launch(
            "tso_pj_sat_zeroframe",
            zf.size,
            zf,
            thresh,
            new_zeroframe,
            _i64(ny),
            _i64(nx),
            _i64(half),
            _i64(zf.size),
        )
    return gdq, new_pixeldq, new_zeroframe


# ---------------------------------------------------------------------------------------------
# superbias


def subtract_superbias(k, data, pixeldq, bias, bias_dq, zeroframe=None, scale=None):
    """``tsogpu.algorithms.superbias.subtract_superbias``."""
    data = _c(k, data, np.float32)
    bias32 = _c(k, bias, np.float32)
    npix = bias32.size
    new_pixeldq = _or_image(k, pixeldq, bias_dq)
    new_data = k.xp.empty(data.shape, dtype=np.float32)
    if scale is None:
        k.launch("tso_pj_superbias", data.size, data, bias32, new_data, _i64(npix), _i64(data.size))
    else:
        scale = _c(k, scale, np.float32)
        k.launch(
            "tso_pj_superbias_scaled", data.size, data, bias32, scale, new_data, _i64(npix),
            _i64(data.size),
        )  # fmt: skip
    new_zeroframe = None
    if zeroframe is not None:
        zf = _c(k, zeroframe, np.float32)
        new_zeroframe = k.xp.empty(zf.shape, dtype=np.float32)
        if scale is None:
            k.launch(
                "tso_pj_superbias_zf", zf.size, zf, bias32, new_zeroframe, _i64(npix), _i64(zf.size)
            )
        else:
            k.launch(
                "tso_pj_superbias_zf_scaled", zf.size, zf, bias32, _c(k, scale[:, 0], np.float32),
                new_zeroframe, _i64(npix), _i64(zf.size),
            )  # fmt: skip
    return new_data, new_pixeldq, new_zeroframe


# ---------------------------------------------------------------------------------------------
# linearity


def prepare_coefficients(k, coeffs, lin_dq, pixeldq):
    """``tsogpu.algorithms.linearity.prepare_coefficients`` (one launch, per pixel)."""
    coeffs = _c(k, coeffs, np.float32)
    ncoeffs = coeffs.shape[0]
    npix = coeffs[0].size
    new_coeffs = k.xp.empty(coeffs.shape, dtype=np.float32)
    new_pixeldq = k.xp.empty(coeffs.shape[1:], dtype=np.uint32)
    k.launch(
        "tso_pj_lin_prepare",
        npix,
        coeffs,
        _c(k, lin_dq, np.uint32),
        _c(k, pixeldq, np.uint32),
        _dqv(k),
        new_coeffs,
        new_pixeldq,
        _i64(ncoeffs),
        _i64(npix),
    )
    return new_coeffs, new_pixeldq


def correct_linearity(
    k,
    data,
    groupdq,
    pixeldq,
    coeffs,
    lin_dq,
    *,
    zeroframe=None,
    inv_coeffs=None,
    nframes=1,
):
    """``tsogpu.algorithms.linearity.correct_linearity``: group level (one launch per
    sample) or read level (one launch per integration and pixel), and ZEROFRAME."""
    data = _c(k, data, np.float32)
    groupdq = _c(k, groupdq, np.uint8)
    nints, ngroups, ny, nx = data.shape
    npix = ny * nx
    dqv = _dqv(k)
    lin, new_pixeldq = prepare_coefficients(k, coeffs, lin_dq, pixeldq)
    ncoeffs = lin.shape[0]
    new_data = k.xp.empty(data.shape, dtype=np.float32)
    if inv_coeffs is not None and nframes > 1:
        inv, new_pixeldq = prepare_coefficients(k, inv_coeffs, lin_dq, new_pixeldq)
        if ngroups < 2:
            # stcal indexes group 1 unconditionally and raises IndexError here.
            raise InputError(f"read-level linearity needs ngroups >= 2, got ngroups={ngroups}")
        mean_read = k.xp.asarray(mean_reads(read_pattern(ngroups, nframes)))
        k.launch(
            "tso_pj_lin_reads",
            nints * npix,
            data,
            groupdq,
            lin,
            _i64(ncoeffs),
            inv,
            _i64(inv.shape[0]),
            mean_read,
            _i64(nframes),
            dqv,
            new_data,
            _i64(ngroups),
            _i64(npix),
            _i64(nints * npix),
        )
    else:
        k.launch(
            "tso_pj_lin_groups",
            data.size,
            data,
            groupdq,
            lin,
            _i64(ncoeffs),
            dqv,
            new_data,
            _i64(npix),
            _i64(data.size),
        )

    new_zeroframe = None
    if zeroframe is not None:
        zf = _c(k, zeroframe, np.float32)
        new_zeroframe = k.xp.empty(zf.shape, dtype=np.float32)
        k.launch(
            "tso_pj_lin_zeroframe",
            zf.size,
            zf,
            lin,
            _i64(ncoeffs),
            new_zeroframe,
            _i64(npix),
            _i64(zf.size),
        )
    return new_data, new_pixeldq, new_zeroframe


# ---------------------------------------------------------------------------------------------
# dark_current


def prepare_dark(k, dark, ngroups, nframes, groupgap, dark_nframes, dark_groupgap):
    """``tsogpu.algorithms.dark_current._prepare_dark`` (one launch, per group and pixel).

    Returns the per-group dark, (ngroups, ny, nx), float64 where NumPy's is (extrapolated
    dark, same NFRAMES and GROUPGAP), else float32.
    """
    d = _c(k, dark, np.float32)
    ngd = d.shape[0]
    npix = d[0].size
    sci_total = ngroups * nframes + (ngroups - 1) * groupgap
    drk_total = ngd * dark_nframes + (ngd - 1) * dark_groupgap
    extended = sci_total > drk_total
    nframes_d = ngd
    if extended:
        missing = sci_total - drk_total
        n_new = int(np.ceil((missing + dark_groupgap) / (dark_nframes + dark_groupgap)))
        if ngd < 2:
            raise IndexError("index -2 is out of bounds for axis 0 with size 1")
        nframes_d = ngd + n_new
    direct = nframes == dark_nframes and groupgap == dark_groupgap
    last_start = (ngroups - 1) * (nframes + groupgap)
    if (direct and ngroups > nframes_d) or (
        not direct and nframes == 1 and last_start >= nframes_d
    ):
        # NumPy fails here too (an index past the end of the dark)
        raise IndexError(f"the dark has {nframes_d} frames, too few for {ngroups} groups")
    is64 = extended and direct
    xp = k.xp
    out32 = xp.empty((ngroups,) + d.shape[1:], dtype=np.float32) if not is64 else None
    out64 = xp.empty((ngroups,) + d.shape[1:], dtype=np.float64) if is64 else None
    dummy32 = xp.empty(1, dtype=np.float32)
    dummy64 = xp.empty(1, dtype=np.float64)
    n = ngroups * npix
    k.launch(
        "tso_pj_dark_prepare",
        n,
        d,
        _i64(ngd),
        _i64(extended),
        _i64(nframes_d),
        _i64(direct),
        _i64(nframes),
        _i64(groupgap),
        dummy32 if is64 else out32,
        out64 if is64 else dummy64,
        _i64(npix),
        _i64(n),
    )
    return out64 if is64 else out32


def subtract_dark(
    k, data, pixeldq, dark, dark_dq, *, nframes, groupgap, dark_nframes, dark_groupgap
):
    """``tsogpu.algorithms.dark_current.subtract_dark``: (data, pixeldq), or None where jwst
    skips the step. ``average_dark_current`` stays on the host (NumPy)."""
    if dark_nframes > nframes or dark_groupgap > groupgap:
        return None
    data = _c(k, data, np.float32)
    ngroups = data.shape[1]
    npix = data[0, 0].size
    per_group = prepare_dark(k, dark, ngroups, nframes, groupgap, dark_nframes, dark_groupgap)
    new_pixeldq = _or_image(k, pixeldq, dark_dq)
    new_data = k.xp.empty(data.shape, dtype=np.float32)
    name = "tso_pj_dark_sub64" if per_group.dtype == np.float64 else "tso_pj_dark_sub32"
    k.launch(name, data.size, data, per_group, new_data, _i64(ngroups), _i64(npix), _i64(data.size))
    return new_data, new_pixeldq


# ---------------------------------------------------------------------------------------------
# gain_scale


def gain_scale(k, sci, err, var_poisson, var_rnoise, factor):
    """``tsogpu.algorithms.gain_scale.gain_scale``: sci, err times float32(f); variances times
    float32(f**2) (squared in float64); None or empty variances returned as given."""
    f = float(factor)
    f32 = np.float32(f)
    f2_32 = np.float32(f**2)
    out_vars = []
    for var in (var_poisson, var_rnoise):
        if var is None or var.size == 0:
            out_vars.append(var)
        else:
            out_vars.append(_mul(k, var, f2_32))
    return _mul(k, sci, f32), _mul(k, err, f32), out_vars[0], out_vars[1]
