"""What the console answers when a request cannot be done: a status and one sentence, never a traceback."""

from __future__ import annotations

from datapipeline.cli.errors import explain
from datapipeline.console.auth import Unauthenticated
from datapipeline.day2 import NotFound


def problem_status(error: BaseException) -> int:
    """400 for bad input, 404 for an unknown pipeline or run, the API server's own status for its refusals (403, 404, 409...), 502 when it is
    unreachable, 500 for the console's own faults."""
    if isinstance(error, Unauthenticated):
        return 401
    if isinstance(error, NotFound):
        return 404
    status = getattr(error, "status", None)
    if _is_api_error(error) and isinstance(status, int):
        return status if 400 <= status < 600 else 502
    if _is_unreachable(error):
        return 502
    if isinstance(error, ValueError):  # Day2Error, a malformed body (json.JSONDecodeError)
        return 400
    return 500


def problem_message(error: BaseException) -> str:
    if isinstance(error, Unauthenticated):
        return str(error)
    return " ".join(explain(error))


def _is_api_error(error: BaseException) -> bool:
    from kubernetes.client.exceptions import ApiException

    return isinstance(error, ApiException)


def _is_unreachable(error: BaseException) -> bool:
    from kubernetes.config import ConfigException
    from urllib3.exceptions import HTTPError

    return isinstance(error, ConfigException | HTTPError)
