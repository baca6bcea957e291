"""Running the runner as a plain process, the way a Job's container runs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from fixtures.servers import S3Server

from datapipeline.core.definition import parse_pipeline
from datapipeline.core.resolve import Resolved, RunContext, resolve_command
from datapipeline.core.task import TaskResult


@dataclass
class Run:
    code: int
    result: TaskResult
    stdout: str
    stderr: str
    termination: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr + self.termination


def task(kind: str, type_: str, fields: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    return {"version": 1, "kind": kind, "type": type_, "name": extra.pop("name", f"My{type_}"),
            "pipeline": "p1", "run": "p1-20261121t1000", "attempt": 1, "fields": fields or {}, **extra}


def s3_node(name: str, fmt: dict[str, Any] | None = None, **fields: Any) -> dict[str, Any]:
    node: dict[str, Any] = {"name": name, "type": "S3DataNode", "fields": fields}
    if fmt:
        node["data_format"] = fmt
    return node


def sql_node(name: str, db: dict[str, Any], type_: str = "SqlDataNode", **fields: Any) -> dict[str, Any]:
    return {"name": name, "type": type_, "fields": fields, "database": db}


def csv(*columns: str, **fields: Any) -> dict[str, Any]:
    return {"type": "CSV", "fields": {**({"column": list(columns)} if columns else {}), **fields}}


@dataclass
class Runner:
    tmp: Path
    env: dict[str, str] = field(default_factory=dict)

    def __call__(self, spec: dict[str, Any], env: dict[str, str] | None = None, timeout: float = 120) -> Run:
        term = self.tmp / f"termination-{uuid.uuid4().hex[:8]}"
        scratch = self.tmp / "scratch"
        scratch.mkdir(exist_ok=True)
        full = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "DATAPIPELINE_"))}
        full.update({"DATAPIPELINE_TASK": json.dumps(spec), "DATAPIPELINE_TERMINATION_LOG": str(term),
                     "DATAPIPELINE_PROGRESS_INTERVAL": "0.5", "DATAPIPELINE_WEBHOOK_BACKOFF": "0.05",
                     "TMPDIR": str(scratch), "AWS_EC2_METADATA_DISABLED": "true",
                     "AWS_CONFIG_FILE": "/dev/null", "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
                     **self.env, **(env or {})})
        proc = subprocess.run([sys.executable, "-m", "datapipeline.runner.main"], env=full, capture_output=True,
                              text=True, timeout=timeout)
        text = term.read_text() if term.exists() else ""
        result = TaskResult.from_json(text) if text else TaskResult("MISSING")
        return Run(proc.returncode, result, proc.stdout, proc.stderr, text)


def assert_failed(run: Run, error_id: str, message: str | None = None, code: int = 1) -> None:
    assert run.code == code, run.output
    assert run.result.status == "FAILED", run.output
    assert run.result.error_id == error_id, run.output
    if message is not None:
        assert run.result.error_message == message, run.output
    assert "Traceback" not in run.output, run.output


# ------------------------------------------------------------------------------------- from a pipeline
RUN_START = datetime(2026, 11, 21, 10, tzinfo=UTC)


def resolve(pipeline_spec: dict[str, Any], kind: str, obj: str, activity: str | None = None, attempt: int = 1, *,
            pipeline: str = "p1", run: str = "p1-20261121t1000z", guarded_node: str | None = None,
            node: dict[str, Any] | None = None, values: dict[str, Any] | None = None) -> Resolved:
    """The TaskSpec (and Secret refs) the operator would launch for ``obj`` of a Pipeline's spec.

    ``values`` are the Pipeline's own (``spec.values``, as ``datapipeline new --set`` writes them), not a run's.
    """
    if values:
        pipeline_spec = {**pipeline_spec, "values": {**(pipeline_spec.get("values") or {}), **values}}
    definition = parse_pipeline(pipeline_spec)
    context = RunContext(pipeline, run, RUN_START, RUN_START + timedelta(days=1))
    return resolve_command(definition, context, kind, obj, activity or obj, attempt, guarded_node, node or {},
                           RUN_START)


def template(name: str) -> dict[str, Any]:
    """A shipped template's Pipeline spec (operator/datapipeline/templates/<name>.yaml)."""
    import yaml

    path = Path(__file__).resolve().parents[2] / "operator" / "datapipeline" / "templates" / f"{name}.yaml"
    spec: dict[str, Any] = yaml.safe_load(path.read_text())["spec"]
    return spec


def s3_aws(minio: S3Server) -> dict[str, Any]:
    """TaskSpec.aws for MinIO as this host reaches it."""
    return {"region": "us-east-1", "s3_endpoint_url": minio.endpoint, "s3_path_style": True}
