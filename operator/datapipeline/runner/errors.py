"""The runner's error vocabulary: every failure a user can cause ends as one of these.

``error_id`` is a stable code (``S3.NoSuchBucket``, ``SQL.BadRow``...) that the
operator copies into the run's status; ``message`` names the object and field
involved, so the user knows what to fix without reading a traceback.
"""

from __future__ import annotations

from datapipeline.core.task import EXIT_FAILED, EXIT_INVALID_TASK


class TaskError(Exception):
    """The task failed for a reason the user can act on."""

    exit_code = EXIT_FAILED

    def __init__(self, error_id: str, message: str) -> None:
        super().__init__(message)
        self.error_id = error_id
        self.message = message


class InvalidTask(TaskError):
    """The task itself is wrong (a field missing or malformed): retrying cannot help."""

    exit_code = EXIT_INVALID_TASK

    def __init__(self, message: str, error_id: str = "Task.Invalid") -> None:
        super().__init__(error_id, message)


class NotMet(Exception):
    """A precondition was checked and does not hold (yet)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class Cancelled(BaseException):
    """SIGTERM arrived (the attempt was cancelled or timed out); a BaseException so it unwinds everything."""
