"""A synthetic MIRI time-series segment, its nine reference files and its truth
(:func:`tsogpu.simulate.simulate` with a mode of :data:`~tsogpu.simulate.miri_modes.MIRI_MODES`).

The physics is in :mod:`~tsogpu.simulate.miri_ramps`, the detector and its clocks in
:mod:`~tsogpu.simulate.miri_modes`, the reference files in :mod:`~tsogpu.simulate.miri_files`;
the uncal file is written as the near-infrared one (:func:`tsogpu.simulate.files.write_uncal`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import ConfigError
from .files import write_uncal
from .miri_files import write_miri_references
from .miri_modes import MIRI_MODES, READ_PATTERNS, miri_detector, miri_geometry
from .miri_ramps import EMI_COMPONENTS, miri_ramps, miri_scene
from .ramps import write_truth
from .scene import draw_cosmic_rays, light_curve
from .times import int_times_table


def simulate_miri(
    mode,
    out_dir,
    *,
    nints,
    ngroups,
    seed,
    cosmic_rays,
    segment,
    subarray=None,
    readpatt=None,
    full_frame_refs=True,
    dark_ngroups=None,
    cr_rate=1.6e-5,
    n_saturating=4,
    peak_fill=0.5,
    transit_depth=0.01,
):
    """Write a MIRI segment; returns ``(uncal, refs, truth, shape)`` (see ``simulate``).

    ``subarray``: a MIRI subarray name (default: the mode's); ``readpatt``: FASTR1 (default)
    or SLOWR1 (FULL only). The truth file holds ``rate``, ``flux``, ``dark_rate``,
    ``light_curve``, ``int_mid_bjd``, ``cr``, ``sat_group``, ``sat_pixels``, ``bias``,
    ``gain``, ``refpix`` as for the near-infrared modes, and the MIRI effects: ``reset_amp``
    float32 (2, ny, nx), ``first_frame`` and ``last_frame`` float32 (ny, nx) offsets (DN),
    ``emi_frequency``, ``emi_amplitude`` and ``emi_phase`` (per EMI component).
    """
    m = MIRI_MODES[mode]
    segnum, segtot = segment
    geo = miri_geometry(m.subarray if subarray is None else subarray, readpatt or m.readpatt)
    readpatt = readpatt or m.readpatt
    nf, gg, nsamples = READ_PATTERNS[readpatt]
    if ngroups < 2:
        raise ConfigError(f"MIRI ramps need ngroups >= 2, got {ngroups}")
    ntotal = nints * segtot
    intstart = (segnum - 1) * nints + 1
    t_last = ngroups * geo.tframe

    det = miri_detector(m, np.random.default_rng([seed, 0]))
    scene = miri_scene(
        m, geo, det, np.random.default_rng([seed, 1]), t_last, n_saturating, peak_fill
    )
    emi_phases = np.random.default_rng([seed, 4]).random(len(EMI_COMPONENTS))
    cycle = (ngroups + 1) * geo.tframe  # the R1 patterns: one reset frame between integrations
    times = int_times_table(intstart, nints, cycle, ngroups * geo.tframe)
    lc_all = light_curve(np.arange(ntotal), ntotal, transit_depth)
    lc = lc_all[intstart - 1 : intstart - 1 + nints]

    noise_rng = np.random.default_rng([seed, 2, segnum])
    crs = draw_cosmic_rays(noise_rng, geo, nints, ngroups, cr_rate * t_last if cosmic_rays else 0.0)
    data = miri_ramps(geo, det, scene, lc_all, crs, noise_rng, nints, ngroups, intstart, emi_phases)

    sat_thresh = det["sat_thresh"][geo.ys, geo.xs]
    sat_hit = (data >= sat_thresh) & ~geo.refpix
    sat_group = np.where(sat_hit.any(axis=1), sat_hit.argmax(axis=1), -1).astype(np.int16)

    exposure = {
        "readpatt": readpatt,
        "nframes": nf,
        "groupgap": gg,
        "frame_divisor": 1,
        "ngroups": ngroups,
        "nints_total": ntotal,
        "intstart": intstart,
        "segnum": segnum,
        "segtot": segtot,
        "zero_frame": False,
        "nframes_int": ngroups,
    }
    out_dir = Path(out_dir)
    stem = f"{m.file_stem}-seg{segnum:03d}_mirimage"
    uncal = out_dir / f"{stem}_uncal.fits"
    extra = {"exposure.nsamples": nsamples, "exposure.nresets_between_ints": 1}
    write_uncal(uncal, m, geo, exposure, data, None, times, extra=extra)
    refs = write_miri_references(
        out_dir, m, geo, det, exposure, full_frame_refs, dark_ngroups, seed
    )

    ys, xs = geo.ys, geo.xs
    truth = write_truth(
        out_dir / f"{stem}_truth.npz",
        mode,
        seed,
        scene,
        lc,
        times,
        crs,
        sat_group,
        det,
        geo,
        reset_amp=det["reset_amp"][:, ys, xs],
        first_frame=det["first_frame"][ys, xs],
        last_frame=det["last_frame"][ys, xs],
        emi_frequency=np.array([c[1] for c in EMI_COMPONENTS]),
        emi_amplitude=np.array([c[2] for c in EMI_COMPONENTS]),
        emi_phase=emi_phases,
    )
    return uncal, refs, truth, data.shape
