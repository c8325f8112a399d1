"""tsogpu: JWST Stage-1 (calwebb_detector1) for time-series observations.

Importing tsogpu imports NumPy only: never CuPy, astropy or stdatamodels, so the array core
runs wherever NumPy does. The file side (``tsogpu.io``, ``tsogpu.simulate``) needs astropy and
stdatamodels.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
