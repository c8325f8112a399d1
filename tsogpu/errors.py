"""Exception classes; each subclasses a built-in so callers can catch either."""


class TsogpuError(Exception):
    """Base class of every error tsogpu raises on purpose."""


class InputError(TsogpuError, ValueError):
    """An input file (uncal segment) is unreadable, incomplete or inconsistent."""


class ReferenceFileError(TsogpuError, ValueError):
    """A reference file is missing, unreadable or does not match the science data."""


class ConfigError(TsogpuError, ValueError):
    """A parameter, option or configuration file is invalid."""


class BackendError(TsogpuError, RuntimeError):
    """The requested compute backend is not available."""


class OutputError(TsogpuError, OSError):
    """The output folder cannot take the products: unwritable, or no space left on it."""
