"""The console's copy of the Pipelines and PipelineRuns, kept by watches, and its feed of changes.

One thread per kind (and per namespace, when given several) lists once, then watches from the list's
resourceVersion; a 410 (the version is too old) or a dropped connection lists again. Pages read the copy, so a page costs no API request; every change is
offered to the subscribers (the server-sent-event streams), each on its own asyncio loop.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from datapipeline.core.definition import GROUP, VERSION

log = logging.getLogger("datapipeline.console")
PLURALS = ("pipelines", "pipelineruns")
WATCH_SECONDS = 240  # the server ends each watch after this; the thread starts the next from where it was
RETRY_SECONDS = 3.0


@dataclass(frozen=True)
class Change:
    """One object that changed (or every object of a kind, after a new list: name None)."""

    plural: str
    namespace: str | None
    name: str | None
    pipeline: str | None  # the Pipeline the object is or belongs to

    def concerns(self, namespace: str | None, pipeline: str | None, run: str | None) -> bool:
        """The change may alter a page that shows this namespace, pipeline or run (None: any)."""
        if self.name is None:
            return True
        if namespace and self.namespace != namespace:
            return False
        if run:
            return (self.plural == "pipelineruns" and self.name == run) or (
                self.plural == "pipelines" and self.name == pipeline)
        return not pipeline or self.pipeline == pipeline


def pipeline_of(plural: str, obj: Mapping[str, Any]) -> str | None:
    meta = obj.get("metadata") or {}
    if plural == "pipelines":
        return meta.get("name")
    return ((obj.get("spec") or {}).get("pipelineRef") or {}).get("name")


Key = tuple[str, str]  # (namespace, name)


Source = tuple[str, str | None]  # (plural, namespace or None for all namespaces): what one thread watches


class WatchCache:
    """Pipelines and PipelineRuns of some namespaces (None: all), as the API server last said them."""

    def __init__(self, namespaces: str | tuple[str, ...] | None, custom_api: Callable[[], Any]) -> None:
        if isinstance(namespaces, str):
            namespaces = (namespaces,)
        self.watched: tuple[str, ...] | None = tuple(dict.fromkeys(namespaces)) if namespaces else None
        self._custom_api = custom_api  # CustomObjectsApi of the console's own identity
        self._objects: dict[str, dict[Key, dict[str, Any]]] = {plural: {} for plural in PLURALS}
        self._lock = threading.Lock()
        self._subscribers: list[tuple[asyncio.AbstractEventLoop, asyncio.Queue[Change]]] = []
        self.sources: tuple[Source, ...] = tuple((plural, ns) for plural in PLURALS for ns in self.watched or (None,))
        self._ready = {source: threading.Event() for source in self.sources}
        self._stop = threading.Event()
        self.errors: dict[Source, str] = {}  # why a source cannot be watched now (a 403 from the API server)

    # ------------------------------------------------------------------ reading
    def pipelines(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._objects["pipelines"].values())

    def pipeline(self, namespace: str, name: str) -> dict[str, Any] | None:
        with self._lock:
            return self._objects["pipelines"].get((namespace, name))

    def runs(self, namespace: str | None = None, pipeline: str | None = None) -> list[dict[str, Any]]:
        with self._lock:
            found = list(self._objects["pipelineruns"].values())
        return [r for r in found if (namespace is None or r["metadata"].get("namespace") == namespace)
                and (pipeline is None or pipeline_of("pipelineruns", r) == pipeline)]

    def run(self, namespace: str, name: str) -> dict[str, Any] | None:
        with self._lock:
            return self._objects["pipelineruns"].get((namespace, name))

    def namespaces(self) -> list[str]:
        with self._lock:
            return sorted({ns for ns, _ in self._objects["pipelines"]})

    def wait_ready(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        return all(event.wait(max(0.0, deadline - time.monotonic())) for event in self._ready.values())

    # ------------------------------------------------------------------ changes
    def subscribe(self) -> asyncio.Queue[Change]:
        queue: asyncio.Queue[Change] = asyncio.Queue(maxsize=1000)
        with self._lock:
            self._subscribers.append((asyncio.get_running_loop(), queue))
        return queue

    def unsubscribe(self, queue: asyncio.Queue[Change]) -> None:
        with self._lock:
            self._subscribers = [(loop, q) for loop, q in self._subscribers if q is not queue]

    def _publish(self, change: Change) -> None:
        with self._lock:
            subscribers = list(self._subscribers)
        for loop, queue in subscribers:
            loop.call_soon_threadsafe(_offer, queue, change)

    # ------------------------------------------------------------------ applying what the API server says
    def replace_all(self, plural: str, items: list[dict[str, Any]], namespace: str | None = None) -> None:
        """A new list of one kind, in one namespace (None: in all) replaces what the copy held there."""
        with self._lock:
            kept = {} if namespace is None else {k: v for k, v in self._objects[plural].items() if k[0] != namespace}
            self._objects[plural] = {**kept, **{_key(item): item for item in items}}
        self._ready.get((plural, namespace), threading.Event()).set()
        self._publish(Change(plural, namespace, None, None))

    def apply(self, plural: str, kind: str, obj: dict[str, Any]) -> None:
        """A watch event (ADDED, MODIFIED, DELETED) applied to the copy."""
        key = _key(obj)
        with self._lock:
            if kind == "DELETED":
                self._objects[plural].pop(key, None)
            else:
                self._objects[plural][key] = obj
        self._publish(Change(plural, key[0], key[1], pipeline_of(plural, obj)))

    # ------------------------------------------------------------------ the watch threads
    def start(self) -> None:
        for source in self.sources:
            name = f"watch-{source[0]}" + (f"-{source[1]}" if source[1] else "")
            threading.Thread(target=self._keep_watching, args=(source,), name=name, daemon=True).start()

    def stop(self) -> None:
        self._stop.set()

    def _keep_watching(self, source: Source) -> None:
        while not self._stop.is_set():
            try:
                self._list_then_watch(source)
                self.errors.pop(source, None)
            except Exception as error:  # the API server refused or went away: say so, try again
                from datapipeline.cli.errors import explain

                if getattr(error, "status", None) == 410:
                    continue  # the version we watched from is gone: list again now
                self.errors[source] = explain(error)[0] + self._hint(error)
                log.warning("watching %s: %s", " in ".join(filter(None, source)), self.errors[source])
                self._ready[source].set()  # pages render (with the error) rather than wait
                self._stop.wait(RETRY_SECONDS)

    def _hint(self, error: BaseException) -> str:
        if getattr(error, "status", None) == 403 and self.watched is None:
            return " (to watch some namespaces only, start the console with --namespace NS for each)"
        return ""

    def _list_then_watch(self, source: Source) -> None:
        from kubernetes import watch as watch_module

        watch: Any = watch_module  # untyped
        plural, namespace = source
        listing = self._list(source)()
        self.replace_all(plural, list(listing.get("items") or []), namespace)
        self.errors.pop(source, None)
        version = (listing.get("metadata") or {}).get("resourceVersion")
        while not self._stop.is_set():
            watcher = watch.Watch()
            for event in _events(watcher, self._list(source), version):
                obj = event["object"]
                if event["type"] == "ERROR":
                    return  # 410 Gone and the like: list again
                version = (obj.get("metadata") or {}).get("resourceVersion") or version
                if event["type"] != "BOOKMARK":
                    self.apply(plural, event["type"], obj)
                if self._stop.is_set():
                    watcher.stop()

    def _list(self, source: Source) -> Callable[..., Any]:
        api = self._custom_api()
        plural, namespace = source
        if namespace:
            return lambda **kw: api.list_namespaced_custom_object(GROUP, VERSION, namespace, plural, **kw)
        return lambda **kw: api.list_cluster_custom_object(GROUP, VERSION, plural, **kw)


def _events(watcher: Any, lister: Callable[..., Any], version: str | None) -> Iterator[dict[str, Any]]:
    # The server ends the watch after timeout_seconds; the read timeout catches a connection that died silently.
    kwargs: dict[str, Any] = {"timeout_seconds": WATCH_SECONDS, "allow_watch_bookmarks": True,
                              "_request_timeout": (10, WATCH_SECONDS + 60)}
    if version:
        kwargs["resource_version"] = version
    yield from watcher.stream(lister, **kwargs)


def _key(obj: Mapping[str, Any]) -> Key:
    meta = obj.get("metadata") or {}
    return str(meta.get("namespace") or ""), str(meta.get("name") or "")


def _offer(queue: asyncio.Queue[Change], change: Change) -> None:
    """A subscriber that fell 1,000 changes behind loses the oldest: it re-renders anyway."""
    if queue.full():
        queue.get_nowait()
    queue.put_nowait(change)
