"""The controller's guards, without a cluster: frozen definitions, failure reports and backoff, run ownership."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime
from typing import Any

from kubernetes.client.exceptions import ApiException

from datapipeline.controller.errors import MAX_DELAY, backoff, describe, ready_false
from datapipeline.controller.frozen import FROZEN_HASH, FROZEN_SPEC, digest, freeze, frozen_problem
from datapipeline.controller.pipelines import parsed, run_manifest

SPEC: dict[str, Any] = {"scheduleType": "ondemand",
                        "activities": [{"name": "a", "type": "ShellCommandActivity", "command": "true"}]}


def test_a_frozen_definition_is_trusted_only_with_its_hash() -> None:
    status = freeze(SPEC, 3)
    assert status["pipelineGeneration"] == 3 and status[FROZEN_HASH] == digest(SPEC)
    assert frozen_problem(status) is None
    tampered = {**status, FROZEN_SPEC: {**SPEC, "runnerImage": "evil:latest"}}
    assert frozen_problem(tampered) == (
        f"status.pipelineSpec: the run's frozen definition does not match its hash {status[FROZEN_HASH]}; it was "
        "changed after the run started, so the run is refused")
    assert frozen_problem({}) == "status.pipelineSpec: the run's frozen definition is missing or not an object"


def test_the_digest_does_not_depend_on_key_order() -> None:
    assert digest({"a": 1, "b": [1, 2]}) == digest({"b": [1, 2], "a": 1})
    assert digest({"a": 1}) != digest({"a": 2})


def test_backoff_doubles_with_jitter_up_to_a_cap() -> None:
    rng = random.Random(7)
    delays = [backoff(n, rng) for n in range(1, 12)]
    assert 1.0 <= delays[0] <= 2.0 and 4.0 <= delays[2] <= 8.0
    assert all(MAX_DELAY / 2 <= d <= MAX_DELAY for d in delays[9:])
    assert len({round(backoff(3, rng), 6) for _ in range(5)}) == 5  # jitter: replicas do not retry in step


def test_an_api_refusal_is_described_by_the_api_servers_own_message() -> None:
    error = ApiException(status=422, reason="Unprocessable Entity")
    error.body = json.dumps({"message": 'Job.batch "a/b" is invalid: metadata.name: Invalid value: "a/b"'})
    assert describe(error) == ('the API server refused a request (422 Unprocessable Entity): Job.batch "a/b" is '
                               'invalid: metadata.name: Invalid value: "a/b"')
    assert describe(ValueError("year 10000 is out of range")) == "ValueError: year 10000 is out of range"


def test_a_failure_sets_ready_false_and_keeps_other_conditions() -> None:
    status = {"conditions": [{"type": "Valid", "status": "True"},
                             {"type": "Ready", "status": "True", "lastTransitionTime": "2026-01-01T00:00:00Z"}]}
    out = ready_false(status, "boom")
    assert out[0] == {"type": "Valid", "status": "True"}
    assert out[1]["status"] == "False" and out[1]["reason"] == "ReconcileError" and out[1]["message"] == "boom"
    assert ready_false({}, "boom")[0]["type"] == "Ready"


def test_a_pipeline_is_parsed_once_per_generation() -> None:
    cache: dict[str, Any] = {}
    first, _ = parsed(SPEC, 1, cache)
    again, _ = parsed({"broken": True}, 1, cache)  # same generation: the cached parse, not a new one
    assert first is not None and again is first
    bad, message = parsed({"broken": True}, 2, cache)
    assert bad is None and message.startswith("spec.broken: ")


def test_runs_made_by_hand_are_owned_by_their_pipeline() -> None:
    pipeline = {"metadata": {"name": "p", "uid": "u-1"}}
    body = run_manifest("p", "ns", datetime(2026, 1, 1, tzinfo=UTC), None, "Manual", owner=pipeline)
    assert body["metadata"]["ownerReferences"] == [
        {"apiVersion": "datapipeline.io/v1alpha1", "kind": "Pipeline", "name": "p", "uid": "u-1",
         "controller": True, "blockOwnerDeletion": True}]


def test_a_frozen_copy_has_no_nulls_so_a_merge_patch_keeps_it_whole() -> None:
    from datapipeline.controller.frozen import without_nulls

    spec = {**SPEC, "description": None, "activities": [{**SPEC["activities"][0], "vars": {"myA": None}}]}
    frozen = freeze(spec, 1)
    assert frozen[FROZEN_SPEC] == without_nulls(spec) and "description" not in frozen[FROZEN_SPEC]
    assert frozen_problem(frozen) is None


def test_a_spec_too_big_to_copy_into_a_run_is_refused_with_its_size() -> None:
    from datapipeline.controller.frozen import MAX_FROZEN_BYTES, size_problem

    assert size_problem(SPEC) is None
    big = {**SPEC, "description": "x" * MAX_FROZEN_BYTES}
    message = size_problem(big)
    assert message is not None and message.startswith("the Pipeline's spec is ") and "at most 524,288 bytes" in message


def test_kopf_keeps_no_diff_base_because_no_handler_compares_against_one(monkeypatch: Any) -> None:
    import kopf

    from datapipeline.controller import main, metrics

    monkeypatch.setattr(metrics, "serve", lambda port: None)
    settings = kopf.OperatorSettings()
    main.configure(settings=settings)
    storage = settings.persistence.diffbase_storage
    assert isinstance(storage, main.NoDiffBase)
    assert storage.build(body=kopf.Body({"spec": {"big": list(range(100))}})) == {}
    # Safe only while every handler is an event watcher, an index or a webhook: an on.create/update/field
    # handler (a changing cause) or a daemon/timer (a spawning cause) would need kopf's diff base again.
    registry = kopf.get_default_registry()
    for group, version, plural in (("datapipeline.io", "v1alpha1", "pipelines"),
                                   ("datapipeline.io", "v1alpha1", "pipelineruns"),
                                   ("datapipeline.io", "v1alpha1", "taskattempts"),
                                   ("batch", "v1", "jobs"), ("", "v1", "pods")):
        resource = kopf.Resource(group, version, plural)
        assert not registry._changing.has_handlers(resource=resource), plural
        assert not registry._spawning.has_handlers(resource=resource), plural


def test_only_a_runs_jobs_and_pods_are_watched_server_side(monkeypatch: Any) -> None:
    import kopf

    from datapipeline.controller import main, metrics
    from datapipeline.k8s.jobs import LABEL_RUN

    monkeypatch.setattr(metrics, "serve", lambda port: None)
    settings = kopf.OperatorSettings()
    main.configure(settings=settings)
    selectors = settings.watching.label_selectors
    assert selectors.collect(kopf.Resource("batch", "v1", "jobs")) == [LABEL_RUN]
    assert selectors.collect(kopf.Resource("", "v1", "pods")) == [LABEL_RUN]
    assert selectors.collect(kopf.Resource("datapipeline.io", "v1alpha1", "pipelineruns")) == []
    # Every Job and pod handler filters on the same label, so nothing it handled is filtered away.
    registry = kopf.get_default_registry()
    for resource in (kopf.Resource("batch", "v1", "jobs"), kopf.Resource("", "v1", "pods")):
        handlers = [h for h in [*registry._watching.get_all_handlers(), *registry._indexing.get_all_handlers()]
                    if h.selector is not None and h.selector.check(resource)]
        assert handlers, resource.plural
        for handler in handlers:
            assert handler.labels is not None and LABEL_RUN in handler.labels, handler.id


def test_handler_successes_are_not_logged_but_failures_are() -> None:
    import logging

    from datapipeline.controller.main import QuietSuccesses

    def record(level: int, message: str) -> logging.LogRecord:
        return logging.LogRecord("kopf.objects", level, __file__, 1, message, None, None)

    quiet = QuietSuccesses()
    assert not quiet.filter(record(logging.INFO, "Handler 'job_event' succeeded."))
    assert quiet.filter(record(logging.ERROR, "Handler 'job_event' failed with an exception. Will retry."))
    assert quiet.filter(record(logging.INFO, "history limit: deleting run r-1"))


def test_the_write_client_takes_no_proxy_or_netrc_from_the_environment(tmp_path: Any, monkeypatch: Any) -> None:
    """Each write would look both up in a thread of the pass pool; the kubeconfig's proxy-url still counts."""
    import asyncio

    from datapipeline.k8s import async_api

    kubeconfig = tmp_path / "config"
    kubeconfig.write_text("""apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:6443", proxy-url: "http://127.0.0.1:3128",
            insecure-skip-tls-verify: true}}]
users: [{name: u, user: {token: t}}]
contexts: [{name: x, context: {cluster: c, user: u}}]
current-context: x
""")
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.setattr(async_api, "_client", None)

    async def made() -> tuple[bool, str | None]:
        api = await async_api._api()
        try:
            return api.rest_client.pool_manager.trust_env, api.rest_client.proxy
        finally:
            await async_api.close()

    assert asyncio.run(made()) == (False, "http://127.0.0.1:3128")
