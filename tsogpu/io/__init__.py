"""Reading uncal segments and reference files, writing products (astropy / stdatamodels)."""

import os


def positional(fd, buf, offset, write=False):
    """Read all of ``buf`` (a writable buffer) from ``offset`` of the open file ``fd``, or
    write all of it there, in as many calls as it takes (one moves at most ~2 GiB). Returns
    False when the file ended first; OSError as the system raises it."""
    view = memoryview(buf).cast("B")
    while len(view):
        n = os.pwrite(fd, view, offset) if write else os.preadv(fd, [view], offset)
        if n == 0:
            return False
        view, offset = view[n:], offset + n
    return True
