"""User-facing errors: the CLI prints their message and exits non-zero, without a traceback."""


class EventFlowError(Exception):
    """A problem the user can fix (configuration, unreachable service, port in use...)."""

    exit_code = 2
