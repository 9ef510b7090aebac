"""Errors that reach the user as one clear line.

Every failure caused by the user's input (a missing file, a corrupt recording, a bad
config) is raised as a :class:`MirrorcamError`; the CLI prints its message on one line
and exits non-zero.  Anything else is a bug: the CLI still says it in one line (``error:
unexpected ...``, exit 1), and ``-v`` logs its traceback.
"""


class MirrorcamError(Exception):
    """A problem with the user's input or environment, explained in one sentence."""

    exit_code = 2


class SourceError(MirrorcamError):
    """A video source cannot be opened or read."""


class ModelError(MirrorcamError):
    """The pose model bundle is missing, corrupt or cannot be provisioned."""


class RecordingError(MirrorcamError):
    """A landmark recording cannot be read or written."""


class TemplateError(MirrorcamError):
    """An action template file is malformed."""


class ConfigError(MirrorcamError):
    """A configuration file is invalid."""
