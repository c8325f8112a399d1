"""The Stage-1 order over a segment (jwst Detector1Pipeline, near-infrared branch), by concern:

- :mod:`.steps`: the steps in jwst's order, each calling the backend's operation;
- :mod:`.segment_wide`: what the TSO options need from a whole segment or exposure (trace
  mask, superbias scale factors, saturation map);
- :mod:`.in_memory`: all steps on a segment held in memory (:func:`run_segment`, the
  reference), and the :class:`Result` of a segment;
- :mod:`.planning`: the memory budget and how a segment is cut (:class:`Plan`);
- :mod:`.chunked`: a segment in two passes, chunks of integrations then tiles of pixels, with
  :mod:`.scratch`, the calibrated ramp on disk between them;
- :mod:`.resume`: the input hash in every product, complete products, a killed run's leftovers;
- :mod:`.driver`: one file in, its products out (:func:`process_file`).

The array side (everything but the driver's file reading and writing) imports NumPy only.
"""

from .driver import process_file
from .in_memory import Result, run_segment
from .steps import run_prejump

__all__ = ["process_file", "run_segment", "run_prejump", "Result"]
