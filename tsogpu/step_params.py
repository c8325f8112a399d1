"""The steps: jwst's two orders (near-infrared and MIRI), each step's reference types, and one
frozen dataclass of parameters per step, with its defaults (jwst 3.0's step specs, see
../shared/reference/detector1_spec.md) and its checks (:mod:`tsogpu.parameter_ranges`).
:mod:`tsogpu.config` gathers them into a run's configuration.
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import ConfigError
from .parameter_ranges import check_ranges, weighting_power

# jwst 3.0's Detector1Pipeline runs one order for the near-infrared detectors and another for
# MIRI (jwst/pipeline/calwebb_detector1.py); steps jwst skips by default and tsogpu does not
# implement (ipc, charge_migration, picture_frame, clean_flicker_noise, persistence) are left out.
NIR_STEP_ORDER = (
    "group_scale",
    "dq_init",
    "saturation",
    "superbias",
    "refpix",
    "linearity",
    "dark_current",
    "jump",
    "ramp_fit",
    "gain_scale",
)
MIRI_STEP_ORDER = (
    "group_scale",
    "dq_init",
    "emicorr",
    "saturation",
    "firstframe",
    "lastframe",
    "reset",
    "linearity",
    "rscd",
    "dark_current",
    "refpix",
    "jump",
    "ramp_fit",
    "gain_scale",
)
# every step, each once: the near-infrared order with MIRI's own steps where MIRI runs them
STEP_ORDER = (
    "group_scale",
    "dq_init",
    "emicorr",
    "saturation",
    "firstframe",
    "lastframe",
    "reset",
    "superbias",
    "refpix",
    "linearity",
    "rscd",
    "dark_current",
    "jump",
    "ramp_fit",
    "gain_scale",
)
# jwst's steps whose ``skip`` defaults to True: ``--run-step STEP`` (``run = [...]`` in TOML)
# runs them; ``--skip`` and TOML's ``skip`` add to these
DEFAULT_SKIP = frozenset({"emicorr", "firstframe"})


def step_order(instrument):
    """The steps jwst runs on an exposure of ``instrument`` (INSTRUME), in its order."""
    return MIRI_STEP_ORDER if str(instrument).upper() == "MIRI" else NIR_STEP_ORDER


# Reference-file types each step reads, in jwst's names. jwst's saturation step also asks CRDS
# for a superbias, which is N/A for MIRI: tsogpu asks for it on the near-infrared detectors only.
STEP_REFTYPES = {
    "group_scale": (),
    "dq_init": ("mask",),
    "emicorr": ("emicorr",),
    "saturation": ("saturation", "superbias"),
    "firstframe": (),
    "lastframe": (),
    "reset": ("reset",),
    "superbias": ("superbias",),
    "refpix": (),
    "linearity": ("linearity",),
    "rscd": ("rscd",),
    "dark_current": ("dark",),
    "jump": ("gain", "readnoise"),
    "ramp_fit": ("gain", "readnoise"),
    "gain_scale": ("gain",),
}
REFTYPES = (
    "mask",
    "saturation",
    "superbias",
    "linearity",
    "dark",
    "gain",
    "readnoise",
    "emicorr",
    "reset",
    "rscd",
)


@dataclass(frozen=True)
class GroupScale:
    """Rescale frame-averaged groups when FRMDIVSR != NFRAMES (jwst group_scale)."""


@dataclass(frozen=True)
class DQInit:
    """OR the mask reference into PIXELDQ, and its DO_NOT_USE into GROUPDQ (jwst dq_init).

    Options (off by default, docs/options.md): mark the first ``flag_first``, the last
    ``flag_last`` and the listed ``flag_groups`` (0-based; negative counts from the end, as
    Python and ExoTiC-MIRI's DropGroupsStep do) DO_NOT_USE in every pixel and integration.
    ``user_mask``: a FITS/.npy image (nonzero: flagged) or a text list of pixels and regions
    whose pixels get the DQ bit named ``user_mask_bit``, ORed into the mask reference as
    jwst's ``user_supplied_dq`` is (``tsogpu.io.user_mask``).
    """

    flag_first: int = 0
    flag_last: int = 0
    flag_groups: tuple[int, ...] = ()
    user_mask: str = ""
    user_mask_bit: str = "DO_NOT_USE"

    def __post_init__(self):
        check_ranges("dq_init", self)


@dataclass(frozen=True)
class Saturation:
    """Flag saturated and A/D-floor groups (stcal flag_saturated_pixels)."""

    n_pix_grow_sat: int = 1
    use_readpatt: bool = True
    # options beyond jwst, off by default (docs/options.md)
    fraction: float = 1.0
    column_saturation: bool = False
    groups_before: int = 0
    fixed_map: str = "none"

    def __post_init__(self):
        check_ranges("saturation", self)


@dataclass(frozen=True)
class Superbias:
    """Subtract the superbias reference (jwst superbias).

    Option (off by default, docs/options.md): ``scale`` rescales the superbias to the level of
    the sky pixels before it is subtracted (Eureka!'s bias_correction): ``integration``, one
    factor per integration and group; ``mean``, per group over the segment's integrations;
    ``exposure``, per group over the whole exposure (needs ``exposure_wide``).
    """

    scale: str = "off"

    def __post_init__(self):
        check_ranges("superbias", self)


@dataclass(frozen=True)
class Refpix:
    """Reference-pixel correction (jwst refpix, median algorithm)."""

    odd_even_columns: bool = True
    use_side_ref_pixels: bool = True
    side_smoothing_length: int = 11
    side_gain: float = 1.0
    odd_even_rows: bool = True
    siglimit: float = 3.0
    # sky-pixel correction, off by default (tsogpu/algorithms/oneoverf.py, docs/options.md)
    sky_method: str = "off"
    sky_mask: str = ""
    sky_threshold: float = 5.0
    sky_mask_grow: int = 3

    def __post_init__(self):
        check_ranges("refpix", self)


@dataclass(frozen=True)
class Linearity:
    """Classic non-linearity correction (stcal linearity_correction)."""


@dataclass(frozen=True)
class DarkCurrent:
    """Dark subtraction with frame averaging (stcal dark_sub)."""

    average_dark_current: float | None = None

    def __post_init__(self):
        check_ranges("dark_current", self)


@dataclass(frozen=True)
class Jump:
    """Cosmic-ray (jump) detection (stcal jump, two-point difference); NIR parameters only."""

    rejection_threshold: float = 4.0
    three_group_rejection_threshold: float = 6.0
    four_group_rejection_threshold: float = 5.0
    flag_4_neighbors: bool = True
    max_jump_to_flag_neighbors: float = 1000.0
    min_jump_to_flag_neighbors: float = 10.0
    after_jump_flag_dn1: float = 0.0
    after_jump_flag_time1: float = 0.0
    after_jump_flag_dn2: float = 0.0
    after_jump_flag_time2: float = 0.0
    expand_large_events: bool = False
    min_sat_area: float = 1.0
    min_jump_area: float = 5.0
    expand_factor: float = 2.0
    sat_required_snowball: bool = True
    min_sat_radius_extend: float = 2.5
    sat_expand: int = 2
    edge_size: int = 25
    mask_snowball_core_next_int: bool = True
    snowball_time_masked_next_int: int = 4000
    max_extended_radius: int = 200
    min_diffs_single_pass: int = 10
    minimum_groups: int = 3
    minimum_sigclip_groups: int = 100
    only_use_ints: bool = True
    # time-domain detection (exoTEDRF), off by default (tsogpu/algorithms/tdjump.py)
    time_domain: str = "off"
    time_window: int = 5
    time_threshold: float = 10.0

    def __post_init__(self):
        check_ranges("jump", self)


@dataclass(frozen=True)
class RampFit:
    """Ordinary-least-squares ramp fitting with optimal weights (stcal OLS_C)."""

    suppress_one_group: bool = True
    firstgroup: int | None = None
    lastgroup: int | None = None
    # weighting and goodness of fit beyond jwst, off by default (docs/options.md)
    weighting: str = "optimal"
    goodness_of_fit: bool = False
    # LIKELY (stcal's likelihood fit) instead of OLS_C
    algorithm: str = "OLS_C"

    def __post_init__(self):
        check_ranges("ramp_fit", self)
        if self.algorithm == "LIKELY" and (self.fixed_power is not None or self.goodness_of_fit):
            raise ConfigError(
                "ramp_fit.weighting and ramp_fit.goodness_of_fit apply to OLS_C; "
                "ramp_fit.algorithm=LIKELY has its own weights and no CHI2"
            )

    @property
    def fixed_power(self):
        """The weight exponent P every segment uses, or None for OLS_C's SNR table."""
        return weighting_power(self.weighting)


@dataclass(frozen=True)
class GainScale:
    """Scale rate products by GAINFACT of the gain reference (jwst gain_scale)."""


@dataclass(frozen=True)
class EmiCorr:
    """MIRI: remove electromagnetic interference (jwst emicorr); jwst's parameters and defaults.

    ``onthefly_corr_freq``: frequencies [Hz] to fit instead of the reference file's (jwst's
    float_list); empty for none.
    """

    algorithm: str = "joint"
    nints_to_phase: int | None = None
    nbins: int | None = None
    scale_reference: bool = True
    onthefly_corr_freq: tuple[float, ...] = ()
    use_n_cycles: int | None = 3
    fit_ints_separately: bool = False

    def __post_init__(self):
        check_ranges("emicorr", self)


@dataclass(frozen=True)
class FirstFrame:
    """MIRI: mark the first group DO_NOT_USE (jwst firstframe, skipped by default).

    Option (docs/options.md): ``ngroups`` marks the first N groups (1 is jwst).
    """

    bright_use_group1: bool = True
    ngroups: int = 1

    def __post_init__(self):
        check_ranges("firstframe", self)


@dataclass(frozen=True)
class LastFrame:
    """MIRI: mark the last group DO_NOT_USE (jwst lastframe).

    Option (docs/options.md): ``ngroups`` marks the last N groups (1 is jwst).
    """

    ngroups: int = 1

    def __post_init__(self):
        check_ranges("lastframe", self)


@dataclass(frozen=True)
class Reset:
    """MIRI: subtract the reset anomaly, integration by integration (jwst reset)."""


@dataclass(frozen=True)
class Rscd:
    """MIRI: mark the first groups of each integration DO_NOT_USE (jwst rscd).

    Options (docs/options.md): ``skip_int1`` / ``skip_int2p`` replace the reference file's
    number of groups for the first integration / the later ones (None: the file's); jwst's
    rules for short ramps and saturated pixels apply to them as to the file's.
    """

    skip_int1: int | None = None
    skip_int2p: int | None = None

    def __post_init__(self):
        check_ranges("rscd", self)


STEP_PARAMS = {
    "group_scale": GroupScale,
    "dq_init": DQInit,
    "emicorr": EmiCorr,
    "saturation": Saturation,
    "firstframe": FirstFrame,
    "lastframe": LastFrame,
    "reset": Reset,
    "superbias": Superbias,
    "refpix": Refpix,
    "linearity": Linearity,
    "rscd": Rscd,
    "dark_current": DarkCurrent,
    "jump": Jump,
    "ramp_fit": RampFit,
    "gain_scale": GainScale,
}
