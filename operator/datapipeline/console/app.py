"""The console's web application: pages from the watch cache, server-sent events, the day-2 actions.

Pages are rendered on the server with Jinja2; each has a live part (``?fragment=live``) that its script
fetches again when ``/events`` says something it shows changed. Actions are ``POST /api/actions`` with a
JSON body and the header ``X-Datapipeline-Console``, and call :mod:`datapipeline.day2`, as the CLI does.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Callable, Mapping
from pathlib import Path
from typing import Any

import jinja2
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from datapipeline import day2
from datapipeline.console.actions import ActionRequest, perform
from datapipeline.console.auth import Access, Caller, Unauthenticated
from datapipeline.console.cache import Change, WatchCache
from datapipeline.console.graph import STATE_COLOURS
from datapipeline.console.pages import PageNotFound, pipeline_page, pipelines_page, run_page
from datapipeline.console.problems import problem_message, problem_status

log = logging.getLogger("datapipeline.console")
HERE = Path(__file__).parent
ACTION_HEADER = "x-datapipeline-console"
HEARTBEAT_SECONDS = 15.0
# Every answer: only the console's own scripts and styles run, and no other site may frame it (a framed
# console could be clicked through its confirmations).
SECURITY_HEADERS = [
    (b"content-security-policy", b"default-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
]
LOG_TAIL_LINES = 5000  # of a live pod's log; a page shows the end of a long log, as `kubectl logs --tail` would
LOG_MAX_CHARS = 500_000


def create_app(cache: WatchCache, access: Access, kube: Any = None, allowed_hosts: list[str] | None = None) -> Starlette:
    """The application over ``cache``; ``kube`` is what the actions call (default :mod:`datapipeline.k8s.api`)."""
    templates = Jinja2Templates(env=_environment())
    console = _Console(cache, access, kube, templates)
    routes = [
        Route("/", console.pipelines), Route("/pipelines/{namespace}/{name}", console.pipeline),
        Route("/runs/{namespace}/{name}", console.run), Route("/events", console.events),
        Route("/api/actions", console.action, methods=["POST"]), Route("/api/log", console.log),
        Route("/healthz", lambda _: Response("ok")), Route("/states.css", _state_styles),
        Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
    ]
    middleware = [Middleware(_SecurityHeaders)]
    if allowed_hosts:
        middleware.append(Middleware(TrustedHostMiddleware, allowed_hosts=allowed_hosts))

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        yield
        cache.stop()

    return Starlette(routes=routes, middleware=middleware, lifespan=lifespan)


class _SecurityHeaders:
    """Adds SECURITY_HEADERS to every HTTP answer (a plain ASGI wrapper: it leaves event streams streaming)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *SECURITY_HEADERS]
            await send(message)

        await self.app(scope, receive, with_headers)


def _state_styles(_: Request) -> Response:
    """The state colours of graph nodes, badges and bars, from the one table in console/graph.py."""
    rules = "".join(f".state-{state}{{background:{colour}}}\n" for state, colour in STATE_COLOURS.items())
    return Response(rules, media_type="text/css")


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(HERE / "templates"), autoescape=True,
                             undefined=jinja2.StrictUndefined)
    env.filters["when"] = lambda stamp: stamp.replace("T", " ") if stamp else "-"
    return env


class _Console:
    def __init__(self, cache: WatchCache, access: Access, kube: Any, templates: Jinja2Templates) -> None:
        self.cache = cache
        self.access = access
        self.kube = kube
        self.templates = templates

    # ------------------------------------------------------------------ pages
    async def pipelines(self, request: Request) -> Response:
        return await self._page(request, "pipelines.html", lambda caller: pipelines_page(
            self.cache, self._readable(caller), request.query_params))

    async def pipeline(self, request: Request) -> Response:
        namespace, name = request.path_params["namespace"], request.path_params["name"]
        return await self._page(request, "pipeline.html", lambda caller: pipeline_page(
            self.cache, self._readable(caller), namespace, name, request.query_params))

    async def run(self, request: Request) -> Response:
        namespace, name = request.path_params["namespace"], request.path_params["name"]
        return await self._page(request, "run.html", lambda caller: run_page(
            self.cache, self._readable(caller), namespace, name))

    async def _page(self, request: Request, template: str, build: Callable[[Caller], dict[str, Any]]) -> Response:
        try:
            caller = self.access.caller(request.headers)
            page = await run_in_threadpool(build, caller)  # a graph's layout runs dot: not on the loop
        except (PageNotFound, day2.Day2Error, Unauthenticated) as error:
            return self._error_page(request, error)
        page["watch_errors"] = sorted(set(self.cache.errors.values()))
        if request.query_params.get("fragment") == "live":
            template = template.replace(".html", "_live.html")
        return self.templates.TemplateResponse(request, template, page)

    def _error_page(self, request: Request, error: Exception) -> Response:
        status = 401 if isinstance(error, Unauthenticated) else 404 if isinstance(error, PageNotFound) else 400
        return self.templates.TemplateResponse(request, "error.html", {"message": str(error), "watch_errors": []},
                                               status_code=status)

    def _readable(self, caller: Caller) -> Callable[[str, str], bool]:
        """May the caller read ``plural`` in ``namespace``? (Always, locally: the cache is the user's own.)"""
        return lambda plural, namespace: self.access.may(caller, "list", plural, namespace)

    # ------------------------------------------------------------------ live updates
    async def events(self, request: Request) -> Response:
        params = request.query_params
        namespace, pipeline, run = params.get("namespace"), params.get("pipeline"), params.get("run")
        try:
            readable = self._readable(self.access.caller(request.headers))
        except Unauthenticated as error:
            return self._problem(error)
        queue = self.cache.subscribe()

        async def stream() -> AsyncIterator[str]:
            try:
                yield "retry: 2000\n\n"
                while True:
                    try:
                        change = await asyncio.wait_for(queue.get(), HEARTBEAT_SECONDS)
                    except TimeoutError:
                        yield ": still here\n\n"  # keeps proxies from closing an idle stream
                        continue
                    if await _shown(change, readable, namespace, pipeline, run):
                        data = json.dumps({"plural": change.plural, "namespace": change.namespace,
                                           "name": change.name})
                        yield f"event: change\ndata: {data}\n\n"
            finally:
                self.cache.unsubscribe(queue)

        return StreamingResponse(stream(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})

    # ------------------------------------------------------------------ actions and logs
    async def action(self, request: Request) -> Response:
        if request.headers.get(ACTION_HEADER) != "1" or "json" not in request.headers.get("content-type", ""):
            return JSONResponse({"error": "actions are JSON requests from the console's own pages"}, 403)
        try:
            caller = self.access.caller(request.headers)
            try:
                body = await request.json()
            except ValueError:
                raise day2.Day2Error("the request's body is not JSON") from None
            order = ActionRequest.from_json(body)
            message = await run_in_threadpool(perform, self._kube(), caller, order)
        except Exception as error:
            return self._problem(error)
        return JSONResponse({"message": message})

    async def log(self, request: Request) -> Response:
        params = request.query_params
        try:
            caller = self.access.caller(request.headers)
            namespace, run, activity = (_required(params, key) for key in ("namespace", "run", "activity"))
            attempt = _number(params.get("attempt"), "attempt")
            logs = await run_in_threadpool(_acting, caller, day2.attempt_logs, self._kube(), namespace, run,
                                           activity, attempt, LOG_TAIL_LINES)
        except Exception as error:
            return self._problem(error)
        return JSONResponse([{"activity": x.activity, "attempt": x.attempt, "job": x.job, "source": x.source,
                              "text": x.text[-LOG_MAX_CHARS:]} for x in logs])

    def _kube(self) -> Any:
        if self.kube is None:
            from datapipeline.k8s import api

            self.kube = api
        return self.kube

    def _problem(self, error: Exception) -> Response:
        status = problem_status(error)
        if status >= 500:
            log.exception("console request failed")
        return JSONResponse({"error": problem_message(error)}, status)


async def _shown(change: Change, readable: Callable[[str, str], bool], namespace: str | None, pipeline: str | None,
                 run: str | None) -> bool:
    """The page shows what changed and its user may read it (an access review may ask the API server: off the
    loop)."""
    if not change.concerns(namespace, pipeline, run):
        return False
    return change.namespace is None or bool(await run_in_threadpool(readable, change.plural, change.namespace))


def _acting(caller: Caller, function: Callable[..., Any], *args: Any) -> Any:
    from datapipeline.k8s import api

    if caller.client is None:
        return function(*args)
    with api.acting_as(caller.client):
        return function(*args)


def _required(params: Mapping[str, str], key: str) -> str:
    value = params.get(key)
    if not value:
        raise day2.Day2Error(f"{key}: required")
    return value


def _number(value: str | None, key: str) -> int | None:
    if value in (None, ""):
        return None
    if not value.isdigit() or len(value) > 6:
        raise day2.Day2Error(f'{key}: "{value[:20]}" is not a whole number')
    return int(value)


__all__ = ["create_app"]
