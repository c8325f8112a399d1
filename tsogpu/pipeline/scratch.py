"""The calibrated ramp between the chunked runner's passes, in anonymous files on disk."""

import errno
import os
import tempfile
import threading

import numpy as np

from ..io import positional


class ScratchRamp:
    """The calibrated ramp between the passes: float32 data and uint8 GROUPDQ files on disk.

    The files are anonymous (``O_TMPFILE``, or unlinked at once where the file system lacks
    it): they have no name in ``folder``, so a run killed even with SIGKILL leaves no scratch
    behind; the system frees their blocks when the process ends.

    Two layouts:

    - ``windows`` None: the ramp as it is in memory. Whole integrations (pass 1) and
      full-width row bands are written and read with positional reads and writes, one per
      plane: the page cache serves them without mapping a page into the process (page faults
      were a tenth of a native run). Other regions (narrow tiles) map the file a few
      integrations at a time, ``batch_bytes`` of pages at most, since a mapped page stays
      resident until the unmap.
    - ``windows``, pass 2's tiles with their halo as (row slice, column slice): one region a
      window, (integrations, groups, rows, columns) in C order, so that pass 1 writes a
      chunk's part of a window and pass 2 reads a whole window each in one contiguous range
      (pass 2 read the ramp plane by plane, or mapped, before: bench/results/README.md). A
      pixel in several windows (a halo) is in each of their regions, and every write
      updates them all.
    """

    DTYPES = (np.float32, np.uint8)

    def __init__(self, folder, shape, batch_bytes=64 * 2**20, windows=None):
        self.shape = shape
        self.batch_bytes = max(1, batch_bytes)
        self.folder = folder
        self.files = []
        self.windows = None if windows is None else [tuple(w) for w in windows]
        self._partial = threading.Lock()  # a window read, changed in part and written back
        self._whole = None  # read_all's maps, once made
        nints, ngroups = shape[:2]
        try:
            for dtype in self.DTYPES:
                item = np.dtype(dtype).itemsize
                fh = tempfile.TemporaryFile(dir=folder)
                self.files.append(fh)
                if self.windows is None:
                    size = int(np.prod(shape, dtype=np.int64)) * item
                else:
                    size = sum(nints * self._record(dtype, w) for w in self.windows)
                os.ftruncate(fh.fileno(), size)
        except OSError as exc:
            self.close()
            raise OSError(exc.errno, exc.strerror, f"scratch in {folder}") from None
        if self.windows is not None:
            # where each window's region starts, per file
            self.offsets = []
            for dtype in self.DTYPES:
                starts = np.cumsum([0] + [nints * self._record(dtype, w) for w in self.windows])
                self.offsets.append([int(s) for s in starts[:-1]])

    def close(self):
        """Close the files (their blocks are freed; maps already made stay valid)."""
        for fh in self.files:
            fh.close()
        self.files = []

    def _map(self, k, mode):
        return np.memmap(self.files[k], self.DTYPES[k], mode, shape=self.shape)

    # ---- the ramp as it is in memory (windows None)
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
        with self._named():
            for buf, offset in spans:
                if not positional(fd, buf, offset, write):
                    raise OSError(errno.EIO, "the scratch file ended early")

    @staticmethod
    def _bands(shape, where):
        """(integrations, rows) when ``where`` is whole integrations or full-width row bands."""
        where = _four(where)
        ints, groups, rows, cols = where
        if all(isinstance(s, slice) and s.step in (None, 1) for s in where):
            full = lambda s, n: s.indices(n)[:2] == (0, n)  # noqa: E731
            if full(groups, shape[1]) and full(cols, shape[3]):
                return ints, rows
        return None

    # ---- one region per window
    def _record(self, dtype, window):
        """Bytes of one integration of ``window`` in its region."""
        rows, cols = window
        ny, nx = self.shape[2:]
        return (
            self.shape[1] * len(range(ny)[rows]) * len(range(nx)[cols]) * np.dtype(dtype).itemsize
        )

    def _window_io(self, k, w, ints, arr, write):
        """Integrations ``ints`` (a range) of window ``w``'s region of file ``k`` from or into
        ``arr`` ((len(ints), groups, rows, cols), C order)."""
        offset = self.offsets[k][w] + ints.start * self._record(self.DTYPES[k], self.windows[w])
        with self._named():
            if not positional(self.files[k].fileno(), arr, offset, write):
                raise OSError(errno.EIO, "the scratch file ended early")

    def _windows_write(self, k, where, arr):
        """``arr`` into every window region that holds part of ``where``."""
        nints, ngroups, ny, nx = self.shape
        ints, groups, rows, cols = _region(self.shape, where)
        if groups != range(ngroups):
            raise ValueError("the scratch ramp is written whole groups at a time")
        for w, (wr, wc) in enumerate(self.windows):
            win_rows, win_cols = range(ny)[wr], range(nx)[wc]
            rs, cs = _overlap(win_rows, rows), _overlap(win_cols, cols)
            if not len(rs) or not len(cs):
                continue
            given = arr[:, :, _local(rs, rows), _local(cs, cols)]
            if len(rs) == len(win_rows) and len(cs) == len(win_cols):
                self._window_io(k, w, ints, np.ascontiguousarray(given), True)
                continue
            part = np.empty((len(ints), ngroups, len(win_rows), len(win_cols)), self.DTYPES[k])
            with self._partial:  # the rest of the window as it is
                self._window_io(k, w, ints, part, False)
                part[:, :, _local(rs, win_rows), _local(cs, win_cols)] = given
                self._window_io(k, w, ints, part, True)

    def _windows_read(self, k, rows, cols, out):
        """``out`` (all integrations, ``rows`` x ``cols``, ranges) from the window regions."""
        ny, nx = self.shape[2:]
        every = range(self.shape[0])
        for w, (wr, wc) in enumerate(self.windows):
            if (range(ny)[wr], range(nx)[wc]) == (rows, cols):
                self._window_io(k, w, every, out, False)
                return
        todo = np.ones((len(rows), len(cols)), bool)
        for w, (wr, wc) in enumerate(self.windows):
            rs, cs = _overlap(range(ny)[wr], rows), _overlap(range(nx)[wc], cols)
            if not len(rs) or not len(cs) or not todo[_local(rs, rows), _local(cs, cols)].any():
                continue
            win_rows, win_cols = range(ny)[wr], range(nx)[wc]
            part = np.empty((*self.shape[:2], len(win_rows), len(win_cols)), self.DTYPES[k])
            self._window_io(k, w, every, part, False)
            out[:, :, _local(rs, rows), _local(cs, cols)] = part[
                :, :, _local(rs, win_rows), _local(cs, win_cols)
            ]
            todo[_local(rs, rows), _local(cs, cols)] = False

    def _named(self):
        return _NamedErrors(self.folder)

    # ---- the interface
    def write(self, where, data, groupdq):
        """``data`` / ``groupdq`` (None: left as they are) at ``where`` (slices of step 1;
        whole groups where the ramp is kept by windows)."""
        self._whole = None
        bands = self._bands(self.shape, where) if self.windows is None else None
        for k, arr in enumerate((data, groupdq)):
            if arr is None:
                continue
            if self.windows is not None:
                self._windows_write(k, where, arr)
            elif bands is not None and arr.flags.c_contiguous:
                self._planes(k, *bands, True, arr)
            else:
                mm = self._map(k, "r+")
                mm[where] = arr  # no flush: the page cache serves the reads of pass 2
                del mm

    def read(self, rows, cols):
        """Data and GROUPDQ of all integrations and groups for ``rows`` x ``cols`` (slices)."""
        nints, ngroups, ny, nx = self.shape
        rows_r, cols_r = range(ny)[rows], range(nx)[cols]
        bands = (
            None if self.windows is not None else self._bands(self.shape, np.s_[:, :, rows, cols])
        )
        out = []
        for k, dtype in enumerate(self.DTYPES):
            arr = np.empty((nints, ngroups, len(rows_r), len(cols_r)), dtype)
            if self.windows is not None:
                self._windows_read(k, rows_r, cols_r, arr)
                out.append(arr)
                continue
            if bands is not None:
                self._planes(k, *bands, False, arr)
                out.append(arr)
                continue
            # pages touched by one integration: every row of every group, whole pages
            row_bytes = len(cols_r) * np.dtype(dtype).itemsize
            touched = ngroups * len(rows_r) * (row_bytes // 4096 + 2) * 4096
            batch = max(1, self.batch_bytes // touched)
            for i0 in range(0, nints, batch):
                mm = self._map(k, "r")
                arr[i0 : i0 + batch] = mm[i0 : i0 + batch, :, rows, cols]
                del mm
            out.append(arr)
        return out

    def read_all(self):
        """The whole ramp, memory-mapped read-only (for writing the _ramp product). Kept by
        windows, the ramp is first copied window by window into files of the ramp's own
        layout."""
        if self.windows is None:
            return self._map(0, "r"), self._map(1, "r")
        if self._whole is not None:
            return self._whole
        whole = ScratchRamp(self.folder, self.shape, self.batch_bytes)
        ny, nx = self.shape[2:]
        try:
            done = np.zeros((ny, nx), bool)
            for wr, wc in self.windows:
                if done[wr, wc].all():
                    continue
                data, groupdq = self.read(wr, wc)
                whole.write(np.s_[:, :, wr, wc], data, groupdq)
                done[wr, wc] = True
            self._whole = whole._map(0, "r"), whole._map(1, "r")
            return self._whole
        finally:
            whole.close()


class _NamedErrors:
    """An OSError of the scratch files (a full disk, a file cut short) names their folder."""

    def __init__(self, folder):
        self.folder = folder

    def __enter__(self):
        return self

    def __exit__(self, kind, exc, tb):
        if isinstance(exc, OSError) and not str(exc.filename or "").startswith("scratch in"):
            raise OSError(exc.errno, exc.strerror, f"scratch in {self.folder}") from None
        return False


def _four(where):
    """``where`` (an index of the ramp: one slice, or a tuple of up to four) as four slices."""
    where = where if isinstance(where, tuple) else (where,)
    return where + (slice(None),) * (4 - len(where))


def _region(shape, where):
    """``where`` (slices of step 1, or fewer) as four ranges."""
    out = []
    for s, n in zip(_four(where), shape, strict=True):
        r = range(n)[s]
        if r.step != 1:
            raise ValueError("the scratch ramp is written in slices of step 1")
        out.append(r)
    return tuple(out)


def _overlap(a, b):
    """The common part of ranges ``a`` and ``b`` (step 1)."""
    return range(max(a.start, b.start), max(max(a.start, b.start), min(a.stop, b.stop)))


def _local(part, whole):
    """``part`` (a range inside ``whole``) as a slice of ``whole``'s positions."""
    return slice(part.start - whole.start, part.stop - whole.start)
