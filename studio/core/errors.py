"""Typed errors that carry a message a photographer can act on."""


class StudioError(Exception):
    """Base of every error Studio shows to a user; `str(err)` is the user-facing message.

    `window_text` is the message in the window's words (the same unless it names CLI options).
    """

    exit_code = 1

    @property
    def window_text(self) -> str:
        return str(self)


class UsageError(StudioError):
    """The command or its parameters are wrong."""

    exit_code = 2


class MissingInputError(UsageError):
    """The job lacks an input its engine needs: `str(err)` says so for the CLI."""

    def __init__(self, window: str, cli: str) -> None:
        super().__init__(cli)
        self._window = window

    @property
    def window_text(self) -> str:
        return self._window


class BadInputError(StudioError):
    """An input image, mask, kernel or parameter value cannot be used."""

    exit_code = 3


class ModelError(StudioError):
    """A model file is missing, unsupported, unsafe or fails to run."""

    exit_code = 4


class EngineUnavailableError(ModelError):
    """The chosen engine cannot run on this machine (the message says why)."""


class OutOfMemoryError(StudioError):
    """The device ran out of memory even at the smallest tile size."""

    exit_code = 5


class CancelledError(StudioError):
    """The user cancelled the job."""

    exit_code = 130

    def __init__(self, message: str = "Cancelled") -> None:
        super().__init__(message)


class DeviceError(StudioError):
    """The GPU failed beyond recovery; Studio moved to the CPU (the message says so)."""
