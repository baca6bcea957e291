"""The console's web application over a cache filled by hand and a stand-in for the API: pages, filters,
bad input, refusals and actions, without a cluster or a browser."""

from __future__ import annotations

import json
import warnings
from collections.abc import Mapping
from typing import Any

import pytest
from console_objects import pipeline, run
from kubernetes.client.exceptions import ApiException
from starlette.exceptions import StarletteDeprecationWarning

from datapipeline.console.app import ACTION_HEADER, create_app
from datapipeline.console.auth import Access, Caller, bearer_token
from datapipeline.console.cache import WatchCache

with warnings.catch_warnings():  # starlette 1.x prefers its fork httpx2; httpx drives the test client the same
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from starlette.testclient import TestClient

HEADERS = {ACTION_HEADER: "1", "Content-Type": "application/json"}


class FakeKube:
    """The calls day2 makes, answered from a dict; ``refuse`` makes every patch a 403."""

    def __init__(self, objects: dict[tuple[str, str], dict[str, Any]], refuse: bool = False) -> None:
        self.objects = objects
        self.refuse = refuse
        self.patches: list[tuple[str, str, str, Mapping[str, Any]]] = []
        self.created: list[dict[str, Any]] = []

    def get_object(self, namespace: str, plural: str, name: str) -> dict[str, Any] | None:
        return self.objects.get((plural, name))

    def create_object(self, namespace: str, plural: str, body: Mapping[str, Any]) -> bool:
        self.created.append(dict(body))
        return True

    def patch_spec(self, namespace: str, plural: str, name: str, patch: Mapping[str, Any]) -> None:
        if self.refuse:
            error = ApiException(status=403, reason="Forbidden")
            error.body = json.dumps({"message": f'{plural}.datapipeline.io "{name}" is forbidden: User "viewer" '
                                                f'cannot patch resource "{plural}"'})
            raise error
        if (plural, name) not in self.objects:
            raise ApiException(status=404, reason="Not Found")
        self.patches.append((namespace, plural, name, patch))

    def core(self) -> Any:
        raise AssertionError("no pod is read in these tests")


def client(refuse: bool = False, access: Access | None = None) -> tuple[TestClient, FakeKube]:
    cache = WatchCache(None, custom_api=lambda: None)  # never started: filled by hand
    cache.replace_all("pipelines", [pipeline(health="ERROR", lastRun={"name": "daily-1", "status": "Failed"}),
                                    pipeline("weekly", "team-b", health="HEALTHY")])
    cache.replace_all("pipelineruns", [run("daily-1"), run("daily-2", "Succeeded", "2026-11-29T00:00:00Z",
                                                           activities={})])
    kube = FakeKube({("pipelineruns", "daily-1"): run("daily-1"), ("pipelines", "daily"): pipeline()}, refuse)
    return TestClient(create_app(cache, access or Access(in_cluster=False), kube)), kube


# ---------------------------------------------------------------------------------------------- pages
def test_the_pipelines_page_lists_and_filters() -> None:
    web, _ = client()
    page = web.get("/")
    assert page.status_code == 200
    assert 'data-pipeline="team-a/daily"' in page.text and 'data-pipeline="team-b/weekly"' in page.text
    only_errors = web.get("/?health=ERROR").text
    assert "team-a/daily" in only_errors and "team-b/weekly" not in only_errors
    assert "team-a/daily" not in web.get("/?namespace=team-b").text
    assert '<script src="/static/console.js"' in page.text and "http" not in page.text.split("<body")[0]


def test_every_answer_forbids_framing_and_foreign_scripts() -> None:
    web, _ = client()
    for path in ("/", "/runs/team-a/nope", "/static/console.js", "/states.css"):
        headers = web.get(path).headers
        assert "frame-ancestors 'none'" in headers["content-security-policy"], path
        assert headers["x-content-type-options"] == "nosniff"
    styles = web.get("/states.css")
    assert styles.headers["content-type"].startswith("text/css") and ".state-FAILED{background:#e5534b}" in styles.text


def test_a_pipeline_page_draws_the_newest_run_and_pages_its_runs() -> None:
    web, _ = client()
    page = web.get("/pipelines/team-a/daily")
    assert page.status_code == 200
    assert 'id="graph-run">daily-1<' in page.text  # the newest scheduled start
    assert "<svg" in page.text and "state&#45;FAILED" in page.text
    assert 'data-run="daily-2"' in web.get("/pipelines/team-a/daily?status=Succeeded").text
    assert 'data-run="daily-1"' not in web.get("/pipelines/team-a/daily?status=Succeeded").text
    since = web.get("/pipelines/team-a/daily?since=2026-11-30").text
    assert 'data-run="daily-1"' in since and 'data-run="daily-2"' not in since
    live = web.get("/pipelines/team-a/daily?fragment=live").text
    assert "<html" not in live and 'id="runs"' in live


def test_a_run_page_shows_attempts_and_its_actions() -> None:
    web, _ = client()
    page = web.get("/runs/team-a/daily-1").text
    assert 'data-phase="Failed"' in page and "first boom" in page
    assert 'data-action="rerun-failed"' in page and 'data-action="cancel"' not in page
    assert 'data-cli="datapipeline rerun daily-1 --failed-only -n team-a"' in page


@pytest.mark.parametrize(("url", "status", "message"), [
    ("/runs/team-a/nope", 404, "no PipelineRun nope in namespace team-a"),
    ("/pipelines/team-a/nope", 404, "no Pipeline nope in namespace team-a"),
    ("/pipelines/team-a/daily?run=nope", 404, "the pipeline has no run named nope"),
    ("/pipelines/team-a/daily?page=abc", 400, "page: &#34;abc&#34; is not a page number"),
    ("/pipelines/team-a/daily?status=Exploded", 400, "status: &#34;Exploded&#34; is not one of Pending"),
    ("/pipelines/team-a/daily?since=last+week", 400, "since: &#34;last week&#34; is not a date (2026-11-30) or date-time"),
    ("/?health=GREEN", 400, "health: &#34;GREEN&#34; is not one of HEALTHY, ERROR, UNKNOWN"),
])
def test_bad_page_requests_get_one_clear_message(url: str, status: int, message: str) -> None:
    web, _ = client()
    page = web.get(url)
    assert page.status_code == status
    assert message in page.text and "Traceback" not in page.text


# ---------------------------------------------------------------------------------------------- actions
def test_rerun_failed_is_the_cli_verb_patch() -> None:
    web, kube = client()
    answer = web.post("/api/actions", headers=HEADERS,
                      content=json.dumps({"action": "rerun-failed", "namespace": "team-a", "run": "daily-1"}))
    assert answer.status_code == 200 and answer.json()["message"].startswith("pipelinerun/daily-1 rerun ")
    namespace, plural, name, patch = kube.patches[0]
    assert (namespace, plural, name) == ("team-a", "pipelineruns", "daily-1")
    assert patch["spec"]["rerun"]["failedOnly"] is True and patch["spec"]["cancel"] is False


def test_other_actions_patch_what_their_cli_verbs_patch() -> None:
    web, kube = client()
    for body in ({"action": "cancel", "run": "daily-1"}, {"action": "pause", "pipeline": "daily"},
                 {"action": "mark-finished", "run": "daily-1", "activity": "load"},
                 {"action": "rerun-downstream", "run": "daily-1", "activity": "extract"}):
        answer = web.post("/api/actions", headers=HEADERS, content=json.dumps({**body, "namespace": "team-a"}))
        assert answer.status_code == 200, answer.text
    assert [p[3]["spec"] for p in kube.patches][:3] == [{"cancel": True}, {"paused": True},
                                                         {"markFinished": ["load"]}]
    assert kube.patches[3][3]["spec"]["rerun"]["activities"] == ["extract"]
    assert kube.patches[3][3]["spec"]["rerun"]["downstream"] is True
    answer = web.post("/api/actions", headers=HEADERS,
                      content=json.dumps({"action": "run-now", "namespace": "team-a", "pipeline": "daily"}))
    assert answer.status_code == 200 and kube.created[0]["spec"]["trigger"] == "Manual"


def test_run_now_takes_a_time_and_parameter_values_checked_as_the_cli_checks_them() -> None:
    web, kube = client()
    page = web.get("/pipelines/team-a/daily").text
    assert '"key": "param:myDay"' in page and "param:myTable" not in page  # only what a run may set
    body = {"action": "run-now", "namespace": "team-a", "pipeline": "daily",
            "fields": {"at": "2026-11-30T12:00:00Z", "param:myDay": "2026-02-03"}}
    answer = web.post("/api/actions", headers=HEADERS, content=json.dumps(body))
    assert answer.json() == {"message": "pipelinerun/daily-manual-20261130t1200z created"}
    assert kube.created[0]["spec"]["values"] == {"myDay": "2026-02-03"}
    for fields, message in (({"param:myDay": "yesterday"}, "--param myDay"), ({"at": "soon"}, 'at: "soon" is not'),
                            ({"param:myTable": "x"}, "--param myTable")):
        refused = web.post("/api/actions", headers=HEADERS, content=json.dumps({**body, "fields": fields}))
        assert refused.status_code == 400 and refused.json()["error"].startswith(message), refused.json()
    assert len(kube.created) == 1


def test_backfill_creates_a_run_per_interval_of_the_range() -> None:
    web, kube = client()
    body = {"action": "backfill", "namespace": "team-a", "pipeline": "daily",
            "fields": {"from": "2026-01-01T00:00:00Z", "to": "2026-01-04T00:00:00Z"}}
    answer = web.post("/api/actions", headers=HEADERS, content=json.dumps(body))
    assert answer.json()["message"].startswith("pipelinerun/daily-20260101t0000z created; ")
    assert [r["spec"]["trigger"] for r in kube.created] == ["Backfill"] * 3
    missing = web.post("/api/actions", headers=HEADERS, content=json.dumps({**body, "fields": {"from": "x"}}))
    assert missing.status_code == 400 and missing.json()["error"].startswith("to: required")


@pytest.mark.parametrize(("body", "status", "message"), [
    ({"action": "cancel", "namespace": "team-a", "run": "nope"}, 404, "no PipelineRun nope in team-a"),
    ({"action": "explode", "namespace": "team-a", "run": "x"}, 400, 'action: "explode" is not one of'),
    ({"action": "cancel", "namespace": "team-a", "run": "Bad Name"}, 400, 'run: "Bad Name" is not a Kubernetes name'),
    ({"action": "cancel", "namespace": "team-a"}, 400, "run: required"),
    ({"action": "rerun-activity", "namespace": "team-a", "run": "daily-1", "activity": "nosuch"}, 400,
     'run daily-1 has no activity named "nosuch" (its activities: extract, load, report)'),
    ([1, 2], 400, "the request is not a JSON object"),
    ({"action": "run-now", "namespace": "team-a", "pipeline": "daily", "fields": {"at": 5}}, 400,
     "fields.at: must be text"),
])
def test_bad_actions_get_one_clear_message(body: Any, status: int, message: str) -> None:
    web, kube = client()
    answer = web.post("/api/actions", headers=HEADERS, content=json.dumps(body))
    assert answer.status_code == status and answer.json()["error"].startswith(message)
    assert kube.patches == []


def test_a_body_that_is_not_json_is_said_so() -> None:
    web, _ = client()
    answer = web.post("/api/actions", headers=HEADERS, content="rerun please")
    assert answer.status_code == 400 and answer.json() == {"error": "the request's body is not JSON"}


def test_the_api_servers_refusal_is_shown_as_such() -> None:
    web, _ = client(refuse=True)
    answer = web.post("/api/actions", headers=HEADERS,
                      content=json.dumps({"action": "rerun-failed", "namespace": "team-a", "run": "daily-1"}))
    assert answer.status_code == 403
    assert answer.json()["error"] == ('the Kubernetes API server refused the request: 403 Forbidden: '
                                      'pipelineruns.datapipeline.io "daily-1" is forbidden: User "viewer" cannot '
                                      'patch resource "pipelineruns"')


def test_an_action_from_another_page_is_refused() -> None:
    web, kube = client()
    body = json.dumps({"action": "cancel", "namespace": "team-a", "run": "daily-1"})
    assert web.post("/api/actions", content=body, headers={"Content-Type": "application/json"}).status_code == 403
    form = web.post("/api/actions", data={"action": "cancel"}, headers={ACTION_HEADER: "1"})
    assert form.status_code == 403 and kube.patches == []


def test_a_log_request_with_a_malformed_attempt_is_refused_before_any_call() -> None:
    web, _ = client()
    answer = web.get("/api/log?namespace=team-a&run=daily-1&activity=load&attempt=two")
    assert answer.status_code == 400 and answer.json() == {"error": 'attempt: "two" is not a whole number'}
    assert web.get("/api/log?namespace=team-a&run=daily-1").json() == {"error": "activity: required"}


# ---------------------------------------------------------------------------------------------- in the cluster
def test_in_the_cluster_a_request_needs_a_bearer_token() -> None:
    web, _ = client(access=Access(in_cluster=True, review=lambda *_: True))
    assert web.get("/").status_code == 401
    assert web.post("/api/actions", headers=HEADERS, content="{}").status_code == 401
    assert bearer_token({"authorization": "Bearer abc"}) == "abc"
    assert bearer_token({"authorization": "Basic abc"}) is None and bearer_token({}) is None


def test_in_the_cluster_the_cache_shows_only_what_the_user_may_list() -> None:
    asked: list[tuple[str, str, str]] = []

    def review(_: Any, verb: str, plural: str, namespace: str) -> bool:
        asked.append((verb, plural, namespace))
        return namespace == "team-b"

    web, _ = client(access=Access(in_cluster=True, review=review))
    page = web.get("/", headers={"Authorization": "Bearer t0ken"}).text
    assert "team-b/weekly" in page and "team-a/daily" not in page
    assert web.get("/runs/team-a/daily-1", headers={"Authorization": "Bearer t0ken"}).status_code == 404
    web.get("/", headers={"Authorization": "Bearer t0ken"})
    assert asked.count(("list", "pipelines", "team-a")) == 1  # the answer is kept for a while


def test_an_access_review_is_asked_again_once_it_is_old() -> None:
    now = [0.0]
    answers = iter([True, False])
    access = Access(in_cluster=True, review=lambda *_: next(answers), clock=lambda: now[0])
    caller = Caller(client=object(), token_digest="d")
    assert access.may(caller, "list", "pipelines", "ns")
    now[0] = 29.0
    assert access.may(caller, "list", "pipelines", "ns")
    now[0] = 31.0
    assert not access.may(caller, "list", "pipelines", "ns")
    assert Access(in_cluster=False).may(Caller(), "list", "pipelines", "ns")


# ---------------------------------------------------------------------------------------------- the command
def test_the_command_says_a_bad_or_taken_port_before_any_cluster_call() -> None:
    import socket

    from datapipeline.cli.main import build_parser

    def run_console(*argv: str) -> str:
        args = build_parser().parse_args(["console", *argv])
        with pytest.raises(ValueError) as refused:
            args.func(args)
        return str(refused.value)

    assert run_console("--port", "0") == "--port: 0 is not a port number (1-65535)"
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert run_console("--port", str(port)) == f"--port {port}: cannot listen on 127.0.0.1: Address already in use"
