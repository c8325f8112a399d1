"""mkdocs hook: the parts of the site that the code already says, generated at build time.

A page asks for generated text with a marker on a line of its own; the hook replaces it
before the Markdown is rendered, so these parts cannot drift from the code:

    <!-- tsogpu:cli -->                       every ``tsogpu`` command's --help
                                              (``tsogpu.cli.build_parser``)
    <!-- tsogpu:params -->                    every step's parameters, types and defaults
                                              (``tsogpu.config.STEP_PARAMS``), with PARAM_HELP
    <!-- tsogpu:default-config -->            the default configuration file
                                              (``tsogpu.config.dump_toml``)
    <!-- tsogpu:extras -->                    pyproject.toml's extras, with EXTRA_HELP
    <!-- tsogpu:step NAME -->                 a step's reference types, a link to its parameters
                                              and the docstring of tsogpu/algorithms/NAME.py
    <!-- tsogpu:include PATH -->              a Markdown file of the repository, title dropped
    <!-- tsogpu:jwst-mapping -->              jwst's parameters -> tsogpu's, each step
                                              (``tsogpu.stpipe.parameters``; needs jwst)
    <!-- tsogpu:stpipe-options -->            tsogpu's parameters that jwst's pipeline lacks,
                                              as strun / .call parameters

An unknown marker, a missing file, a parameter or an extra without a description here, or a
description of a parameter that no longer exists stops the build (mkdocs reports the page).
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import os
import re
import sys
import tomllib
import typing
from pathlib import Path

from mkdocs.exceptions import PluginError

ROOT = Path(__file__).resolve().parents[2]

MARKER = re.compile(r"^<!-- tsogpu:([a-z-]+)(?: (\S+))? -->$", re.MULTILINE)

# One line per parameter: what it does. The types and defaults come from tsogpu/config.py.
PARAM_HELP = {
    "emicorr": {
        "algorithm": "joint: the EMI of every frequency fitted at once (one median and one "
        "chi-square fit over the segment); sequential: one frequency after another, from "
        "phase-folded, sigma-clipped bins (MIRI; jwst's default joint).",
        "nints_to_phase": "sequential: the integrations phased together; none: jwst's rule.",
        "nbins": "sequential: bins of one phased wave; none: from the reference's waveform.",
        "scale_reference": "Scale the reference waveform to the amplitude phased in the data.",
        "onthefly_corr_freq": "Frequencies [Hz] to fit instead of the reference file's (jwst's "
        "on-the-fly correction); empty: the reference's.",
        "use_n_cycles": "joint: cycles of the slowest frequency used to phase; none: every "
        "integration.",
        "fit_ints_separately": "joint: fit each integration on its own.",
    },
    "firstframe": {
        "bright_use_group1": "Keep the first group of pixels saturated by group 3 "
        "(FLUX_ESTIMATED in PIXELDQ), where the first-frame effect is small against the signal.",
        "ngroups": "Option: mark the first N groups DO_NOT_USE (1: jwst); the step runs only "
        "where NGROUPS > N + 2.",
    },
    "lastframe": {
        "ngroups": "Option: mark the last N groups DO_NOT_USE (1: jwst); the step runs only "
        "where NGROUPS > N + 1.",
    },
    "rscd": {
        "skip_int1": "Option: groups marked DO_NOT_USE at the start of the exposure's first "
        "integration instead of the RSCD reference's; none: the reference's. jwst's rules for "
        "short ramps and saturated pixels apply to it.",
        "skip_int2p": "Option: the same for the later integrations.",
    },
    "dq_init": {
        "flag_first": "Option (docs/options.md): the first N groups get DO_NOT_USE in every "
        "pixel and integration (exoTEDRF's miri_drop_groups); 0: off, as jwst.",
        "flag_last": "Option: the last N groups get DO_NOT_USE (the lastframe practice, "
        "generalised); 0: off.",
        "flag_groups": "Option: these groups get DO_NOT_USE; 0-based, negative counts from "
        "the end (ExoTiC-MIRI's DropGroupsStep); empty: off.",
        "user_mask": "Option: a user DQ mask, a FITS/.npy image (nonzero: flagged) or a text "
        "list of pixels `X Y` and regions `X0:X1 Y0:Y1` (0-based, science frame), ORed into "
        "PIXELDQ as jwst's user_supplied_dq (`--dq-mask FILE`); empty: off.",
        "user_mask_bit": "Option: the DQ bit (a name of tsogpu.dq.PIXEL) the user mask's pixels "
        "get; DO_NOT_USE also reaches GROUPDQ, as in jwst.",
    },
    "saturation": {
        "n_pix_grow_sat": "Saturation flags grow to every pixel within this distance (a "
        "(2n+1) x (2n+1) box), group by group; 0 turns growth off.",
        "use_readpatt": "With NFRAMES > 1, use the read pattern: frame-averaged groups that "
        "were partly saturated, and a second group whose third saturates, get DO_NOT_USE.",
        "fraction": "Option: the threshold is this fraction of the reference saturation level "
        "(jtow's fracSat 0.9, exoTEDRF's 80% of full well); 1.0: jwst.",
        "column_saturation": "Option: a whole column is SATURATED from the first group in "
        "which any of its pixels is (Tiberius, Eureka, jtow).",
        "groups_before": "Option: the N groups before a pixel's (or column's) first saturated "
        "group are SATURATED too (Eureka's expand_prev_group).",
        "fixed_map": "Option: none (jwst), pixel or column: one first saturated group per "
        "pixel or column, the earliest over the segment's integrations (the exposure's with "
        "exposure_wide), for every integration.",
    },
    "superbias": {
        "scale": "Option (docs/options.md): off (jwst), integration, mean or exposure: the "
        "superbias times the median of each group's sky pixels over that of the superbias "
        "(Eureka's bias_correction), per integration and group, its mean per group over the "
        "segment, or over the exposure (exposure_wide).",
    },
    "refpix": {
        "odd_even_columns": "Separate reference levels for even and odd detector columns.",
        "use_side_ref_pixels": "Full frame and 4-output subarrays: also subtract the left/right "
        "reference columns' running median, row by row (1/f noise).",
        "side_smoothing_length": "Rows in the running median of the side reference pixels.",
        "side_gain": "Factor applied to the side reference signal before it is subtracted.",
        "odd_even_rows": "MIRI only (separate levels for odd and even rows); accepted as jwst "
        "does, no effect on near-infrared data.",
        "siglimit": "Clipping limit, in standard deviations, of the reference pixels' "
        "sigma-clipped means.",
        "sky_method": "Option: off (jwst), glbs (per group, the median of each fast-read line's "
        "sky pixels subtracted, per amplifier) or roeba (odd/even column offsets per amplifier "
        "first, then glbs), from pixels off the trace mask.",
        "sky_mask": "Option: a .npy or FITS image (ny, nx), nonzero on the trace (never sky); "
        "empty: made from the median last-minus-first image.",
        "sky_threshold": "Option: the automatic trace mask takes pixels above median + this "
        "many robust sigmas (1.4826 MAD) of the median last-minus-first image.",
        "sky_mask_grow": "Option: the automatic trace mask grown by this many pixels in every "
        "direction.",
    },
    "dark_current": {
        "average_dark_current": "Dark current (e-/s) that ramp fitting adds to the Poisson "
        "variance; unset: from the dark reference (see the dark_current page).",
    },
    "jump": {
        "rejection_threshold": "Jump threshold in sigma (pixels with 4 or more usable "
        "differences; also the sigma of the sigma-clipping path).",
        "three_group_rejection_threshold": "Threshold for pixels with exactly 2 usable "
        "differences.",
        "four_group_rejection_threshold": "Threshold for pixels with exactly 3 usable differences.",
        "flag_4_neighbors": "Also flag the 4 neighbours of a jump whose significance lies "
        "between the two limits below.",
        "max_jump_to_flag_neighbors": "Upper limit (sigma) for flagging a jump's neighbours.",
        "min_jump_to_flag_neighbors": "Lower limit (sigma) for flagging a jump's neighbours.",
        "after_jump_flag_dn1": "Jumps of at least this many DN also flag the groups within "
        "after_jump_flag_time1 after them; 0: off.",
        "after_jump_flag_time1": "Seconds flagged after such a jump (int(time // TGROUP) groups).",
        "after_jump_flag_dn2": "A second after-jump threshold (DN); 0: off.",
        "after_jump_flag_time2": "Seconds flagged after a jump above the second threshold.",
        "expand_large_events": "Flag snowballs: large jump regions around new saturated cores "
        "are expanded (needs scikit-image, the snowballs extra).",
        "min_sat_area": "Smallest saturated region (pixels) that can be a snowball core.",
        "min_jump_area": "Smallest jump region (pixels) that can be a snowball.",
        "expand_factor": "Factor by which a snowball's ellipse is enlarged.",
        "sat_required_snowball": "A jump region is a snowball only if it contains a new "
        "saturated core (or lies near the edge); false: every large region is.",
        "min_sat_radius_extend": "Saturated cores whose minor axis exceeds this (pixels) are "
        "enlarged and flagged SATURATED.",
        "sat_expand": "Enlargement of such a core, in pixels (jwst passes twice this value "
        "to stcal).",
        "edge_size": "Jump regions within this many pixels of the frame edge are snowballs "
        "without a saturated core.",
        "mask_snowball_core_next_int": "Flag each integration's snowball cores as jumps at "
        "the start of the next integration.",
        "snowball_time_masked_next_int": "Seconds of the next integration flagged so "
        "(int(time // TGROUP) groups).",
        "max_extended_radius": "Largest enlarged radius, in pixels (jwst passes twice this "
        "value to stcal).",
        "min_diffs_single_pass": "With at least this many usable differences, one detection "
        "pass replaces the iterative search.",
        "minimum_groups": "Fewest usable groups for detection when sigma clipping is not "
        "used (jwst forces 3 when it runs in one process).",
        "minimum_sigclip_groups": "Integrations (groups with only_use_ints=false) needed for "
        "sigma clipping across integrations.",
        "only_use_ints": "Sigma-clip each group difference across integrations only, and "
        "count integrations against minimum_sigclip_groups; false: across integrations and "
        "groups.",
        "time_domain": "Option (docs/options.md): off (jwst), alone or with_ramp: flag jumps "
        "against a running median across integrations (exoTEDRF), instead of or with jwst's.",
        "time_window": "Option: integrations in the time-domain running median (odd, 3-63; "
        "exoTEDRF's window=5).",
        "time_threshold": "Option: time-domain threshold in units of the point-to-point "
        "scatter across integrations (exoTEDRF's thresh=10).",
    },
    "ramp_fit": {
        "suppress_one_group": "An integration with a single good group is not fitted (all its "
        "groups get DO_NOT_USE), as jwst does by default.",
        "firstgroup": "First group (0-based) used in the fit; earlier groups get DO_NOT_USE. "
        "Unset: the first.",
        "lastgroup": "Last group (0-based) used in the fit; later groups get DO_NOT_USE. "
        "Unset: the last.",
        "algorithm": "`OLS_C` (jwst's default) or `LIKELY`, stcal's likelihood fit (Brandt "
        "2024), which also finds further jumps; with fewer than 4 groups jwst, and tsogpu, "
        "fit OLS_C.",
        "weighting": "Option (docs/options.md): the exponent of the segment weights: optimal "
        "(OLS_C's SNR table, as jwst), unweighted (P = 0) or exponent:P (a fixed P >= 0).",
        "goodness_of_fit": "Option: add CHI2 to _rateints, each integration's reduced "
        "chi-square of the fit (NaN where undefined); false: jwst's layout.",
    },
}

# What each extra of pyproject.toml is for (the requirements come from pyproject.toml).
EXTRA_HELP = {
    "gpu": "`--backend cupy`; see [Backends](backends.md#installing-the-cuda-backend)",
    "dask": "[`tsogpu batch`](clusters.md)",
    "slurm": "`tsogpu batch --cluster slurm`",
    "cuda-cluster": "`tsogpu batch --cluster cuda`",
    "plots": "plotting",
    "crds": "reference files chosen by CRDS",
    "snowballs": "`--set jump.expand_large_events=true`",
    "report": "the exposure product `<exposure>_tso.nc` and [its report](report.md) "
    "(figures, DS9 images, an HTML page): `tsogpu run --report`, `tsogpu report`",
    "test": "the test suite (jwst 3.0 and stcal 1.20 are the oracle)",
    "bench": "the benchmarks in `bench/`",
    "docs": "this site: `mkdocs build --strict`",
    "stpipe": "[`strun tsogpu_detector1`, `TSODetector1Pipeline.call`](jwst_to_tsogpu.md): "
    "jwst's stpipe interface",
}


def on_config(config):
    """Document this checkout's tsogpu; fail early when descriptions and code disagree."""
    # here, not at import: mkdocs restores sys.path after loading a hook
    if sys.path[:1] != [str(ROOT)]:
        sys.path.insert(0, str(ROOT))
    import tsogpu

    if Path(tsogpu.__file__).resolve().parent != ROOT / "tsogpu":
        raise PluginError(f"documenting {tsogpu.__file__}, not this checkout's tsogpu")
    from tsogpu.config import STEP_PARAMS

    problems = []
    for step, cls in STEP_PARAMS.items():
        names = [f.name for f in dataclasses.fields(cls)]
        described = PARAM_HELP.get(step, {})
        problems += [f"{step}.{n}: no description" for n in names if n not in described]
        problems += [f"{step}.{n}: described, not a parameter" for n in described if n not in names]
    problems += [f"{step}: not a step" for step in PARAM_HELP if step not in STEP_PARAMS]
    if problems:
        raise PluginError(f"docs/_hooks/generate.py PARAM_HELP: {'; '.join(problems)}")
    return config


def on_page_markdown(markdown, page, config, files):
    def replace(match):
        kind, arg = match.group(1), match.group(2)
        where = f"{page.file.src_uri}: <!-- tsogpu:{kind} -->"
        if kind == "cli" and arg is None:
            return cli_reference()
        if kind == "params" and arg is None:
            return parameter_tables()
        if kind == "default-config" and arg is None:
            return default_config()
        if kind == "extras" and arg is None:
            return extras_table(where)
        if kind == "step" and arg:
            return step_section(arg, page, where)
        if kind == "include" and arg:
            return include(arg, where)
        if kind == "jwst-mapping" and arg is None:
            return jwst_mapping()
        if kind == "stpipe-options" and arg is None:
            return stpipe_options()
        raise PluginError(f"{where}: unknown marker or missing argument")

    return MARKER.sub(replace, markdown)


# --------------------------------------------------------------------------------------------


def cli_reference():
    from tsogpu.cli import build_parser

    old = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = "100"  # argparse wraps to the terminal; fix it for the page
    try:
        parser = build_parser()
        sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        parts = ["## tsogpu", "", fence(parser.format_help())]
        for name, p in sub.choices.items():
            parts += ["", f"## tsogpu {name}", "", fence(p.format_help())]
    finally:
        if old is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = old
    return "\n".join(parts)


def parameter_tables():
    from tsogpu.config import STEP_ORDER, STEP_PARAMS, STEP_REFTYPES
    from tsogpu.parameter_ranges import RANGES

    parts = []
    for step in STEP_ORDER:
        cls = STEP_PARAMS[step]
        parts += [f"### {step}", "", f"{cls.__doc__.strip()} {reftypes(STEP_REFTYPES[step])}", ""]
        fields = dataclasses.fields(cls)
        if not fields:
            parts += ["No parameters.", ""]
            continue
        hints = typing.get_type_hints(cls)
        parts += [
            "| parameter | type | default | allowed | meaning |",
            "|---|---|---|---|---|",
        ]
        for f in fields:
            allowed = RANGES[step][f.name].describe(step)
            parts.append(
                f"| `{f.name}` | {type_name(hints[f.name])} | {default_text(f.default)} "
                f"| {allowed} | {PARAM_HELP[step][f.name]} |"
            )
        parts.append("")
    return "\n".join(parts)


def jwst_mapping():
    from tsogpu.stpipe.parameters import PIPELINE_MAPPING, mapping_rows

    parts = ["### The pipeline", "", "| jwst | tsogpu | notes |", "|---|---|---|"]
    parts += [f"| `{k}` | {ours} | {note} |" for k, (ours, note) in PIPELINE_MAPPING.items()]
    step = None
    for name, key, ours, note in mapping_rows():
        if name != step:
            parts += ["", f"### {name}", "", "| jwst | tsogpu | notes |", "|---|---|---|"]
            step = name
        parts.append(f"| `{key}` | {ours} | {note.replace('|', '/')} |")
    return "\n".join(parts)


def stpipe_options():
    from tsogpu.config import STEP_ORDER
    from tsogpu.stpipe.parameters import PIPELINE_OPTIONS, tsogpu_options

    parts = ["| strun / `.call` parameter | TOML key / `--set` | meaning |", "|---|---|---|"]
    for key, spec in PIPELINE_OPTIONS.items():
        meaning = spec.split("# tsogpu:", 1)[1].strip()
        parts.append(f"| `--{key}` | `{key}` | {meaning} |")
    for step in STEP_ORDER:
        for f in tsogpu_options(step):
            parts.append(
                f"| `--steps.{step}.{f.name}` | `{step}.{f.name}` | {PARAM_HELP[step][f.name]} |"
            )
    return "\n".join(parts)


def default_config():
    from tsogpu.config import PipelineConfig, dump_toml

    return fence(dump_toml(PipelineConfig()), "toml")


def extras_table(where):
    with open(ROOT / "pyproject.toml", "rb") as fh:
        extras = tomllib.load(fh)["project"].get("optional-dependencies", {})
    missing = [name for name in extras if name not in EXTRA_HELP]
    if missing:
        raise PluginError(f"{where}: no EXTRA_HELP for the extra(s) {', '.join(missing)}")
    rows = ["| extra | installs | for |", "|---|---|---|"]
    for name, reqs in extras.items():
        rows.append(f"| `{name}` | {', '.join(f'`{r}`' for r in reqs)} | {EXTRA_HELP[name]} |")
    return "\n".join(rows)


def step_section(step, page, where):
    from tsogpu.config import STEP_PARAMS, STEP_REFTYPES

    if step not in STEP_PARAMS:
        raise PluginError(f"{where}: {step!r} is not a step")
    module = ROOT / "tsogpu" / "algorithms" / f"{step}.py"
    doc = ast.get_docstring(ast.parse(module.read_text()), clean=True)
    if not doc:
        raise PluginError(f"{where}: {module.relative_to(ROOT)} has no module docstring")
    depth = page.file.src_uri.count("/")
    config_page = "../" * depth + "configuration.md"
    has_params = bool(dataclasses.fields(STEP_PARAMS[step]))
    params = (
        f"Its parameters: [configuration reference]({config_page}#{step})."
        if has_params
        else "It has no parameters."
    )
    return "\n".join(
        [
            "## Reference files and parameters",
            "",
            f"{reftypes(STEP_REFTYPES[step])} {params}",
            "",
            f"## Specification (`tsogpu/algorithms/{step}.py`)",
            "",
            "The module docstring, verbatim: the NumPy implementation is the specification "
            "that the CUDA kernel mirrors.",
            "",
            fence(doc),
        ]
    )


def include(path, where):
    source = (ROOT / path).resolve()
    if ROOT not in source.parents or not source.is_file():
        raise PluginError(f"{where}: {path} is not a file of the repository")
    text = source.read_text()
    # the including page has the title; the file's own title line goes
    return re.sub(r"\A# [^\n]*\n+", "", text)


# --------------------------------------------------------------------------------------------


def fence(text, lang="text"):
    ticks = "````" if "```" in text else "```"
    return f"{ticks}{lang}\n{text.rstrip()}\n{ticks}"


def reftypes(types):
    if not types:
        return "Reads no reference file."
    return f"Reference files: {', '.join(f'`{t}`' for t in types)}."


def type_name(hint):
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    if args and len(args) < len(typing.get_args(hint)):
        return f"{args[0].__name__} or unset"
    return hint.__name__


def default_text(value):
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return f"`{'true' if value else 'false'}`"
    return f"`{value!r}`"
