"""User-facing errors: the CLI prints their message and exits non-zero, without a traceback."""


class EventFlowError(Exception):
    """A problem the user can fix (configuration, unreachable service, port in use...)."""

    exit_code = 2


def first_line(exc: BaseException) -> str:
    """An exception as one line for a user or a log: its message's first line, else its type."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
