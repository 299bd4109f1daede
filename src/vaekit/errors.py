"""Errors a user can act on.

Every error raised for bad input is a :class:`VaekitError` whose message is one line naming the
thing at fault and what was expected. The CLI prints that line and exits with code 2.
"""

from __future__ import annotations


class VaekitError(Exception):
    """Base class: bad input, bad configuration or a missing resource (CLI exit code 2)."""


class ConfigError(VaekitError, ValueError):
    """An unknown option, a bad value or an unknown registered name (also a ValueError, as Python
    and scikit-learn code expect of a bad argument)."""


class DataError(VaekitError, ValueError):
    """A missing, corrupt or mismatched data file or array (also a ValueError)."""


class DownloadError(VaekitError):
    """A download that failed, was offline, or did not match its checksum."""


class RunFolderError(VaekitError):
    """A run folder that is missing, incomplete or written by an incompatible version."""


class DivergenceError(VaekitError, FloatingPointError):
    """Training diverged: too many steps in a row gave NaN/Inf and no checkpoint could restore it
    (a user-facing outcome with a remedy, exit code 2; also a FloatingPointError)."""
