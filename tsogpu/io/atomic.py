"""The one way tsogpu writes a file: to a hidden temporary name beside it, then a rename.

A crash, a kill or a full disk leaves no half-written product under the final name; a killed
run's hidden ``.<name>.*.tmp`` files are removed by the next run on the same input
(``tsogpu.pipeline.resume.remove_leftovers``). Within :func:`product_set` the renames wait
until every file of the set is written: a set is there whole or not at all.
"""

import contextlib
import contextvars
import os
import tempfile
from pathlib import Path

# the (temporary, final) pairs of the product set being written, if any
_SET = contextvars.ContextVar("tsogpu_product_set", default=None)


def _umask():
    mask = os.umask(0)  # the only way to read it; set back at once, at import
    os.umask(mask)
    return mask


_UMASK = _umask()


def temporary_prefix(final_name):
    """The name prefix of the hidden temporary files of a file named ``final_name``."""
    return f".{final_name}."


def write_atomically(final_path, write):
    """``write(fh)`` into a temporary file beside ``final_path``, fsync'd, then renamed to it.

    The file gets the mode a new file gets under the process's umask (mkstemp's 0600 would
    hide products from the others sharing an archive). Returns ``final_path`` as a Path.
    """
    final_path = Path(final_path)
    final_path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(
        prefix=temporary_prefix(final_path.name), suffix=".tmp", dir=final_path.parent
    )
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o666 & ~_UMASK)
        pending = _SET.get()
        if pending is None:
            os.replace(tmp, final_path)
        else:
            pending.append((tmp, final_path))
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return final_path


@contextlib.contextmanager
def product_set():
    """Files written by :func:`write_atomically` inside the block keep their temporary names
    until the block ends, then are all renamed; any error (or interrupt) removes them all."""
    pending = []
    token = _SET.set(pending)
    try:
        yield pending
    except BaseException:
        for tmp, _ in pending:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
        raise
    finally:
        _SET.reset(token)
    for tmp, final_path in pending:
        os.replace(tmp, final_path)
