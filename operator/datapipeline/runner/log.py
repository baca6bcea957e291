"""Line-format logging to stdout, secret redaction, the progress heartbeat and the log copy.

Every line the runner prints goes through :class:`Redactor`, so a secret value
(database password, AWS secret key, webhook token) can never reach the pod log
or the termination message, even when a driver quotes it in an error.

``main`` replaces ``sys.stdout``/``sys.stderr`` by :class:`Tee` streams: they
redact whatever is written (a last line of defence for stray prints) and, once
:data:`COPY` is started, keep a copy of every line in a file under $TMPDIR that
the runner uploads to the task's ``log_uri`` at the end (the pod's log does not
outlive the pod).
"""

from __future__ import annotations

import io
import logging
import re
import sys
import threading
import time
from datetime import UTC, datetime
from typing import IO, TextIO

from datapipeline.core.task import PROGRESS_INTERVAL_SECONDS, utc_text

MASK = "***"

# Credentials embedded in connection strings: user:password@host and password=... parameters.
_URL_PASSWORD = re.compile(r"(?P<head>[a-z][a-z0-9+.-]*://[^/:@\s]*:)[^@/\s]+(?=@)", re.I)
_PARAM_PASSWORD = re.compile(r"(?P<head>(?:password|passwd|pwd)\s*=\s*)[^&;\s'\"]+", re.I)


class Redactor:
    """Replaces known secret values and password-looking parts of connection strings."""

    def __init__(self) -> None:
        self._secrets: set[str] = set()
        self._lock = threading.Lock()

    def add(self, value: str | None) -> None:
        # Very short values would mask innocent text everywhere; no real secret is that short.
        if value and len(value) >= 4:
            with self._lock:
                self._secrets.add(value)
                # A multi-line secret (a key file) is printed a line at a time: each line is a secret too.
                self._secrets.update(line.strip() for line in value.splitlines() if len(line.strip()) >= 8)

    def __call__(self, text: str) -> str:
        with self._lock:
            secrets = sorted(self._secrets, key=len, reverse=True)
        for secret in secrets:
            if secret in text:
                text = text.replace(secret, MASK)
        text = _URL_PASSWORD.sub(lambda m: m.group("head") + MASK, text)
        return _PARAM_PASSWORD.sub(lambda m: m.group("head") + MASK, text)


REDACT = Redactor()


class LogCopy:
    """A file that receives a copy of every line written to the :class:`Tee` streams, once started."""

    def __init__(self) -> None:
        self._file: IO[str] | None = None
        self._lock = threading.Lock()
        self.path: str | None = None

    @property
    def active(self) -> bool:
        return self._file is not None

    def start(self, path: str) -> None:
        with self._lock:
            self._file = open(path, "w", encoding="utf-8", errors="replace")  # noqa: SIM115 - closed by stop()
            self.path = path

    def write(self, text: str) -> None:
        with self._lock:
            if self._file is not None:
                self._file.write(text)

    def stop(self) -> str | None:
        """Stops copying; returns the file's path (None if it never started)."""
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None
            return self.path


COPY = LogCopy()


class Tee(io.TextIOBase):
    """Writes redacted text through to ``stream`` and to :data:`COPY`."""

    def __init__(self, stream: TextIO) -> None:
        super().__init__()
        self._stream = stream

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return getattr(self._stream, "encoding", "utf-8") or "utf-8"

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return self._stream.isatty()

    def fileno(self) -> int:
        return self._stream.fileno()

    def write(self, text: str) -> int:
        clean = REDACT(text)
        self._stream.write(clean)
        COPY.write(clean)
        return len(text)

    def flush(self) -> None:
        self._stream.flush()


def utc_stamp(t: float | None = None) -> str:
    return utc_text(datetime.fromtimestamp(time.time() if t is None else t, UTC))


class LineFormatter(logging.Formatter):
    """``2026-11-21T10:00:00Z INFO copy: message`` with secrets masked."""

    def format(self, record: logging.LogRecord) -> str:
        name = record.name.removeprefix("datapipeline.runner.")
        text = f"{utc_stamp(record.created)} {record.levelname} {name}: {record.getMessage()}"
        if record.exc_info:
            text += "\n" + self.formatException(record.exc_info)
        return REDACT(text)


_lock = threading.Lock()  # stdout is shared by the log handler and the progress thread


class _Handler(logging.StreamHandler):  # type: ignore[type-arg]
    def emit(self, record: logging.LogRecord) -> None:
        with _lock:
            super().emit(record)


def setup(stream: TextIO | None = None, level: int = logging.INFO) -> None:
    handler = _Handler(stream or sys.stdout)
    handler.setFormatter(LineFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # boto and urllib3 are chatty at INFO and may print request details.
    for noisy in ("botocore", "boto3", "urllib3", "s3transfer"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def get(name: str) -> logging.Logger:
    return logging.getLogger(name)


class Progress:
    """Counts the work done and prints ``progress:`` at least every interval while the task runs.

    The operator applies ``reportProgressTimeout`` to the time of the newest log line, so a
    heartbeat is printed even when no counter moved (a long SQL statement is still work).
    """

    def __init__(self, interval: float = PROGRESS_INTERVAL_SECONDS, stream: TextIO | None = None) -> None:
        self.interval = interval
        self.rows_read = 0
        self.rows_written = 0
        self.bytes = 0
        self.phase = "starting"
        self._stream = stream or sys.stdout
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="progress", daemon=True)
        self._started = time.monotonic()

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=2)

    def line(self) -> str:
        elapsed = time.monotonic() - self._started
        return (f"progress: {self.phase} elapsed={elapsed:.0f}s rows_read={self.rows_read} "
                f"rows_written={self.rows_written} bytes={self.bytes}")

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            text = REDACT(self.line())
            with _lock:
                self._stream.write(text + "\n")
                self._stream.flush()
