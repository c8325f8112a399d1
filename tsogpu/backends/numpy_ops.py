"""The NumPy backend: the functions of ``tsogpu/algorithms`` as the pipeline's operations
(:class:`tsogpu.backends.contract.Backend`), on NumPy arrays in the host's memory."""

from dataclasses import replace

import numpy as np

from ..algorithms import (
    dark_current,
    dq_init,
    emicorr,
    firstframe,
    gain_scale,
    group_scale,
    jump,
    jump_fast,
    lastframe,
    likely,
    linearity,
    oneoverf,
    ramp_fit_fast,
    refpix,
    reset,
    rscd,
    saturation,
    superbias,
    tdjump,
)
from ..flow import HostLanes
from ..memory import malloc_trim
from ..segment import ramps_to_float32


class NumpyOps:
    """The NumPy backend (a class used as it is: it holds no state)."""

    name = "numpy"
    device = "cpu"
    kernel_hash = None
    xp = np
    out_of_memory = (MemoryError,)
    one_chunk_at_a_time = False  # chunks and tiles on a thread per core
    wants_raw_counts = False  # to_device would convert them on the host: read float32
    keeps_memo = False  # detect_jumps and fit_ramps compute everything (no memo used)

    # (flag_groups first: the class attribute dq_init hides the module below it)
    flag_groups = staticmethod(dq_init.flag_groups)
    group_scale = staticmethod(group_scale.group_scale)
    dq_init = staticmethod(dq_init.dq_init)
    flag_saturation = staticmethod(saturation.flag_saturation)
    scale_thresholds = staticmethod(saturation.scale_thresholds)
    extend_saturation = staticmethod(saturation.extend_saturation)
    saturation_map = staticmethod(saturation.saturation_map)
    apply_saturation_map = staticmethod(saturation.apply_saturation_map)
    subtract_superbias = staticmethod(superbias.subtract_superbias)
    superbias_scale_factors = staticmethod(superbias.scale_factors)
    correct_refpix = staticmethod(refpix.correct_refpix)
    correct_sky = staticmethod(oneoverf.correct_sky)
    correct_linearity = staticmethod(linearity.correct_linearity)
    subtract_dark = staticmethod(dark_current.subtract_dark)
    detect_jumps = staticmethod(jump_fast.detect_jumps)  # the tuned path of jump.py
    flag_time_domain = staticmethod(tdjump.flag_time_domain)
    all_dnu_planes = staticmethod(jump.all_dnu_planes)
    fit_ramps = staticmethod(ramp_fit_fast.fit_ramps)  # the tuned path of ramp_fit.py
    fit_ramps_likely = staticmethod(likely.fit_ramps_likely)
    gain_scale = staticmethod(gain_scale.gain_scale)
    # MIRI
    flag_first_groups = staticmethod(firstframe.flag_first_groups)
    flag_last_groups = staticmethod(lastframe.flag_last_groups)
    subtract_reset = staticmethod(reset.subtract_reset)
    flag_rscd = staticmethod(rscd.flag_rscd)
    correct_emi = staticmethod(emicorr.correct_emi)

    @staticmethod
    def memory_limit():
        return None

    @staticmethod
    def release_memory():
        malloc_trim()

    @staticmethod
    def to_device(segment, refs):
        if segment is not None and segment.data.dtype != np.float32:
            segment = replace(segment, data=ramps_to_float32(segment.data))
        return segment, refs

    @staticmethod
    def to_host(a):
        return a

    @staticmethod
    def lanes():
        return HostLanes()
