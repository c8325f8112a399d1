"""The ``stpipe.steps`` entry point: the classes ``strun`` and stpipe find by alias."""

from ..config import STEP_ORDER
from .parameters import STEP_CLASS_NAMES

__all__ = ["get_steps"]


def get_steps():
    """Return tuples describing the stpipe step classes tsogpu provides.

    Registered with the ``stpipe.steps`` entry point (pyproject.toml), as jwst registers its
    own. Imports neither stpipe nor jwst.

    Returns
    -------
    list of tuple (str, str, bool)
        The class's full name, its alias (``tsogpu_detector1``, ``tsogpu_<step>``), and
        whether it is a pipeline. The steps tsogpu implements are listed; they run only
        inside the pipeline.
    """
    return [
        ("tsogpu.stpipe.TSODetector1Pipeline", "tsogpu_detector1", True),
        *((f"tsogpu.stpipe.{STEP_CLASS_NAMES[s]}", f"tsogpu_{s}", False) for s in STEP_ORDER),
    ]
