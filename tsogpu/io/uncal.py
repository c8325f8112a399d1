"""Read a Level-1b uncal segment into a :class:`tsogpu.segment.Segment`.

The SCI extension (uint16, or int16 with BZERO=32768) becomes float32, as jwst's RampModel
does on opening; PIXELDQ/GROUPDQ are taken from the file when present with the right
shape and are zeros otherwise (jwst dq_init's ``check_dimensions``). With ``raw=True`` SCI's
bytes are read as stored, straight into a caller's buffer, and the backends convert them.
"""

from __future__ import annotations

import errno
import logging
import os
import stat

import numpy as np
from astropy.io import fits

from .. import dq
from ..errors import InputError
from ..segment import FILE_COUNTS, Exposure, Segment
from . import positional

log = logging.getLogger(__name__)

# keyword -> (Exposure field, type); all required
REQUIRED = {
    "INSTRUME": ("instrument", str),
    "DETECTOR": ("detector", str),
    "EXP_TYPE": ("exp_type", str),
    "READPATT": ("readpatt", str),
    "NINTS": ("nints", int),
    "NGROUPS": ("ngroups", int),
    "NFRAMES": ("nframes", int),
    "GROUPGAP": ("groupgap", int),
    "TFRAME": ("tframe", float),
    "TGROUP": ("tgroup", float),
    "SUBARRAY": ("subarray", str),
    "SUBSTRT1": ("substrt1", int),
    "SUBSTRT2": ("substrt2", int),
    "SUBSIZE1": ("subsize1", int),
    "SUBSIZE2": ("subsize2", int),
    "FASTAXIS": ("fastaxis", int),
    "SLOWAXIS": ("slowaxis", int),
    "NOUTPUTS": ("noutputs", int),
}
OPTIONAL = {
    "FRMDIVSR": ("frame_divisor", int),
    "ZEROFRAM": ("zero_frame", bool),
    "EXSEGNUM": ("exsegnum", int),
    "EXSEGTOT": ("exsegtot", int),
    "INTSTART": ("intstart", int),
    "INTEND": ("intend", int),
    "NSAMPLES": ("nsamples", int),
}


def read_exposure(header, path="uncal"):
    """Build an :class:`Exposure` from a primary (or merged) header; errors name the keyword."""
    values = {}
    missing = [k for k in REQUIRED if k not in header or header[k] is None]
    if missing:
        raise InputError(f"{path}: missing keyword(s) {', '.join(missing)} in the primary header")
    for key, (name, kind) in {**REQUIRED, **OPTIONAL}.items():
        if key not in header or header[key] is None:
            continue
        value = header[key]
        try:
            values[name] = _convert(value, kind)
        except (TypeError, ValueError):
            raise InputError(
                f"{path}: keyword {key} should be {kind.__name__}, got {value!r}"
            ) from None
    exposure = Exposure(**values)
    for key in ("NINTS", "NGROUPS", "NFRAMES", "SUBSIZE1", "SUBSIZE2", "NOUTPUTS"):
        if getattr(exposure, REQUIRED[key][0]) < 1:
            raise InputError(f"{path}: keyword {key} must be >= 1, got {header[key]!r}")
    if exposure.groupgap < 0:
        raise InputError(f"{path}: keyword GROUPGAP must be >= 0, got {exposure.groupgap}")
    _check_timing(path, exposure)
    _check_int_range(path, exposure)
    return exposure


# jwst's definition of a group's time: TGROUP = (NFRAMES + GROUPGAP) * TFRAME. The archive
# writes both to a few decimals, so they agree within this relative tolerance.
TGROUP_TOLERANCE = 1e-3


def _check_timing(path, exposure):
    """NFRAMES and GROUPGAP against TFRAME and TGROUP (the readout pattern's frames per group)."""
    if exposure.tframe <= 0 or exposure.tgroup <= 0:
        raise InputError(
            f"{path}: TFRAME and TGROUP must be positive, got {exposure.tframe}, {exposure.tgroup}"
        )
    expected = (exposure.nframes + exposure.groupgap) * exposure.tframe
    if abs(exposure.tgroup - expected) > TGROUP_TOLERANCE * expected:
        raise InputError(
            f"{path}: TGROUP = {exposure.tgroup} but (NFRAMES + GROUPGAP) * TFRAME = "
            f"({exposure.nframes} + {exposure.groupgap}) * {exposure.tframe} = {expected:.6g}; "
            "NFRAMES or GROUPGAP does not match the readout"
        )


def _check_int_range(path, exposure):
    """1 <= INTSTART <= INTEND <= NINTS (NINTS counts the whole exposure's integrations)."""
    start, end = exposure.intstart, exposure.intend
    if start is None and end is None:
        return
    if start is None or end is None:
        raise InputError(f"{path}: INTSTART and INTEND come together, got only one of them")
    if not 1 <= start <= end <= exposure.nints:
        raise InputError(
            f"{path}: expected 1 <= INTSTART <= INTEND <= NINTS, got INTSTART={start}, "
            f"INTEND={end}, NINTS={exposure.nints}"
        )


def _convert(value, kind):
    if kind is bool:
        if isinstance(value, (bool, np.bool_)):
            return bool(value)
        if isinstance(value, str) and value.strip().upper() in ("T", "F", "TRUE", "FALSE"):
            return value.strip().upper() in ("T", "TRUE")
        raise ValueError(value)
    if kind is int:
        if isinstance(value, float) and not value.is_integer():
            raise ValueError(value)
        if isinstance(value, str):
            raise ValueError(value)
        return int(value)
    if kind is float:
        if isinstance(value, str):
            raise ValueError(value)
        return float(value)
    return str(value).strip()


def open_fits(path):
    """Open a FITS file read-only, turning every failure into an InputError naming the file."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise InputError(f"{path}: no such file")
    if os.path.isdir(path):
        raise InputError(f"{path}: is a directory, expected an uncal FITS file")
    check_regular(path)
    try:
        hdul = fits.open(
            path, mode="readonly", memmap=True, lazy_load_hdus=False, do_not_scale_image_data=True
        )
        hdul.verify("exception")
    except Exception as exc:  # astropy raises OSError, ValueError, VerifyError, ...
        raise InputError(f"{path}: not a readable FITS file ({_reason(exc)})") from None
    return hdul


def check_regular(path):
    """Refuse what is not a regular file (``/dev/zero``, a FIFO, a socket) before reading it:
    astropy would read such a stream without end."""
    try:
        mode = os.stat(path).st_mode
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc.strerror})") from None
    if not stat.S_ISREG(mode):
        raise InputError(f"{path}: not a regular file (a device, FIFO or socket); expected FITS")


def _reason(exc):
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def read_primary_header(path):
    """The primary header of ``path`` as a dict (for CRDS parameters and ``tsogpu info``)."""
    with open_fits(path) as hdul:
        return {k: v for k, v in hdul[0].header.items() if k not in ("COMMENT", "HISTORY", "")}


def inspect_uncal(path):
    """Validate an uncal file's keywords and SCI layout without reading its data.

    Returns
    -------
    exposure : Exposure
    shape : tuple (nints, ngroups, ny, nx) of the segment
    zeroframe : bool, whether the steps will use a ZEROFRAME
    """
    path = os.fspath(path)
    with open_fits(path) as hdul:
        exposure, sci = _exposure_and_sci(hdul, path)
        return exposure, tuple(sci.shape), exposure.zero_frame


def _exposure_and_sci(hdul, path):
    """The keywords and the (lazy) SCI array of an open uncal file, validated."""
    exposure = read_exposure(hdul[0].header, path)
    if "SCI" not in hdul:
        raise InputError(f"{path}: no SCI extension")
    sci = _read_array(hdul, "SCI", path)
    _check_sci(path, exposure, sci)
    if exposure.zero_frame and "ZEROFRAME" not in hdul:
        raise InputError(f"{path}: ZEROFRAM is true but there is no ZEROFRAME extension")
    return exposure, sci


def _check_sci(path, exposure, sci):
    if sci.ndim != 4:
        raise InputError(
            f"{path}: SCI has {sci.ndim} dimensions {sci.shape}, "
            "expected 4 (nints, ngroups, ny, nx)"
        )
    if sci.dtype.newbyteorder("=") != np.uint16:
        raise InputError(
            f"{path}: SCI has dtype {sci.dtype.name}, expected uint16 raw counts "
            "(an uncal file; calibrated ramps cannot be re-run)"
        )
    _check_shape(path, exposure, sci.shape)


def read_uncal(path, ints=None, raw=False, out=None):
    """Read one uncal segment, or a range of its integrations.

    Parameters
    ----------
    path : str or Path
        A Level-1b ``*_uncal.fits`` file.
    ints : slice, optional
        Integrations to read (0-based, within the segment); all by default. Only that part
        of SCI is read from disk.
    raw : bool
        Keep ``data`` as the counts, unconverted (each backend converts them in its own pass,
        a GPU on the device: ``ops.to_device``). Where SCI is a plain uncompressed image with
        BITPIX=16, BZERO=32768, BSCALE=1 (an uncal file as the archive gives it), its bytes as
        stored, read from the file in one pass: big-endian int16,
        :data:`tsogpu.segment.FILE_COUNTS`; otherwise (a compressed file, say) uint16 counts
        read through astropy, and a log line (once per file) says why.
    out : ndarray, optional
        With ``raw``: a C-contiguous buffer (any dtype; a pinned host buffer on the GPU) of at
        least 2 bytes per sample read, that ``data`` is then a view of.

    Returns
    -------
    Segment
        ``data`` float32 (nints, ngroups, ny, nx) (or the counts, ``raw``), ``groupdq`` uint8,
        ``pixeldq`` uint32, ``zeroframe`` float32 (nints, ny, nx) when ZEROFRAM is true,
        ``int_times``.

    Raises
    ------
    InputError
        Naming the file and what is wrong with it.
    """
    path = os.fspath(path)
    with open_fits(path) as hdul:
        exposure, sci = _exposure_and_sci(hdul, path)
        nints, ngroups, ny, nx = sci.shape
        ints = slice(0, nints) if ints is None else slice(*ints.indices(nints))
        if raw:
            data = _read_counts(hdul, path, sci, ints, out)
        else:
            data = sci[ints].astype(np.float32)

        pixeldq = _optional_dq(hdul, "PIXELDQ", (ny, nx), dq.PIXELDQ_DTYPE, path)
        groupdq = _optional_dq(hdul, "GROUPDQ", sci.shape, dq.GROUPDQ_DTYPE, path, ints)

        zeroframe = None
        if exposure.zero_frame:
            zf = _read_array(hdul, "ZEROFRAME", path)
            if zf.shape != (sci.shape[0], ny, nx):
                raise InputError(
                    f"{path}: ZEROFRAME has shape {zf.shape}, expected {(sci.shape[0], ny, nx)}"
                )
            zeroframe = zf[ints].astype(np.float32)

        int_times = _read_table(hdul, "INT_TIMES", path)

    return Segment(
        data=data,
        groupdq=groupdq,
        pixeldq=pixeldq,
        exposure=exposure,
        zeroframe=zeroframe,
        int_times=int_times,
        source=path,
        first_integration=ints.start,
    )


def _check_shape(path, exposure, shape):
    nints, ngroups, ny, nx = shape
    if ngroups != exposure.ngroups:
        raise InputError(f"{path}: SCI has {ngroups} groups but NGROUPS = {exposure.ngroups}")
    if (ny, nx) != (exposure.subsize2, exposure.subsize1):
        raise InputError(
            f"{path}: SCI frame is {ny} x {nx} (rows x cols) but SUBSIZE2 x SUBSIZE1 = "
            f"{exposure.subsize2} x {exposure.subsize1}"
        )
    if exposure.intstart is not None and exposure.intend is not None:
        expected = exposure.intend - exposure.intstart + 1
        if nints != expected:
            raise InputError(
                f"{path}: SCI has {nints} integrations but INTSTART={exposure.intstart}, "
                f"INTEND={exposure.intend} imply {expected}"
            )
    elif nints != exposure.nints:
        raise InputError(f"{path}: SCI has {nints} integrations but NINTS = {exposure.nints}")


def _read_counts(hdul, path, sci, ints, out):
    """SCI's integrations ``ints`` unconverted (see :func:`read_uncal`'s ``raw``), in ``out``."""
    offset, why = _sci_offset(hdul)
    if offset is not None and ints.step not in (None, 1):
        offset, why = None, f"integrations {ints} are not contiguous"
    shape = (len(range(sci.shape[0])[ints]), *sci.shape[1:])
    if offset is None:
        if path not in _SAID:  # once per file, not once per chunk
            _SAID.add(path)
            log.info("%s: SCI read through astropy (%s)", path, why)
        data = _in(out, shape, np.dtype(np.uint16))
        data[...] = sci[ints]
        return data
    data = _in(out, shape, FILE_COUNTS)
    per_int = 2 * int(np.prod(sci.shape[1:]))  # bytes of one integration
    buf = data.reshape(-1).view(np.uint8)
    _pread(path, buf, offset, ints.start * per_int, sci.shape[0] * per_int)
    return data


_SAID = set()  # files whose SCI was read through astropy, said so


def _sci_offset(hdul):
    """(byte offset of SCI's data in the file, None) where its bytes can be read as stored:
    big-endian int16 with BZERO=32768, uncompressed; else (None, why not)."""
    index = hdul.index_of("SCI")
    hdu, info = hdul[index], hdul.fileinfo(index)
    compression = getattr(info["file"], "compression", None) if info else None
    if compression:
        return None, f"the file is {compression}-compressed"
    if isinstance(hdu, fits.CompImageHDU):
        return None, "SCI is a tile-compressed image"
    h = hdu.header
    scaling = (h.get("BITPIX"), h.get("BZERO", 0), h.get("BSCALE", 1))
    if scaling != (16, 32768, 1):
        return None, "SCI has BITPIX, BZERO, BSCALE = {}, {}, {}, not 16, 32768, 1".format(*scaling)
    return info["datLoc"], None


def _in(out, shape, dtype):
    """An array of ``shape`` and ``dtype`` in ``out``'s memory (a new one when ``out`` is None)."""
    if out is None:
        return np.empty(shape, dtype)
    nbytes = int(np.prod(shape)) * dtype.itemsize
    if not isinstance(out, np.ndarray) or not out.flags.c_contiguous or out.nbytes < nbytes:
        raise ValueError(
            f"out: a C-contiguous ndarray of at least {nbytes} bytes is needed, got "
            f"{type(out).__name__} {getattr(out, 'nbytes', '')}"
        )
    return out.reshape(-1).view(np.uint8)[:nbytes].view(dtype).reshape(shape)


def _pread(path, buf, data_at, start, length):
    """Read ``len(buf)`` bytes at ``data_at + start`` of the file into ``buf`` (uint8), where
    the data runs for ``length`` bytes from ``data_at``; a short file is an InputError."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError as exc:
        raise InputError(f"{path}: cannot read SCI ({exc.strerror})") from None
    try:
        size = os.fstat(fd).st_size
        if size < data_at + length:
            raise InputError(
                f"{path}: cannot read SCI (its data ends at byte {data_at + length}, the file "
                f"at {size}); truncated file?"
            )
        if not positional(fd, buf, data_at + start):
            raise InputError(f"{path}: cannot read SCI (the file ended early); truncated file?")
    except OSError as exc:
        raise InputError(f"{path}: cannot read SCI ({exc.strerror})") from None
    finally:
        os.close(fd)


class _Unsigned16:
    """A lazy uint16 view of an int16 + BZERO=32768 memory map: slicing reads only the slice."""

    def __init__(self, raw):
        self.raw, self.shape, self.ndim = raw, raw.shape, raw.ndim
        self.dtype = np.dtype(raw.dtype.byteorder + "u2")

    def __getitem__(self, key):
        # int16 + 32768 == the same bits with the sign bit flipped, read as uint16
        return np.asarray(self.raw[key]).view(self.dtype) ^ np.uint16(0x8000)

    def astype(self, dtype):
        return self[...].astype(dtype)


def _read_array(hdul, extname, path):
    """An image extension's values (memory-mapped where possible; uint16 undone exactly)."""
    hdu = hdul[extname]
    try:
        raw = hdu.data
        bzero, bscale = hdu.header.get("BZERO", 0), hdu.header.get("BSCALE", 1)
        if raw.dtype.kind == "i" and raw.dtype.itemsize == 2 and bzero == 32768 and bscale == 1:
            return _Unsigned16(raw)
        if bzero != 0 or bscale != 1:
            return np.asarray(raw * bscale + bzero)
        return raw
    except Exception as exc:
        if isinstance(exc, MemoryError) or getattr(exc, "errno", None) == errno.ENOMEM:
            # not the file's fault: the caller may retry in smaller chunks
            raise MemoryError(f"{path}: no memory to map {extname} ({_reason(exc)})") from None
        raise InputError(
            f"{path}: cannot read {extname} ({_reason(exc)}); truncated file?"
        ) from None


def image_dtype(hdu):
    """The dtype an image extension's values have once BZERO/BSCALE are applied."""
    bitpix = hdu.header["BITPIX"]
    bzero, bscale = hdu.header.get("BZERO", 0), hdu.header.get("BSCALE", 1)
    if bscale == 1 and bitpix > 0 and bzero == 2 ** (bitpix - 1):
        return np.dtype(f"uint{bitpix}")
    if bscale == 1 and bzero == 0:
        return np.dtype(
            {8: "uint8", 16: "int16", 32: "int32", 64: "int64"}.get(bitpix)
            or {-32: "float32", -64: "float64"}[bitpix]
        )
    return np.dtype("float32" if bitpix in (8, 16, -32) else "float64")


def _optional_dq(hdul, extname, shape, dtype, path, ints=slice(None)):
    if extname in hdul and hdul[extname].data is not None:
        arr = _read_array(hdul, extname, path)
        if arr.shape == shape:
            return np.asarray(arr[ints] if len(shape) == 4 else arr[...]).astype(dtype)
    shape = shape if len(shape) == 2 else (len(range(shape[0])[ints]),) + shape[1:]
    return np.zeros(shape, dtype=dtype)


def _read_table(hdul, extname, path):
    if extname not in hdul:
        return None
    try:
        return np.asarray(hdul[extname].data).copy()
    except Exception as exc:
        raise InputError(f"{path}: cannot read table {extname} ({_reason(exc)})") from None
