"""The calibrated ramp between the chunked runner's passes, in anonymous files on disk."""

import errno
import os
import tempfile

import numpy as np

from ..io import positional


class ScratchRamp:
    """The calibrated ramp between the passes: float32 data and uint8 GROUPDQ files on disk.

    The files are anonymous (``O_TMPFILE``, or unlinked at once where the file system lacks
    it): they have no name in ``folder``, so a run killed even with SIGKILL leaves no scratch
    behind; the system frees their blocks when the process ends.

    Whole integrations (pass 1) and full-width row bands (pass 2's tiles) are written and read
    with positional reads and writes, one per plane: the page cache serves them without
    mapping a page into the process (page faults were a tenth of a native run). Other regions
    (narrow tiles) map the file a few integrations at a time, ``batch_bytes`` of pages at
    most, since a mapped page stays resident until the unmap.
    """

    DTYPES = (np.float32, np.uint8)

    def __init__(self, folder, shape, batch_bytes=64 * 2**20):
        self.shape = shape
        self.batch_bytes = max(1, batch_bytes)
        self.folder = folder
        self.files = []
        size = int(np.prod(shape, dtype=np.int64))
        try:
            for dtype in self.DTYPES:
                fh = tempfile.TemporaryFile(dir=folder)
                self.files.append(fh)
                os.ftruncate(fh.fileno(), size * np.dtype(dtype).itemsize)
        except OSError as exc:
            self.close()
            raise OSError(exc.errno, exc.strerror, f"scratch in {folder}") from None

    def close(self):
        """Close the files (their blocks are freed; maps already made stay valid)."""
        for fh in self.files:
            fh.close()
        self.files = []

    def _map(self, k, mode):
        return np.memmap(self.files[k], self.DTYPES[k], mode, shape=self.shape)

    def _planes(self, k, ints, rows, write, arr):
        """Positional I/O of ``arr`` ((integrations, groups, rows, all columns), C order) at
        integrations ``ints`` and rows ``rows`` (slices, step 1) of file ``k``."""
        nints, ngroups, ny, nx = self.shape
        i0, i1, _ = ints.indices(nints)
        r0, r1, _ = rows.indices(ny)
        item = np.dtype(self.DTYPES[k]).itemsize
        flat = arr.reshape(-1, (r1 - r0) * nx)
        # whole frames are one contiguous range: one call; else one per (integration, group)
        if r1 - r0 == ny:
            spans = [(flat.reshape(-1), i0 * ngroups * ny * nx * item)]
        else:
            spans = [
                (flat[n], ((i * ngroups + g) * ny + r0) * nx * item)
                for n, (i, g) in enumerate((i, g) for i in range(i0, i1) for g in range(ngroups))
            ]
        fd = self.files[k].fileno()
        try:
            for buf, offset in spans:
                if not positional(fd, buf, offset, write):
                    raise OSError(errno.EIO, "the scratch file ended early")
        except OSError as exc:  # a full disk, say: name the scratch folder
            raise OSError(exc.errno, exc.strerror, f"scratch in {self.folder}") from None

    @staticmethod
    def _bands(shape, where):
        """(integrations, rows) when ``where`` is whole integrations or full-width row bands."""
        where = where if isinstance(where, tuple) else (where,)
        where = where + (slice(None),) * (4 - len(where))
        ints, groups, rows, cols = where
        if all(isinstance(s, slice) and s.step in (None, 1) for s in where):
            full = lambda s, n: s.indices(n)[:2] == (0, n)  # noqa: E731
            if full(groups, shape[1]) and full(cols, shape[3]):
                return ints, rows
        return None

    def write(self, where, data, groupdq):
        bands = self._bands(self.shape, where)
        for k, arr in enumerate((data, groupdq)):
            if arr is None:
                continue
            if bands is not None and arr.flags.c_contiguous:
                self._planes(k, *bands, True, arr)
            else:
                mm = self._map(k, "r+")
                mm[where] = arr  # no flush: the page cache serves the reads of pass 2
                del mm

    def read(self, rows, cols):
        """Data and GROUPDQ of all integrations and groups for ``rows`` x ``cols`` (slices)."""
        nints, ngroups, ny, nx = self.shape
        nrows, ncols = len(range(ny)[rows]), len(range(nx)[cols])
        bands = self._bands(self.shape, (slice(None), slice(None), rows, cols))
        out = []
        for k, dtype in enumerate(self.DTYPES):
            arr = np.empty((nints, ngroups, nrows, ncols), dtype)
            if bands is not None:
                self._planes(k, *bands, False, arr)
                out.append(arr)
                continue
            # pages touched by one integration: every row of every group, whole pages
            row_bytes = ncols * np.dtype(dtype).itemsize
            touched = ngroups * nrows * (row_bytes // 4096 + 2) * 4096
            batch = max(1, self.batch_bytes // touched)
            for i0 in range(0, nints, batch):
                mm = self._map(k, "r")
                arr[i0 : i0 + batch] = mm[i0 : i0 + batch, :, rows, cols]
                del mm
            out.append(arr)
        return out

    def read_all(self):
        """The whole ramp, memory-mapped read-only (for writing the _ramp product)."""
        return self._map(0, "r"), self._map(1, "r")
