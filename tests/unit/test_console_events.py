"""The console's server-sent events (``/events``) over a cache filled by hand: a change a page shows is sent, one it
does not show (another pipeline, another namespace, a namespace the caller may not list) is not.

The request is driven over ASGI by hand, in one event loop: Starlette's TestClient and httpx's ASGI transport
both wait for the whole body, which an event stream never ends. Nothing sleeps: a change that must not be sent
is applied before one that must, and the stream delivers changes in order, so the next event read shows whether
the first one was dropped. Every wait has a deadline, so a broken stream fails the test instead of hanging it.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Any, TypeVar

import pytest
from console_objects import pipeline, run
from starlette.types import ASGIApp, Message

from datapipeline.console.app import create_app
from datapipeline.console.auth import Access
from datapipeline.console.cache import WatchCache

WAIT = 5.0  # seconds for one step (a chunk, the stream's end); each takes milliseconds when all is well
T = TypeVar("T")

pytestmark = pytest.mark.timeout(30)  # a net under the per-step deadlines


async def within(step: Awaitable[T], what: str) -> T:
    try:
        return await asyncio.wait_for(step, WAIT)
    except TimeoutError:
        pytest.fail(f"no {what} within {WAIT:.0f} s")


class EventStream:
    """One ``GET /events`` request: the answer's body is read chunk by chunk, as a browser's EventSource reads it;
    leaving the ``async with`` is the browser going away."""

    def __init__(self, app: ASGIApp, query: str, headers: dict[str, str] | None = None) -> None:
        self.app = app
        self.scope: dict[str, Any] = {
            "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET", "scheme": "http",
            "path": "/events", "raw_path": b"/events", "query_string": query.encode(), "root_path": "",
            "headers": [(b"host", b"testserver"), (b"accept", b"text/event-stream"),
                        *((k.lower().encode(), v.encode()) for k, v in (headers or {}).items())],
            "client": ("127.0.0.1", 50000), "server": ("testserver", 80)}
        self.sent: asyncio.Queue[Message] = asyncio.Queue()
        self.gone = asyncio.Event()
        self.asked_for_body = False
        self.text = ""
        self.status = 0
        self.headers: dict[str, str] = {}
        self.task: asyncio.Task[None] | None = None

    async def receive(self) -> Message:
        if not self.asked_for_body:
            self.asked_for_body = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await self.gone.wait()
        return {"type": "http.disconnect"}

    async def send(self, message: Message) -> None:
        await self.sent.put(message)

    async def serve(self) -> None:
        await self.app(self.scope, self.receive, self.send)

    async def __aenter__(self) -> EventStream:
        self.task = asyncio.create_task(self.serve())
        start = await within(self.sent.get(), "answer")
        assert start["type"] == "http.response.start"
        self.status = start["status"]
        self.headers = {k.decode(): v.decode() for k, v in start["headers"]}
        return self

    async def chunk(self) -> str:
        """The next piece of the stream ('' once the answer is complete)."""
        message = await within(self.sent.get(), "chunk of the stream")
        assert message["type"] == "http.response.body"
        return bytes(message.get("body", b"")).decode() if message.get("more_body") or message.get("body") else ""

    async def block(self) -> str:
        """The next block of the stream (an event, a comment, the retry field): text up to a blank line."""
        while "\n\n" not in self.text:
            piece = await self.chunk()
            if not piece:
                pytest.fail(f"the stream ended; unread: {self.text!r}")
            self.text += piece
        head, _, self.text = self.text.partition("\n\n")
        return head

    async def change(self) -> dict[str, Any]:
        """The next change event's data (heartbeat comments are skipped)."""
        while (head := await self.block()).startswith(":"):
            pass
        event, data = head.split("\n")
        assert event == "event: change"
        assert data.startswith("data: ")
        found: dict[str, Any] = json.loads(data.removeprefix("data: "))
        return found

    async def __aexit__(self, kind: type[BaseException] | None, error: BaseException | None,
                        trace: TracebackType | None) -> None:
        self.gone.set()
        if self.task is not None:
            await within(self.task, "end of the request after the browser went")


def filled_cache() -> WatchCache:
    cache = WatchCache(None, custom_api=lambda: None)  # never started: filled and changed by hand
    cache.replace_all("pipelines", [pipeline(), pipeline("weekly"), pipeline(namespace="team-b")])
    cache.replace_all("pipelineruns", [run("daily-1"), run("weekly-1", pipeline_name="weekly"),
                                       run("daily-1", namespace="team-b")])
    return cache


def scenario(test: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(asyncio.wait_for(test(), 4 * WAIT))


def subscribers(cache: WatchCache) -> int:
    return len(cache._subscribers)


# ---------------------------------------------------------------------------------------------- the stream
def test_a_change_to_the_streams_pipeline_is_sent_as_an_event() -> None:
    cache = filled_cache()
    app = create_app(cache, Access(in_cluster=False))

    async def test() -> None:
        async with EventStream(app, "namespace=team-a&pipeline=daily") as stream:
            assert stream.status == 200
            assert stream.headers["content-type"].startswith("text/event-stream")
            assert stream.headers["cache-control"] == "no-store"
            assert await stream.block() == "retry: 2000"  # sent once subscribed: changes from now on are seen
            cache.apply("pipelineruns", "MODIFIED", run("daily-1", "Succeeded"))
            assert await stream.change() == {"plural": "pipelineruns", "namespace": "team-a", "name": "daily-1"}
            cache.apply("pipelines", "MODIFIED", pipeline(health="HEALTHY"))
            assert await stream.change() == {"plural": "pipelines", "namespace": "team-a", "name": "daily"}
            cache.replace_all("pipelineruns", cache.runs())  # a new list may change anything: always sent
            assert await stream.change() == {"plural": "pipelineruns", "namespace": None, "name": None}
            assert subscribers(cache) == 1
        assert subscribers(cache) == 0  # the browser went: the stream stopped listening

    scenario(test)


def test_changes_to_another_pipeline_or_namespace_are_not_sent() -> None:
    cache = filled_cache()
    app = create_app(cache, Access(in_cluster=False))

    async def test() -> None:
        async with EventStream(app, "namespace=team-a&pipeline=daily") as stream:
            assert await stream.block() == "retry: 2000"
            cache.apply("pipelineruns", "MODIFIED", run("weekly-1", "Succeeded", pipeline_name="weekly"))
            cache.apply("pipelines", "MODIFIED", pipeline("weekly", health="ERROR"))
            cache.apply("pipelineruns", "MODIFIED", run("daily-1", "Succeeded", namespace="team-b"))
            cache.apply("pipelines", "DELETED", pipeline(namespace="team-b"))
            cache.apply("pipelineruns", "ADDED", run("daily-2"))
            # Changes arrive in order: had any of the four above been sent, it would come first.
            assert await stream.change() == {"plural": "pipelineruns", "namespace": "team-a", "name": "daily-2"}

    scenario(test)


# ---------------------------------------------------------------------------------------------- in the cluster
def test_in_the_cluster_a_change_the_caller_may_not_list_is_not_sent() -> None:
    cache = filled_cache()
    asked: list[tuple[str, str, str]] = []

    def review(_: Any, verb: str, plural: str, namespace: str) -> bool:
        asked.append((verb, plural, namespace))
        return namespace == "team-b"

    app = create_app(cache, Access(in_cluster=True, review=review))

    async def test() -> None:
        # No namespace in the query, as on the pipelines page: only the access review keeps team-a's changes out.
        async with EventStream(app, "pipeline=daily", {"Authorization": "Bearer t0ken"}) as stream:
            assert await stream.block() == "retry: 2000"
            cache.apply("pipelineruns", "MODIFIED", run("daily-1", "Succeeded"))
            cache.apply("pipelineruns", "MODIFIED", run("daily-1", "Succeeded", namespace="team-b"))
            assert await stream.change() == {"plural": "pipelineruns", "namespace": "team-b", "name": "daily-1"}
        assert asked == [("list", "pipelineruns", "team-a"), ("list", "pipelineruns", "team-b")]

    scenario(test)


def test_in_the_cluster_a_stream_without_a_token_is_refused_before_it_subscribes() -> None:
    cache = filled_cache()
    app = create_app(cache, Access(in_cluster=True, review=lambda *_: True))

    async def test() -> None:
        async with EventStream(app, "namespace=team-a") as stream:
            assert stream.status == 401
            body = await stream.chunk()
            assert json.loads(body) == {"error": "send Authorization: Bearer <token> (kubectl create token ...)"}
        assert subscribers(cache) == 0

    scenario(test)
