"""Every input problem of every CLI verb is one message naming the field or the cause: exit 1, no traceback.

Nothing here talks to a cluster: the commands that would are given no kube context, an API server that
refuses connections (127.0.0.1:1), or a stand-in for the API module.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException

from datapipeline.cli.main import main
from datapipeline.k8s import api

ROOT = Path(__file__).resolve().parents[2]
BOMB = "\n".join([f'a: &a [{", ".join(["lol"] * 9)}]'] +
                 [f"{b}: &{b} [{', '.join([f'*{a}'] * 9)}]" for a, b in zip("abcdefgh", "bcdefghi", strict=True)])
UNREACHABLE = """apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:1"}}]
users: [{name: u, user: {token: t}}]
contexts: [{name: x, context: {cluster: c, user: u}}]
current-context: x
"""


def cli(tmp_path: Path, *args: str, kubeconfig: str | None = None, **env: str) -> subprocess.CompletedProcess[str]:
    """The real command, with a home and kubeconfig of its own (never the developer's cluster)."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("KUBERNETES_", "DATAPIPELINE_"))}
    config = tmp_path / "kubeconfig"
    if kubeconfig is not None:
        config.write_text(kubeconfig)
    environ.update(HOME=str(tmp_path), KUBECONFIG=str(config), PYTHONDONTWRITEBYTECODE="1", **env)
    result = subprocess.run([sys.executable, "-m", "datapipeline.cli.main", *args], capture_output=True, text=True,
                            timeout=60, env=environ, cwd=tmp_path)
    assert "Traceback" not in result.stderr + result.stdout
    assert "internal error" not in result.stderr
    return result


def run_main(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    try:
        code = main(list(args))
    except SystemExit as exit_:
        code = 1 if isinstance(exit_.code, str) else int(exit_.code or 0)
        if isinstance(exit_.code, str):
            print(exit_.code, file=sys.stderr)
    err = capsys.readouterr().err
    assert "Traceback" not in err and "internal error" not in err
    return code, err


# ---------------------------------------------------------------------------------------------- no cluster
@pytest.mark.parametrize("args", [["list"], ["runs", "p"], ["describe", "r"], ["activate", "p"], ["cancel", "r"],
                                  ["logs", "r"], ["run", "p"], ["backfill", "p", "--from", "2026-01-01T00:00:00Z",
                                                                "--to", "2026-01-02T00:00:00Z"]])
def test_no_kube_context_is_one_clear_message(tmp_path: Path, args: list[str]) -> None:
    result = cli(tmp_path, *args)
    assert result.returncode == 1
    assert result.stderr == ("error: no Kubernetes cluster to talk to: Invalid kube-config file. No configuration "
                             "found. Point KUBECONFIG at a kubeconfig with a current context (as kubectl uses), or "
                             "run inside a cluster\n")


def test_an_unreachable_api_server_is_one_clear_message(tmp_path: Path) -> None:
    result = cli(tmp_path, "list", kubeconfig=UNREACHABLE)
    assert result.returncode == 1
    assert result.stderr.startswith("error: cannot reach the Kubernetes API server: ")
    assert "Connection refused" in result.stderr and result.stderr.count("\n") == 1


def test_a_broken_kubeconfig_is_one_clear_message(tmp_path: Path) -> None:
    result = cli(tmp_path, "list", kubeconfig="clusters: [\n")
    assert result.returncode == 1
    assert result.stderr.startswith("error: the kubeconfig is not valid YAML: while parsing a flow node")


def test_a_refused_request_says_what_the_api_server_said(capsys: pytest.CaptureFixture[str],
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    def forbidden(*_: Any) -> Any:
        error = ApiException(status=403, reason="Forbidden")
        error.body = json.dumps({"message": 'pipelineruns.datapipeline.io "r" is forbidden'})
        raise error

    monkeypatch.setattr(api, "get_object", forbidden)
    code, err = run_main(capsys, "describe", "r", "-n", "ns")
    assert code == 1
    assert err == ('error: the Kubernetes API server refused the request: 403 Forbidden: pipelineruns.datapipeline.io '
                   '"r" is forbidden\n')


# ---------------------------------------------------------------------------------------------- options
@pytest.mark.parametrize(("args", "message"), [
    (["run", "p", "--at", "yesterday"], 'error: --at: "yesterday" is not a date-time; write it like 2026-01-31T00:00:00Z'),
    (["backfill", "p", "--from", "2026-13-01", "--to", "2026-01-02"], 'error: --from: "2026-13-01" is not a date-time'),
    (["backfill", "p", "--from", "2026-01-01", "--to", "9" * 5000], "error: --to: \"999999"),
    (["run", "p", "--param", "myX"], "error: --param 'myX': write it as NAME=VALUE"),
])
def test_bad_options_name_the_option_before_any_cluster_call(capsys: pytest.CaptureFixture[str], args: list[str],
                                                              message: str) -> None:
    code, err = run_main(capsys, *args)
    assert code == 1 and err.startswith(message) and err.count("\n") == 1


def test_backfill_of_a_pipeline_beyond_the_limits_names_the_field(capsys: pytest.CaptureFixture[str],
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    stored = {"spec": {"schedule": {"period": "1 second", "startDateTime": "2026-01-01T00:00:00Z"},
                       "activities": [{"name": "a", "type": "ShellCommandActivity", "command": "x"}]}}
    monkeypatch.setattr(api, "get_object", lambda *_: stored)
    code, err = run_main(capsys, "backfill", "p", "-n", "ns", "--from", "2026-01-01T00:00:00Z",
                         "--to", "2026-01-02T00:00:00Z", "--dry-run")
    assert code == 1
    assert err == ('error: spec.schedule.period: "1 second" is shorter than the minimum period, 1 minute (set by '
                   "the operator's administrator)\n")


def test_new_refuses_a_huge_number(capsys: pytest.CaptureFixture[str]) -> None:
    code, err = run_main(capsys, "new", "getting-started-shell", "--set", "spec.maxActiveRuns=" + "9" * 5000)
    assert code == 1
    assert err == ("error: --set spec.maxActiveRuns: line 1, column 1: a number of 5000 digits is too large; at most "
                   "100 digits\n")


# ---------------------------------------------------------------------------------------------- validate
def test_validate_refuses_an_alias_bomb_quickly(tmp_path: Path) -> None:
    path = tmp_path / "bomb.yaml"
    path.write_text(BOMB + "\napiVersion: datapipeline.io/v1alpha1\nkind: Pipeline\n")
    result = cli(tmp_path, "validate", str(path))
    assert result.returncode == 1
    assert result.stderr == (f"{path}: line 6, column 8: the document holds more than 100,000 values once its YAML "
                             "aliases are expanded (an alias bomb?)\n")


def test_validate_follows_the_configured_minimum_period(tmp_path: Path) -> None:
    path = tmp_path / "fast.yaml"
    path.write_text("apiVersion: datapipeline.io/v1alpha1\nkind: Pipeline\nmetadata: {name: fast}\nspec:\n"
                    "  schedule: {period: 10 seconds, startDateTime: '2026-01-01T00:00:00Z'}\n"
                    "  activities: [{name: a, type: ShellCommandActivity, command: x}]\n")
    refused = cli(tmp_path, "validate", str(path))
    assert refused.returncode == 1
    assert refused.stderr == (f'{path} Pipeline/fast: spec.schedule.period: "10 seconds" is shorter than the minimum '
                              "period, 1 minute (set by the operator's administrator)\n")
    assert cli(tmp_path, "validate", str(path), DATAPIPELINE_MIN_SCHEDULE_PERIOD="10s").returncode == 0
    bad = cli(tmp_path, "validate", str(path), DATAPIPELINE_MIN_SCHEDULE_PERIOD="often")
    assert bad.returncode == 1
    assert bad.stderr == ('error: DATAPIPELINE_MIN_SCHEDULE_PERIOD: "often" is not a duration; write it like '
                          '"15 minutes", "2 hours" or "1h30m"\n')


# ---------------------------------------------------------------------------------------------- import-aws
@pytest.mark.parametrize(("text", "message"), [
    ('{"objects": [' + "[" * 450 + "]" * 450 + "]}", "the definition: objects" + "[0]" * 63 + ": is nested more than "
                                                     "64 levels deep"),
    ('{"objects": [],\n "x": ' + "1" * 5000 + "}", "the definition: line 2, column 7: a number of 5000 digits is "
                                                  "too large; at most 100 digits"),
    ('{"objects": [}', "the definition: not valid JSON: line 1, column 14: a value is missing here (after a "
                       "trailing comma, or where a quote is not a double quote)."),
    ("x" * 1_048_577, "the definition: the file is larger than 1,048,576 bytes"),
])
def test_import_aws_refuses_hostile_json_with_the_place(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                                        text: str, message: str) -> None:
    path = tmp_path / "definition.json"
    path.write_text(text)
    code, err = run_main(capsys, "import-aws", str(path))
    assert code == 1
    assert err == f"error: {path}: {message}\n"


def test_import_aws_refuses_a_hostile_values_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    values = tmp_path / "values.json"
    values.write_text('{"values": ' + "[" * 100 + "]" * 100 + "}")
    code, err = run_main(capsys, "import-aws", str(ROOT / "tests" / "aws" / "getting-started-shell.json"),
                         "--values", str(values))
    assert code == 1
    assert err.startswith(f"error: {values}: the values file: values" + "[0]" * 63 + ": is nested more than 64")
