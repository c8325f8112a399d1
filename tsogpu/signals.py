"""SIGTERM handled as Ctrl-C: what SLURM, docker and Kubernetes send stops a run cleanly.

:func:`install` (the command line's ``main``) makes SIGTERM raise :class:`Terminated`, a
``KeyboardInterrupt``, so every ``with`` block and ``finally`` cleans up as on Ctrl-C.
:func:`exit_code` gives the shell's convention: 128 + the signal (130 SIGINT, 143 SIGTERM).
"""

import signal


class Terminated(KeyboardInterrupt):
    """SIGTERM received."""


_received = []  # the signals that interrupted this process, in order


def _on_sigterm(signum, frame):
    _received.append(signum)
    raise Terminated(f"signal {signum}")


def install():
    """Raise :class:`Terminated` on SIGTERM (in the main thread; a no-op elsewhere)."""
    try:
        signal.signal(signal.SIGTERM, _on_sigterm)
    except ValueError:  # not the main thread
        pass


def exit_code(exc=None):
    """143 after SIGTERM (``exc`` a :class:`Terminated`, or one received), else 130."""
    if isinstance(exc, Terminated) or (exc is None and _received):
        return 128 + signal.SIGTERM
    return 128 + signal.SIGINT


def describe(code):
    """The one line the command prints when interrupted with exit ``code``."""
    name = "SIGTERM" if code == 128 + signal.SIGTERM else "Ctrl-C"
    return f"tsogpu: interrupted ({name})"
