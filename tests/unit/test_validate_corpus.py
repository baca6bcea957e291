"""`datapipeline validate` on the examples (all accepted) and on a corpus of broken manifests (each rejected).

Each file under tests/definitions/broken/ starts with ``# expect: TEXT``: TEXT must appear in what validate
prints for that file, with the field path. The real command runs once over the whole corpus as a subprocess
(exit code, stderr, no traceback); every file is also checked on its own, in process, which is fast.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest

from datapipeline.cli.main import main
from datapipeline.cli.validate import expression_comments, validate_files

ROOT = Path(__file__).resolve().parents[2]
BROKEN = sorted((ROOT / "tests" / "definitions" / "broken").glob("*.yaml"))
# Kustomize configuration files are not manifests.
EXAMPLES = sorted(p for p in (ROOT / "examples").rglob("*.yaml") if p.name != "kustomization.yaml")
TEMPLATES = sorted((ROOT / "operator" / "datapipeline" / "templates").glob("*.yaml"))


def expectation(path: Path) -> str:
    first = path.read_text(encoding="utf-8").splitlines()[0]
    assert first.startswith("# expect: "), f"{path.name}: the first line must be '# expect: <message>'"
    return first.removeprefix("# expect: ")


def run_cli(*args: str | Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    return subprocess.run([sys.executable, "-m", "datapipeline.cli.main", *map(str, args)], capture_output=True,
                          text=True, timeout=120, env=env, cwd=ROOT)


def test_the_corpus_is_large_enough() -> None:
    assert len(BROKEN) >= 35


def test_every_example_and_template_is_valid() -> None:
    files = [*EXAMPLES, *TEMPLATES]
    assert files, "no examples found"
    result = run_cli("validate", *files)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert result.stdout.count(": valid") >= len(files)


def test_the_real_command_rejects_the_whole_corpus() -> None:
    result = run_cli("validate", *BROKEN)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr + result.stdout
    assert "internal error" not in result.stderr
    lines = result.stderr.splitlines()
    for path in BROKEN:
        mine = [line for line in lines if line.startswith(f"{path}:") or line.startswith(f"{path}[")
                or line.startswith(f"{path} ")]
        assert mine, f"{path.name}: nothing printed"
        assert any(expectation(path) in line for line in mine), f"{path.name}: {mine}"
    assert "valid" not in result.stdout


@pytest.mark.parametrize("path", BROKEN, ids=[p.stem for p in BROKEN])
def test_each_broken_manifest_is_rejected_with_its_message(path: Path) -> None:
    out, err = io.StringIO(), io.StringIO()
    assert validate_files([path], out, err) == 1
    printed = err.getvalue()
    assert expectation(path) in printed
    assert "internal error" not in printed
    # Each file holds one mistake, reported once (no cascade of follow-up errors).
    assert len(printed.splitlines()) == 1, printed
    assert out.getvalue() == ""


def test_main_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(ROOT / "examples" / "s3-to-postgres.yaml")]) == 0
    assert main(["validate", str(BROKEN[0])]) == 1
    assert main(["validate", str(tmp_path / "missing.yaml")]) == 1
    assert "cannot read" in capsys.readouterr().err


def test_a_file_without_pipelines_is_an_error(tmp_path: Path) -> None:
    secret = tmp_path / "secret.yaml"
    secret.write_text("apiVersion: v1\nkind: Secret\nmetadata: {name: s}\nstringData: {a: b}\n")
    empty = tmp_path / "empty.yaml"
    empty.write_text("# nothing here\n")
    err = io.StringIO()
    assert validate_files([secret, empty], io.StringIO(), err) == 1
    assert err.getvalue().count("no Pipeline or PipelineRun in this file") == 2


def test_binary_and_odd_files_are_clear_errors(tmp_path: Path) -> None:
    binary = tmp_path / "image.yaml"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\xff\xfe")
    scalar = tmp_path / "scalar.yaml"
    scalar.write_text("just a string\n")
    deep = tmp_path / "deep.yaml"
    deep.write_text("[" * 1000 + "]" * 1000)
    err = io.StringIO()
    assert validate_files([binary, scalar, deep], io.StringIO(), err) == 1
    text = err.getvalue()
    assert "not UTF-8" in text
    assert "document: must be a mapping" in text
    assert "nested too deeply" in text
    assert "Traceback" not in text


def test_a_valid_pipelinerun_passes(tmp_path: Path) -> None:
    run = tmp_path / "run.yaml"
    run.write_text("apiVersion: datapipeline.io/v1alpha1\nkind: PipelineRun\nmetadata: {name: r1}\n"
                   "spec:\n  pipelineRef: {name: hello-shell}\n  scheduledStartTime: 2026-01-01T00:00:00Z\n"
                   "  rerun: {id: '2', failedOnly: true}\n")
    out = io.StringIO()
    assert validate_files([run], out, io.StringIO()) == 0
    assert "PipelineRun/r1: valid" in out.getvalue()


def test_expression_comments_only_flags_what_yaml_drops() -> None:
    text = (
        "a: echo #{x}\n"  # dropped: flagged
        "b: 'echo #{x}'\n"  # quoted: fine
        "c: |\n  echo #{x}\n"  # block scalar: fine
        "# d: echo #{x}\n"  # a comment line: fine
        "e: run # note #{x}\n"  # inside an earlier comment: fine
        "f: s3://b/#{x}\n"  # no space before #: fine
    )
    found = expression_comments(text)
    assert len(found) == 1 and found[0].startswith("line 1, column 9:")


def test_other_groups_kinds_are_left_alone(tmp_path: Path) -> None:
    mixed = tmp_path / "mixed.yaml"
    mixed.write_text("apiVersion: tekton.dev/v1\nkind: Pipeline\nmetadata: {name: build}\nspec: {tasks: []}\n---\n"
                     + (ROOT / "examples" / "s3-to-postgres.yaml").read_text())
    out, err = io.StringIO(), io.StringIO()
    assert validate_files([mixed], out, err) == 0, err.getvalue()
    assert "Pipeline/s3-to-postgres: valid" in out.getvalue() and "build" not in out.getvalue()


def test_problems_name_the_object_next_to_its_index(tmp_path: Path) -> None:
    """The name is the AWS id of an imported object: users find it in what they wrote."""
    path = tmp_path / "muted.yaml"
    path.write_text("apiVersion: datapipeline.io/v1alpha1\nkind: Pipeline\nmetadata: {name: m}\nspec:\n"
                    "  scheduleType: ondemand\n  activities:\n  - {name: Mute, type: ShellCommandActivity, "
                    "command: 'echo #{myNope}'}\n")
    err = io.StringIO()
    assert validate_files([path], io.StringIO(), err) == 1
    assert 'Pipeline/m: spec.activities[0] (Mute).command: #{myNope} refers to nothing' in err.getvalue()
