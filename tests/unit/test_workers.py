"""The per-object worker tasks of the operator, without a cluster: woken by events, gone when done."""

from __future__ import annotations

import asyncio
import logging
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import kopf

from datapipeline.controller.workers import Workers


def test_a_worker_runs_wakes_and_exits_when_its_pass_says_done() -> None:
    passes: list[str] = []
    done = threading.Event()

    def work(namespace: str, name: str, cache: dict[str, Any], logger: logging.Logger) -> tuple[bool, datetime | None]:
        cache["n"] = cache.get("n", 0) + 1
        passes.append(f"{namespace}/{name}#{cache['n']}")
        return (not done.is_set()), None

    async def scenario() -> None:
        workers = Workers("test", work, resync=lambda: 60)
        workers.ensure("ns", "a")
        await asyncio.sleep(0.05)
        assert passes == ["ns/a#1"] and ("ns", "a") in workers
        workers.ensure("ns", "a", wake=False)  # an event that needs no pass (its own status write)
        await asyncio.sleep(0.05)
        assert passes == ["ns/a#1"]
        await asyncio.to_thread(workers.wake, "ns", "a")  # from another thread, like a Job event
        await asyncio.sleep(0.05)
        assert passes == ["ns/a#1", "ns/a#2"]
        done.set()
        workers.wake("ns", "a")
        await asyncio.sleep(0.05)
        assert ("ns", "a") not in workers  # its pass said: nothing left to do
        workers.ensure("ns", "a")  # live again (a rerun): a new worker, a fresh cache
        await asyncio.sleep(0.05)
        assert passes[-1] == "ns/a#1"
        await workers.stop_all()

    asyncio.run(scenario())


def test_wake_times_errors_and_temporary_errors() -> None:
    calls: list[float] = []

    def work(namespace: str, name: str, cache: dict[str, Any], logger: logging.Logger) -> tuple[bool, datetime | None]:
        calls.append(0)
        if len(calls) == 1:
            return True, datetime.now(UTC) + timedelta(seconds=0.1)  # look again soon
        if len(calls) == 2:
            raise kopf.TemporaryError("conflict", delay=0.1)
        if len(calls) == 3:
            raise RuntimeError("a bug")  # logged, retried after 5 s: not within this test
        return False, None

    async def scenario() -> None:
        workers = Workers("test", work, resync=lambda: 60)
        workers.ensure("ns", "b")
        await asyncio.sleep(1.0)
        assert len(calls) == 3 and ("ns", "b") in workers
        await workers.stop_all()
        assert ("ns", "b") not in workers

    asyncio.run(scenario())


def test_a_first_delay_holds_a_new_workers_first_pass_unless_it_is_woken() -> None:
    passes: list[str] = []

    def work(namespace: str, name: str, cache: dict[str, Any], logger: logging.Logger) -> tuple[bool, datetime | None]:
        passes.append(name)
        return True, None

    async def scenario() -> None:
        workers = Workers("test", work, resync=lambda: 60)
        workers.ensure("ns", "held", wake=False, first_delay=30)
        workers.ensure("ns", "woken", wake=False, first_delay=30)
        workers.ensure("ns", "new")
        await asyncio.sleep(0.05)
        assert passes == ["new"]
        workers.wake("ns", "woken")  # a Job event: look now
        await asyncio.sleep(0.05)
        assert passes == ["new", "woken"]
        await workers.stop_all()

    asyncio.run(scenario())


def test_a_spread_never_passes_the_due_time() -> None:
    from datapipeline.controller.workers import spread

    assert all(0 <= spread(30) < 30 for _ in range(100))
    assert all(0 <= spread(30, due_in=2) <= 2 for _ in range(100))
    assert spread(30, due_in=-5) == 0


def test_wakes_within_a_delay_share_one_pass() -> None:
    passes: list[float] = []

    def work(namespace: str, name: str, cache: dict[str, Any], logger: logging.Logger) -> tuple[bool, datetime | None]:
        passes.append(0)
        return True, None

    async def until(count: int) -> None:
        for _ in range(500):
            if len(passes) >= count:
                return
            await asyncio.sleep(0.01)

    async def scenario() -> None:
        workers = Workers("test", work, resync=lambda: 60)
        workers.ensure("ns", "p")
        await until(1)
        for _ in range(5):  # five runs of the pipeline end, from the passes' threads
            await asyncio.to_thread(workers.wake_within, "ns", "p", 0.3)
        await asyncio.sleep(0)  # the threads' calls reach the loop
        assert workers._pending == {("ns", "p")}  # one wake due for the five, not five
        await until(2)
        assert len(passes) == 2 and not workers._pending
        workers.wake_within("ns", "p", 0)  # no delay: at once, nothing pending
        assert not workers._pending
        await until(3)
        assert len(passes) == 3
        await workers.stop_all()

    asyncio.run(scenario())


def test_a_pass_decides_in_a_thread_and_acts_on_the_event_loop() -> None:
    from datapipeline.controller.workers import Outcome, Then

    where: list[str] = []

    def work(namespace: str, name: str, cache: dict[str, Any], logger: logging.Logger) -> Outcome | Then:
        where.append(threading.current_thread().name)

        async def act() -> Outcome:
            where.append(threading.current_thread().name)
            await asyncio.sleep(0)  # the writes: awaited, no thread held
            return False, None

        return Then(act)

    async def scenario() -> None:
        workers = Workers("test", work, resync=lambda: 60)
        workers.ensure("ns", "t")
        for _ in range(500):
            if ("ns", "t") not in workers:
                break
            await asyncio.sleep(0.01)
        assert ("ns", "t") not in workers  # the act's outcome counted: nothing left to do
        await workers.stop_all()

    asyncio.run(scenario())
    assert where[0] != threading.main_thread().name and where[1] == threading.main_thread().name
