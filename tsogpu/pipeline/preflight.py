"""Before a segment's pixels are read: can the output folder take its products?

An unwritable folder or a disk too small is the user's to fix (exit 2, one line), found
before minutes of work, not an internal error at the end; a disk that fills while the
products are written gives the same line (:func:`no_space`, :func:`space_message`).
"""

import errno
import shutil
import tempfile

from ..errors import OutputError
from .planning import tiles

GB = 1e9
# float32 SCI, ERR, VAR_POISSON, VAR_RNOISE and uint32 DQ per pixel of a rate image
_RATE_BYTES = 5 * 4


def check_writable(out_dir):
    """Make ``out_dir`` if needed and write a file in it, or raise :class:`OutputError`."""
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=out_dir):
            pass
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise OutputError(f"cannot write to {out_dir}: {reason}") from None


def bytes_needed(shape, config, plan):
    """About how many bytes the segment's products and scratch take in the output folder:
    the rate products (and chi2 where asked), the ramp where saved or not fitted, the
    chunked runner's scratch ramp (float32 data, uint8 GROUPDQ), kept by pass 2's windows
    (each tile with its halo) unless the ramp is saved."""
    total = product_bytes(shape, config)
    if not plan.in_memory:
        nints, ngroups, ny, nx = (int(n) for n in shape)
        pixels = ny * nx
        if not config.save_ramp:
            windows = tiles(plan, ny, nx).values()
            pixels = sum((yhi - ylo) * (xhi - xlo) for _, _, ylo, yhi, xlo, xhi in windows)
        total += nints * ngroups * pixels * (4 + 1)
    return total


def product_bytes(shape, config):
    """About how many bytes the segment's products take (on disk, and as a Result in
    memory): the rate products (and chi2 where asked), the ramp where saved or not fitted."""
    nints, ngroups, ny, nx = (int(n) for n in shape)
    total = (nints + 1) * ny * nx * (_RATE_BYTES + 4)  # + chi2 or a side product at most
    if config.save_ramp or "ramp_fit" in config.skip:
        total += nints * ngroups * ny * nx * (4 + 1)
    return total


def space_message(out_dir, needed):
    try:
        free = shutil.disk_usage(out_dir).free
    except OSError:
        free = 0
    return f"no space left on {out_dir}: needs ~{needed / GB:.2f} GB, has {free / GB:.2f} GB"


def check_space(out_dir, needed):
    """Raise :class:`OutputError` when ``out_dir``'s file system has less than ``needed``
    bytes free."""
    try:
        free = shutil.disk_usage(out_dir).free
    except OSError:  # a file system that cannot say: try anyway
        return
    if free < needed:
        raise OutputError(space_message(out_dir, needed))


def no_space(exc):
    """Whether ``exc`` or an exception it came from is a full disk or quota (ENOSPC,
    EDQUOT): a writer may wrap it in another error (astropy does)."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


__all__ = ["bytes_needed", "check_space", "check_writable", "no_space", "space_message"]
