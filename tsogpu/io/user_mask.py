"""The user's DQ mask (``dq_init.user_mask``, ``--dq-mask FILE``): an image or a pixel list.

jwst's dq_init takes a FITS image (``user_supplied_dq``) and ORs its values into the mask
reference. tsogpu reads either:

* an image: a ``.npy`` file or the first 2-D image of a FITS file, shape (ny, nx) of the
  science (DMS) frame of the segment's subarray; a nonzero pixel is flagged;
* a text file (any other suffix): one pixel or region per line, ``X Y``, where each of X and
  Y is a 0-based pixel number or a range ``A:B`` (A included, B excluded, as a Python slice;
  an empty end means the edge of the frame), X along NAXIS1 (columns) and Y along NAXIS2
  (rows), in the science frame; ``#`` starts a comment.

The flagged pixels get one DQ bit, ``dq_init.user_mask_bit``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from astropy.io import fits

from .. import dq
from ..errors import InputError

__all__ = ["read_user_mask"]

_IMAGE_SUFFIXES = (".fits", ".fit", ".fts", ".fits.gz", ".npy")


def read_user_mask(path, shape, bit="DO_NOT_USE"):
    """The user's DQ mask as the values dq_init ORs into the mask reference.

    Parameters
    ----------
    path : str or Path
        A FITS or ``.npy`` image, or a text list of pixels and regions (module docstring).
    shape : tuple of int
        (ny, nx), the segment's science frame.
    bit : str
        A name of ``tsogpu.dq.PIXEL``.

    Returns
    -------
    ndarray of uint32, (ny, nx)
        ``bit`` where flagged, 0 elsewhere.

    Raises
    ------
    InputError
        A missing or unreadable file, an image of another shape, a line that is not a pixel
        or region, or a pixel or region outside the frame; the message names the file.
    """
    path = Path(path)
    shape = tuple(int(n) for n in shape)
    if not path.is_file():
        raise InputError(f"dq_init.user_mask: {path}: file not found")
    if path.name.lower().endswith(_IMAGE_SUFFIXES):
        flagged = _read_image(path, shape)
    else:
        flagged = _read_list(path, shape)
    value = dq.PIXELDQ_DTYPE(dq.PIXEL[bit])
    return np.where(flagged, value, dq.PIXELDQ_DTYPE(0))


def _read_image(path, shape):
    try:
        if path.suffix.lower() == ".npy":
            arr = np.load(path, allow_pickle=False)
        else:
            with fits.open(path) as hdul:
                arr = next(
                    (np.asarray(h.data) for h in hdul if h.data is not None and h.data.ndim == 2),
                    None,
                )
    except (OSError, ValueError) as exc:
        raise InputError(f"dq_init.user_mask: {path}: not a FITS or .npy image ({exc})") from None
    if arr is None or np.ndim(arr) != 2:
        raise InputError(f"dq_init.user_mask: {path}: expected a 2-D image (ny, nx)")
    if arr.shape != shape:
        raise InputError(
            f"dq_init.user_mask: {path}: image shape {arr.shape} (ny, nx), the segment's "
            f"science frame is {shape}; give the mask in the subarray's DMS frame"
        )
    return np.asarray(arr) != 0


def _read_list(path, shape):
    try:
        lines = path.read_text().splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"dq_init.user_mask: {path}: not a readable text file ({exc})") from None
    ny, nx = shape
    flagged = np.zeros(shape, dtype=bool)
    for number, line in enumerate(lines, start=1):
        text = line.split("#", 1)[0].strip()
        if not text:
            continue
        parts = text.replace(",", " ").split()
        if len(parts) != 2:
            raise InputError(
                f"dq_init.user_mask: {path}, line {number}: expected 'X Y' (a pixel) or "
                f"'X0:X1 Y0:Y1' (a region), 0-based, got {line.strip()!r}"
            )
        where = f"dq_init.user_mask: {path}, line {number}"
        xs = _span(parts[0], nx, where, "x")
        ys = _span(parts[1], ny, where, "y")
        flagged[ys, xs] = True
    return flagged


def _span(text, size, where, axis):
    """A 0-based pixel ``N`` or range ``A:B`` (end excluded) along an axis of ``size`` pixels."""
    try:
        if ":" in text:
            a, b = text.split(":", 1)
            lo = int(a) if a.strip() else 0
            hi = int(b) if b.strip() else size
        else:
            lo = int(text)
            hi = lo + 1
    except ValueError:
        raise InputError(f"{where}: {axis} {text!r} is not a pixel number or a range A:B") from None
    if not 0 <= lo < hi <= size:
        raise InputError(
            f"{where}: {axis} {text!r} is outside the frame (0..{size - 1} along {axis}) or empty"
        )
    return slice(lo, hi)
