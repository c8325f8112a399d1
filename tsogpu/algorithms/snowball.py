"""Snowball flagging (stcal 1.20 ``jump/jump.py: flag_large_events`` and its helpers, NIR).

Shared by the jump specification (``tsogpu.algorithms.jump``) and its tuned path
(``tsogpu.algorithms.jump_fast``): it runs on whole assembled frames after the per-pixel
detection. Uses scikit-image (``measure.label``, ``measure.regionprops``, ``draw.ellipse``),
imported lazily, exactly as stcal calls it.
"""

from dataclasses import dataclass

import numpy as np

from .. import dq
from ..errors import ConfigError

_JUMP = np.uint8(dq.JUMP_DET)
_SAT = np.uint8(dq.SATURATED)


def flag_snowballs(groupdq, params, *, tgroup):
    """Snowball flagging on whole frames, as stcal ``flag_large_events`` with jwst's arguments.

    For each integration and group >= 1: connected regions (8-connected, ``area_filled`` >=
    the minimum) of newly saturated pixels in this and the next group, and of JUMP pixels; a
    jump region is a snowball if it lies near the frame edge or contains a new-saturation
    centroid. Saturated cores with minor axis > ``min_sat_radius_extend`` grow by
    ``2*sat_expand`` and are set to SAT (overwriting) in this and later groups; snowball ellipses
    are expanded and ORed with JUMP (not on SAT pixels) in this group. Cores are masked with JUMP
    in groups 1 .. min(int(snowball_time_masked_next_int // tgroup), ngroups)-1 of the next
    integration. Needs scikit-image (imported here, as stcal uses it).

    Parameters
    ----------
    groupdq : ndarray of uint8, (nints, ngroups, ny, nx)
        Whole frames; not modified.
    params : tsogpu.config.Jump
    tgroup : float

    Returns
    -------
    (ndarray of uint8 (nints, ngroups, ny, nx), int)
        New GROUPDQ and the snowball count.
    """
    try:
        import skimage  # noqa: F401
    except ImportError as err:
        raise ConfigError(
            "jump.expand_large_events=True needs scikit-image (stcal's snowball code uses it); "
            "install scikit-image or set expand_large_events=False"
        ) from err
    gdq = np.array(groupdq, dtype=dq.GROUPDQ_DTYPE, copy=True)
    nints, ngrps, nrows, ncols = gdq.shape
    sb = _SnowballParams(
        min_sat_radius_extend=params.min_sat_radius_extend,
        sat_expand=params.sat_expand * 2,
        max_extended_width=params.max_extended_radius * 2,
        expand_factor=params.expand_factor,
    )
    persist = np.zeros((nints, nrows, ncols), dtype=np.uint8)
    total = 0
    next_new_sat = None
    for intg in range(nints):
        for grp in range(1, ngrps):
            current_sat = gdq[intg, grp] & _SAT
            new_sat = current_sat * np.logical_not(gdq[intg, grp - 1] & _SAT)
            if grp < ngrps - 1:
                # (at the last group stcal reuses the previous group's array; it is not used then)
                next_new_sat = (gdq[intg, grp + 1] & _SAT) * np.logical_not(current_sat)
            next_sat_ellipses = _regions(next_new_sat & _SAT, params.min_sat_area)
            sat_ellipses = _regions(new_sat & _SAT, params.min_sat_area)
            jump_ellipses = _regions(gdq[intg, grp] & _JUMP, params.min_jump_area)
            if params.sat_required_snowball:
                snowballs = _make_snowballs(
                    gdq,
                    persist,
                    intg,
                    grp,
                    jump_ellipses,
                    sat_ellipses,
                    next_sat_ellipses,
                    params,
                    sb,
                )
            else:
                snowballs = jump_ellipses
            total += len(snowballs)
            _extend_ellipses(gdq, intg, grp, snowballs, sb)

    persist_grps = int(params.snowball_time_masked_next_int // tgroup)
    if params.mask_snowball_core_next_int and persist_grps >= 1:
        last = min(persist_grps, ngrps)
        for intg in range(1, nints):
            gdq[intg, 1:last] |= persist[intg - 1][np.newaxis]
    return gdq, total


@dataclass(frozen=True)
class _SnowballParams:
    min_sat_radius_extend: float
    sat_expand: int
    max_extended_width: int
    expand_factor: float


def _make_snowballs(
    gdq, persist, intg, grp, jump_ellipses, sat_ellipses, next_sat_ellipses, params, sb
):
    """stcal ``make_snowballs`` + ``extend_saturation``; gdq and persist updated in place."""
    ngroups, nrows = gdq.shape[1], gdq.shape[2]
    low = params.edge_size
    high = max(0, nrows - params.edge_size)  # stcal compares both x and y with nrows
    snowballs = []
    for jump in jump_ellipses:
        if jump[0][0] < low or jump[0][1] < low or jump[0][0] > high or jump[0][1] > high:
            snowballs.append(jump)
        else:
            for sat in sat_ellipses:
                if _point_inside_ellipse(sat[0], jump) and jump not in snowballs:
                    snowballs.append(jump)
            if grp < ngroups - 1:
                for nsat in next_sat_ellipses:
                    if _point_inside_ellipse(nsat[0], jump) and jump not in snowballs:
                        snowballs.append(jump)

    cube = gdq[intg]
    shape = cube.shape[1:]
    for ellipse in sat_ellipses:
        ceny, cenx = ellipse[0][0], ellipse[0][1]
        if min(ellipse[1][1], ellipse[1][0]) > sb.min_sat_radius_extend:
            axis1 = min(ellipse[1][0] + sb.sat_expand, sb.max_extended_width)
            axis2 = min(ellipse[1][1] + sb.sat_expand, sb.max_extended_width)
            (y1, y2, x1, x2), inside = _ellipse_subim(ceny, cenx, axis1, axis2, ellipse[2], shape)
            for g in range(grp, cube.shape[0]):
                cube[g, y1:y2, x1:x2][inside] = _SAT
            (y1, y2, x1, x2), inside = _ellipse_subim(
                ceny, cenx, ellipse[1][0], ellipse[1][1], ellipse[2], shape
            )
            persist[intg, y1:y2, x1:x2][inside] = _JUMP
    return snowballs


def _extend_ellipses(gdq, intg, grp, ellipses, sb):
    """stcal ``extend_ellipses`` with expand_by_ratio and num_grps_masked=0."""
    shape = gdq.shape[2:]
    for ellipse in ellipses:
        ax0, ax1 = ellipse[1][0], ellipse[1][1]
        f = sb.expand_factor
        if ax1 < ax0:
            axis1, axis2 = ax0 + (f - 1.0) * ax1, ax1 * f
        else:
            axis1, axis2 = ax0 * f, ax1 + (f - 1.0) * ax0
        axis1 = min(axis1, sb.max_extended_width)
        axis2 = min(axis2, sb.max_extended_width)
        axes = (round(axis1 / 2), round(axis2 / 2))
        (y1, y2, x1, x2), inside = _ellipse_subim(
            ellipse[0][0], ellipse[0][1], axes[0] * 2, axes[1] * 2, ellipse[2], shape
        )
        plane = gdq[intg, grp, y1:y2, x1:x2]
        inside = inside & ((plane & _SAT) != _SAT)
        plane[inside] |= _JUMP


def _point_inside_ellipse(point, ellipse):
    angle = np.radians(180 - ellipse[2])
    cos_angle = np.cos(angle)
    sin_angle = np.sin(angle)
    xc = point[0] - ellipse[0][0]
    yc = point[1] - ellipse[0][1]
    xct = xc * cos_angle - yc * sin_angle
    yct = xc * sin_angle + yc * cos_angle
    if ellipse[1][1] >= ellipse[1][0]:
        semi_major, semi_minor = ellipse[1][1] * 0.5, ellipse[1][0] * 0.5
    else:
        semi_major, semi_minor = ellipse[1][0] * 0.5, ellipse[1][1] * 0.5
    return (xct**2 / semi_major**2) + (yct**2 / semi_minor**2) <= 1


def _ellipse_subim(ceny, cenx, axis1, axis2, alpha, shape):
    """stcal ``ellipse_subim``: (iy1, iy2, ix1, ix2) and a bool mask of the filled ellipse."""
    from skimage.draw import ellipse as sk_ellipse

    yc, xc = round(ceny), round(cenx)
    half = max(round(axis1 / 2), round(axis2 / 2)) + 2
    # stcal's naming: the first coordinate indexes columns
    ix1 = max(yc - half, 0)
    ix2 = min(yc + half + 1, shape[1])
    iy1 = max(xc - half, 0)
    iy2 = min(xc + half + 1, shape[0])
    mask = np.zeros((iy2 - iy1, ix2 - ix1), dtype=bool)
    r1, r2 = round(axis1 / 2), round(axis2 / 2)
    if r1 != 0 and r2 != 0:
        rr, cc = sk_ellipse(xc - iy1, yc - ix1, r2, r1, (iy2 - iy1, ix2 - ix1), np.radians(alpha))
        mask[rr, cc] = True
    return (iy1, iy2, ix1, ix2), mask


def _regions(image, min_area):
    """stcal ``_sk_filter_areas``: ((cx, cy), (minor-1, major-1), angle_deg) per region."""
    from skimage import measure

    out = []
    for region in measure.regionprops(measure.label(image)):
        if region.area_filled < min_area:
            continue
        w = region.axis_major_length - 1
        h = region.axis_minor_length - 1
        out.append(
            (
                (float(region.centroid[1]), float(region.centroid[0])),
                (h, w),
                np.degrees(region.orientation),
            )
        )
    return out
