"""One asyncio task per object that needs work (a live PipelineRun, a Pipeline), woken by watch events.

A pass observes (watch caches) and decides (pure code) in a thread, so that parsing a large definition never
stalls the event loop; what it decided to write may come back as :class:`Then`, done on the loop with the
async client, so that no thread waits on the API server for it.

Why not kopf daemons and timers: kopf puts a finalizer on every object that has one, so with the
operator stopped or uninstalled a PipelineRun, a Pipeline or their namespace can never be deleted.
The handlers here are plain ``kopf.on.event`` watchers (no finalizer, nothing written to the
object); each only makes sure a worker exists and wakes it. The worker re-reads the object in
every pass (level-triggered) and exits by itself when its pass says there is nothing left to do
or the object is gone.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import kopf

from datapipeline.controller.errors import backoff

Outcome = tuple[bool, datetime | None]  # keep working, when to look again


@dataclass(frozen=True)
class Then:
    """What a pass decided to do, done on the event loop (the writes, with the async client); gives the outcome."""

    act: Callable[[], Awaitable[Outcome]]


# One pass, in a thread: (namespace, name, the worker's cache, logger) -> the outcome, or the writes that give it.
Pass = Callable[[str, str, dict[str, Any], logging.Logger], Outcome | Then]
# A failed pass: (namespace, name, the error, the worker's cache, logger); puts it on the object.
Report = Callable[[str, str, BaseException, dict[str, Any], logging.Logger], None]
# What a pass reads, copied from the watch caches on the event loop: (namespace, name, cache) -> snapshot.
Snap = Callable[[str, str, dict[str, Any]], Any]


@dataclass
class _Worker:
    task: asyncio.Task[None]
    event: asyncio.Event


def spread(up_to: float, due_in: float | None = None) -> float:
    """A random first delay in [0, up_to), never past ``due_in`` seconds (an object whose state is known and
    saved need not be looked at in the first second after a restart, but one that is due must be)."""
    limit = up_to if due_in is None else max(0.0, min(up_to, due_in))
    return random.uniform(0.0, limit)


class Workers:
    def __init__(self, kind: str, work: Pass, resync: Callable[[], float],
                 observe: Callable[[float], None] | None = None, report: Report | None = None,
                 snapshot: Snap | None = None) -> None:
        self.kind = kind
        self.work = work
        self.snapshot = snapshot  # taken on the event loop before each pass, into cache["snapshot"]
        self.report = report
        self.resync = resync  # seconds: look again at least this often
        self.observe = observe  # called with each pass's duration (metrics)
        self.logger = logging.getLogger(f"datapipeline.{kind}")
        self._workers: dict[tuple[str, str], _Worker] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pending: set[tuple[str, str]] = set()  # wakes due later (wake_within)

    def __contains__(self, key: tuple[str, str]) -> bool:
        worker = self._workers.get(key)
        return worker is not None and not worker.task.done()

    def ensure(self, namespace: str, name: str, wake: bool = True, first_delay: float = 0.0) -> None:
        """Start a worker for the object unless one runs; else wake it if asked. Call on the event loop.
        ``first_delay``: a new worker's first pass waits this long unless woken (spreads a restart's passes)."""
        self._loop = asyncio.get_running_loop()
        key = (namespace, name)
        worker = self._workers.get(key)
        if worker is not None and not worker.task.done():
            if wake:
                worker.event.set()
            return
        event = asyncio.Event()
        task = asyncio.create_task(self._run(key, event, first_delay), name=f"{self.kind}/{namespace}/{name}")
        self._workers[key] = _Worker(task, event)

    def wake(self, namespace: str, name: str) -> None:
        """Wake the object's worker if it has one; safe from any thread."""
        loop = self._loop
        if loop is None:
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            self._wake(namespace, name)
        else:
            loop.call_soon_threadsafe(self._wake, namespace, name)

    def wake_within(self, namespace: str, name: str, seconds: float) -> None:
        """Wake the object's worker within ``seconds``; wakes asked for meanwhile share that one (a burst of
        runs ending costs their Pipeline one pass and one status write, not one each). Safe from any thread."""
        loop = self._loop
        if seconds <= 0 or loop is None:
            self.wake(namespace, name)
            return
        loop.call_soon_threadsafe(self._wake_later, namespace, name, seconds)

    def _wake_later(self, namespace: str, name: str, seconds: float) -> None:
        key = (namespace, name)
        if key in self._pending:
            return
        self._pending.add(key)

        def due() -> None:
            self._pending.discard(key)
            self._wake(namespace, name)

        asyncio.get_running_loop().call_later(seconds, due)

    def _wake(self, namespace: str, name: str) -> None:
        worker = self._workers.get((namespace, name))
        if worker is not None:
            worker.event.set()

    async def stop_all(self) -> None:
        tasks = [w.task for w in self._workers.values() if not w.task.done()]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=5)
        self._workers.clear()

    async def _run(self, key: tuple[str, str], event: asyncio.Event, first_delay: float = 0.0) -> None:
        namespace, name = key
        cache: dict[str, Any] = {}
        failures = 0
        try:
            if first_delay > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(event.wait(), timeout=first_delay)
            while True:
                event.clear()
                started = time.monotonic()
                try:
                    if self.snapshot is not None:
                        cache["snapshot"] = self.snapshot(namespace, name, cache)
                    outcome = await asyncio.to_thread(self.work, namespace, name, cache, self.logger)
                    live, wake_at = await outcome.act() if isinstance(outcome, Then) else outcome
                except kopf.TemporaryError as error:
                    self.logger.warning("%s %s/%s: %s", self.kind, namespace, name, error)
                    live, wake_at = True, None
                    delay = float(error.delay or 5)
                except Exception as error:
                    failures += 1
                    self.logger.exception("%s %s/%s: pass failed (%d in a row)", self.kind, namespace, name,
                                          failures)
                    if self.report is not None:
                        await asyncio.to_thread(self.report, namespace, name, error, cache, self.logger)
                    live, wake_at, delay = True, None, backoff(failures)
                else:
                    failures = 0
                    cache.pop("reported", None)
                    delay = self.resync()
                if self.observe is not None:
                    self.observe(time.monotonic() - started)
                if not live and not event.is_set():
                    return  # nothing left to do (an event meanwhile means: look once more)
                if wake_at is not None:
                    delay = max(0.2, min(delay, (wake_at - datetime.now(UTC)).total_seconds() + 0.05))
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(event.wait(), timeout=delay)
        finally:
            current = self._workers.get(key)
            if current is not None and current.task is asyncio.current_task():
                del self._workers[key]
