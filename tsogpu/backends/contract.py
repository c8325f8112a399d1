"""The backend contract: what every backend gives the pipeline, declared once.

A backend is an object with the operations of :class:`Backend`. Three implement it: NumPy
(:class:`tsogpu.backends.numpy_ops.NumpyOps`, the functions of ``tsogpu/algorithms``), the
native CPU build and CuPy on a GPU (``KernelOps``: the same kernels through their launchers,
``tsogpu/launchers``). Each step operation has exactly the signature of the NumPy function it
mirrors (:data:`MIRRORS`) and returns the same values bit for bit, on the backend's arrays
(``xp``); ``tests/test_backend_contract.py`` checks the signatures, the conformance tests the
values. Device and host meet only here: the pipeline moves data with ``to_device`` and
``to_host`` and makes arrays with ``xp``, and never asks what kind of array it holds.

Shapes: ``data`` float32 (nints, ngroups, ny, nx), ``groupdq`` uint8 of the same shape,
``pixeldq`` uint32 (ny, nx), ``zeroframe`` float32 (nints, ny, nx) or None; reference arrays
are already cut to the frame (ny, nx).
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

# operation -> the NumPy function it mirrors ("module.function" under tsogpu.algorithms)
MIRRORS = {
    "group_scale": "group_scale.group_scale",
    "dq_init": "dq_init.dq_init",
    "flag_groups": "dq_init.flag_groups",
    "flag_saturation": "saturation.flag_saturation",
    "scale_thresholds": "saturation.scale_thresholds",
    "extend_saturation": "saturation.extend_saturation",
    "saturation_map": "saturation.saturation_map",
    "apply_saturation_map": "saturation.apply_saturation_map",
    "subtract_superbias": "superbias.subtract_superbias",
    "superbias_scale_factors": "superbias.scale_factors",
    "correct_refpix": "refpix.correct_refpix",
    "correct_sky": "oneoverf.correct_sky",
    "correct_linearity": "linearity.correct_linearity",
    "subtract_dark": "dark_current.subtract_dark",
    "detect_jumps": "jump.detect_jumps",
    "flag_time_domain": "tdjump.flag_time_domain",
    "all_dnu_planes": "jump.all_dnu_planes",
    "fit_ramps": "ramp_fit.fit_ramps",
    "fit_ramps_likely": "likely.fit_ramps_likely",
    "gain_scale": "gain_scale.gain_scale",
    # MIRI
    "flag_first_groups": "firstframe.flag_first_groups",
    "flag_last_groups": "lastframe.flag_last_groups",
    "subtract_reset": "reset.subtract_reset",
    "flag_rscd": "rscd.flag_rscd",
    "correct_emi": "emicorr.correct_emi",
}


def mirrored(op):
    """The NumPy function (``tsogpu.algorithms``) that operation ``op`` mirrors."""
    import importlib

    module, function = MIRRORS[op].split(".")
    return getattr(importlib.import_module(f"tsogpu.algorithms.{module}"), function)


@runtime_checkable
class Backend(Protocol):
    """What the pipeline calls; see the module docstring for shapes and dtypes."""

    name: str  # "numpy", "native" or "cupy": TSOBACK in the products
    device: str  # what runs the steps, in words: TSODEV
    kernel_hash: str | None  # the compiled kernels' hash (TSOKHASH), None for NumPy
    xp: object  # the array module of the backend's arrays (numpy or cupy)
    out_of_memory: tuple  # exception types the driver retries in smaller chunks
    # whether chunks and tiles go one at a time (the kernels use every core, or the whole
    # device, already), rather than on a host thread per core
    one_chunk_at_a_time: bool
    # whether to_device takes the file's raw counts (2 bytes a sample to move, converted
    # there) rather than float32 read on the host
    wants_raw_counts: bool
    # whether detect_jumps and fit_ramps reuse their memo between calls on the same ramp
    # (what the rejection threshold, or the JUMP flags, do not change), rather than
    # computing everything each time
    keeps_memo: bool

    # ---- the steps, in jwst's order (signatures: the mirrored NumPy functions)
    def group_scale(self, data, nframes, frame_divisor):
        """data float32 (nints, ngroups, ny, nx) -> the frame sums rescaled (FRMDIVSR)."""

    def dq_init(self, pixeldq, groupdq, mask_dq, user_dq=None):
        """-> (pixeldq uint32 (ny, nx), groupdq uint8 (nints, ngroups, ny, nx));
        ``user_dq`` uint32 (ny, nx) or None: the user's mask, ORed into ``mask_dq``."""

    def flag_groups(self, groupdq, mask):
        """mask bool (ngroups,): those groups DO_NOT_USE everywhere -> groupdq."""

    def flag_saturation(
        self,
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
        """-> (groupdq, pixeldq, zeroframe) with SATURATED/AD_FLOOR and their growth."""

    def scale_thresholds(self, sat_thresh, fraction):
        """float32 (ny, nx) thresholds times ``fraction`` -> float32 (ny, nx)."""

    def extend_saturation(self, groupdq, *, column_saturation=False, groups_before=0):
        """-> groupdq with saturation extended down columns and/or to earlier groups."""

    def saturation_map(self, groupdq, per="pixel"):
        """-> int32 (ny, nx): the first saturated group per pixel (or column) over ints."""

    def apply_saturation_map(self, groupdq, sat_map):
        """-> groupdq with every group from ``sat_map``'s on SATURATED."""

    def subtract_superbias(self, data, pixeldq, bias, bias_dq, zeroframe=None, scale=None):
        """-> (data, pixeldq, zeroframe); ``scale`` float32 (nints, ngroups) or None."""

    def superbias_scale_factors(self, data, groupdq, pixeldq, bias, bias_dq, trace_mask):
        """-> float32 (nints, ngroups): the superbias scale measured on sky pixels."""

    def correct_refpix(self, data, pixeldq, exposure, params, zeroframe=None, first_plane=True):
        """-> (data, zeroframe, status "COMPLETE" | "SKIPPED")."""

    def correct_sky(self, data, groupdq, pixeldq, exposure, method, trace_mask):
        """-> (data, oneoverf.Levels): 1/f and odd/even offsets from sky pixels removed."""

    def correct_linearity(
        self, data, groupdq, pixeldq, coeffs, lin_dq, *, zeroframe=None, inv_coeffs=None, nframes=1
    ):
        """-> (data, pixeldq, zeroframe); ``coeffs`` float32 (ncoeffs, ny, nx)."""

    def subtract_dark(
        self,
        data,
        pixeldq,
        dark,
        dark_dq,
        *,
        nframes,
        groupgap,
        dark_nframes,
        dark_groupgap,
        int_start=0,
    ):
        """-> (data, pixeldq), or None where jwst skips (a dark too short). A 4-D (MIRI) dark
        is indexed by exposure integration ``int_start + i``."""

    def detect_jumps(
        self,
        data,
        groupdq,
        pixeldq,
        gain,
        readnoise,
        params,
        *,
        nframes,
        groupgap,
        tgroup,
        ngroups_total=None,
        frame=None,
        memo=None,
    ):
        """-> jump.JumpResult; ``frame``: the whole-frame statistics of a tile's segment;
        ``memo``: a dict kept between calls on the same ramp (the kernels keep the sigma
        clip's first iterations, which the rejection threshold does not change)."""

    def flag_time_domain(self, data, groupdq, *, window, threshold):
        """-> tdjump.TimeDomainResult: jumps found across integrations."""

    def all_dnu_planes(self, groupdq):
        """-> bool (nints, ngroups): planes DO_NOT_USE in every pixel."""

    def fit_ramps(
        self,
        data,
        groupdq,
        pixeldq,
        gain,
        readnoise,
        params,
        *,
        nframes,
        groupgap,
        tgroup,
        tframe,
        dropframes1=0,
        average_dark_current=None,
        zeroframe=None,
        groups=None,
        memo=None,
    ):
        """-> ramp_fit.RampFitResult (rateints (nints, ny, nx), rate (ny, nx) products; chi2
        float32 (nints, ny, nx) with ``params.goodness_of_fit``, else None); ``groups``: MIRI's
        (first, stop) from ``ramp_fit.miri_groups``, None for all; ``memo``: a dict kept
        between calls on the same ramp with other JUMP flags (the kernels reuse what an
        integration without flags gives)."""

    def fit_ramps_likely(
        self,
        data,
        groupdq,
        pixeldq,
        gain,
        readnoise,
        params,
        *,
        nframes,
        groupgap,
        tgroup,
        tframe,
        dropframes1=0,
        average_dark_current=None,
        zeroframe=None,
    ):
        """-> ramp_fit.RampFitResult, fitted with LIKELY (stcal's likelihood fit)."""

    def gain_scale(self, sci, err, var_poisson, var_rnoise, factor):
        """-> the four arrays times GAINFACT (variances times its square)."""

    # ---- MIRI steps (called where firstframe/lastframe.applies, rscd.skip_groups say so)
    def flag_first_groups(self, groupdq, pixeldq, ngroups=1, bright_use_group1=True):
        """-> (groupdq, pixeldq): firstframe's DO_NOT_USE in the first groups."""

    def flag_last_groups(self, groupdq, ngroups=1):
        """-> groupdq: lastframe's DO_NOT_USE in the last groups."""

    def subtract_reset(self, data, pixeldq, reset, reset_dq, int_start):
        """-> (data, pixeldq); ``reset`` float32 (reset_nints, reset_ngroups, ny, nx)."""

    def flag_rscd(self, groupdq, pixeldq, skip_int1, skip_int2p, int_start):
        """-> (groupdq, pixeldq): rscd's DO_NOT_USE in the first groups, FLUX_ESTIMATED."""

    def correct_emi(self, data, groupdq, pixeldq, exposure, params, ref):
        """-> data with MIRI's EMI removed (jwst emicorr), or None where jwst skips; needs the
        whole segment; ``ref``: the EMICORR ``Reference`` (or ``emicorr.plain_reference``'s
        dict; None with ``onthefly_corr_freq``)."""

    # ---- memory and data movement
    def memory_limit(self):
        """Bytes the backend's own memory can hold now (None: only the budget limits it)."""

    def release_memory(self):
        """Hand freed memory back after an out-of-memory error, before a retry."""

    def to_device(self, segment, refs):
        """(segment, refs) on the backend, the ramps float32 (raw counts converted);
        ``segment`` may be None to move only ``refs`` (reftype -> Reference or None)."""

    def to_host(self, a):
        """``a`` as a NumPy array (or ``a`` itself: None, a NumPy array)."""

    def lanes(self):
        """How ``tsogpu.flow.stream`` meets this backend (host threads or CUDA streams)."""


STEP_OPERATIONS = tuple(MIRRORS)
