"""Where a reference array lies on the detector, and the part of it the science subarray needs.

As jwst's ``lib/reffile_utils.py`` decides it: ``ref_matches_sci`` (a reference without
SUBSTRT/SUBSIZE keywords is full frame, or unusable) and ``get_subarray_model`` (the cut-out).
Darks and MIRI resets are never cut (jwst subtracts them as they are): :func:`uncut_window`.
"""

from ..errors import ReferenceFileError

# Full-frame (ny, nx) that jwst assumes for a reference without SUBSTRT/SUBSIZE keywords.
FULL_FRAME = {"MIRI": (1024, 1032)}
FULL_FRAME_NIR = (2048, 2048)


def cut(array, window):
    """``array[..., y0:y1, x0:x1]``, or the array itself when window is None."""
    if window is None:
        return array
    y0, y1, x0, x1 = window
    return array[..., y0:y1, x0:x1]


def geometry_text(xstart, ystart, xsize, ysize):
    return f"SUBSTRT1={xstart}, SUBSTRT2={ystart}, SUBSIZE1={xsize}, SUBSIZE2={ysize}"


def science_geometry(exposure):
    return (exposure.substrt1, exposure.substrt2, exposure.subsize1, exposure.subsize2)


def ref_geometry(header, shape, where):
    """The reference's (xstart, ystart, xsize, ysize, xbound, ybound) as jwst derives them.

    ``ref_matches_sci``: without all four SUBSTRT/SUBSIZE keywords a full-frame array counts as
    full frame; sizes that disagree with the array are replaced by the array's (except the
    NIRSpec IRS2 2048-vs-3200 rows). ``get_subarray_model`` bounds the slice by the header sizes;
    the bounds here are the smaller of header and array sizes, so a slice never comes out short.
    """
    ny, nx = shape[-2:]
    keys = ("SUBSTRT1", "SUBSTRT2", "SUBSIZE1", "SUBSIZE2")
    if any(k not in header for k in keys):
        instrument = str(header.get("INSTRUME", "")).strip().upper()
        full = FULL_FRAME.get(instrument, FULL_FRAME_NIR)
        if (ny, nx) != full:
            raise ReferenceFileError(
                f"{where}: no SUBSTRT1/SUBSTRT2/SUBSIZE1/SUBSIZE2 keywords and the array "
                f"(ny, nx)=({ny}, {nx}) is not full frame {full}, so its position on the "
                "detector is unknown"
            )
        return 1, 1, nx, ny, nx, ny
    try:
        xstart, ystart, hxsize, hysize = (int(header[k]) for k in keys)
    except (TypeError, ValueError):
        raise ReferenceFileError(
            f"{where}: SUBSTRT/SUBSIZE keywords are not integers "
            f"({', '.join(f'{k}={header[k]!r}' for k in keys)})"
        ) from None
    if xstart < 1 or ystart < 1:
        raise ReferenceFileError(
            f"{where}: invalid subarray corner SUBSTRT1={xstart}, SUBSTRT2={ystart} (must be >= 1)"
        )
    xsize = nx
    ysize = hysize if (hysize == 2048 and ny == 3200) else ny
    return xstart, ystart, xsize, ysize, min(hxsize, nx), min(hysize, ny)


def cutout_window(header, shape, where, exposure):
    """None when the reference already matches the science subarray, else (y0, y1, x0, x1)."""
    xs_ref, ys_ref, xsize_ref, ysize_ref, xbound, ybound = ref_geometry(header, shape, where)
    xs_sci, ys_sci, xsize_sci, ysize_sci = science_geometry(exposure)
    if (xs_ref, ys_ref, xsize_ref, ysize_ref) == (xs_sci, ys_sci, xsize_sci, ysize_sci):
        return None
    x0 = xs_sci - xs_ref
    y0 = ys_sci - ys_ref
    x1 = x0 + xsize_sci
    y1 = y0 + ysize_sci
    if x0 < 0 or y0 < 0 or x1 > xbound or y1 > ybound:
        raise ReferenceFileError(
            f"{where}: the science subarray is not contained in the reference. "
            f"Science: {geometry_text(xs_sci, ys_sci, xsize_sci, ysize_sci)}; "
            f"reference: {geometry_text(xs_ref, ys_ref, xsize_ref, ysize_ref)} "
            f"(array (ny, nx)={tuple(shape[-2:])})"
        )
    return y0, y1, x0, x1


def uncut_window(header, shape, where, exposure, kind="dark"):
    """Darks and resets are not cut (jwst dark_current, reset): shape and, when given, corner
    must match the science subarray; always None."""
    xs_sci, ys_sci, xsize_sci, ysize_sci = science_geometry(exposure)
    if tuple(shape[-2:]) != (ysize_sci, xsize_sci):
        raise ReferenceFileError(
            f"{where}: {kind} SCI has shape {shape}, (ny, nx)={tuple(shape[-2:])}, but the science "
            f"subarray {exposure.subarray!r} is (ny, nx)=({ysize_sci}, {xsize_sci}); jwst does "
            f"not cut {kind}s, give a {kind} taken with the science subarray"
        )
    corner = (header.get("SUBSTRT1"), header.get("SUBSTRT2"))
    if None not in corner and (int(corner[0]), int(corner[1])) != (xs_sci, ys_sci):
        raise ReferenceFileError(
            f"{where}: {kind} subarray corner SUBSTRT1={corner[0]}, SUBSTRT2={corner[1]} differs "
            f"from the science SUBSTRT1={xs_sci}, SUBSTRT2={ys_sci}"
        )
    return None
