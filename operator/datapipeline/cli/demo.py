"""`datapipeline demo`: install the chart, run the getting-started pipeline, show how its run went.

Works against the current kube context (KUBECONFIG). `make demo` first brings up the local cluster
and imports the image, then calls this.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from datapipeline.cli.templates import apply_settings, template_text
from datapipeline.core.loader import load_yaml

RELEASE = "datapipeline"
SYSTEM_NAMESPACE = "datapipeline-system"
PIPELINE = "hello"


def find_helm(explicit: str | None = None) -> str:
    found = explicit or shutil.which("helm")
    if not found:
        cache = Path(os.environ.get("KDP_CACHE", Path.home() / ".cache" / "kube-datapipeline"))
        candidates = sorted(cache.glob("helm-*/bin/helm"))
        found = str(candidates[-1]) if candidates else None
    if not found:
        raise SystemExit("error: helm not found; install it or run `make cluster-up`, which builds it")
    return found


def _step(text: str) -> None:
    print(f"==> {text}", flush=True)


def crds_managed_elsewhere() -> bool:
    """True when the CRDs exist but Helm does not own them (applied with kubectl, e.g. by the tests)."""
    from datapipeline.k8s import api

    labels = api.crd_labels("pipelines.datapipeline.io")
    return labels is not None and labels.get("app.kubernetes.io/managed-by") != "Helm"


def install_chart(args: argparse.Namespace) -> None:
    repository, _, tag = args.image.rpartition(":")
    # The demo's operator watches only the demo namespace, so it never competes with another operator.
    command = [find_helm(args.helm), "upgrade", "--install", RELEASE, str(args.chart), "-n", SYSTEM_NAMESPACE,
               "--create-namespace", "--set", f"image.repository={repository}", "--set", f"image.tag={tag}",
               "--set", f"watchNamespaces={{{args.namespace}}}", "--wait", "--timeout", "180s"]
    from datapipeline.k8s import api

    api.ensure_namespace(args.namespace)  # the release's Role goes there
    if crds_managed_elsewhere():
        _step("the CRDs were installed without Helm: applying crds/ and leaving them out of the release")
        for path in sorted((args.chart.parent.parent / "crds").glob("*.yaml")):
            api.apply_crd(load_yaml(path.read_text()))
        command += ["--set", "crds.install=false"]
    _step("helm " + " ".join(command[1:]))
    subprocess.run(command, check=True)


def apply_pipeline(namespace: str) -> None:
    from datapipeline.k8s import api

    doc: dict[str, Any] = load_yaml(template_text("getting-started-shell"))
    apply_settings(doc, [f"name={PIPELINE}", f"namespace={namespace}", "myGreeting=hello from the demo"])
    _step(f"kubectl apply Pipeline/{PIPELINE} in namespace {namespace} (template getting-started-shell)")
    api.apply_object(namespace, "pipelines", doc)


def wait_for_first_run(namespace: str, timeout: float) -> str:
    from datapipeline.cli.ops import describe_run
    from datapipeline.k8s import api

    deadline = time.monotonic() + timeout
    name = None
    text = ""
    while time.monotonic() < deadline:
        runs = api.list_runs(namespace, PIPELINE)
        if runs:
            name = sorted(r["metadata"]["name"] for r in runs)[0]
            text, done = describe_run(namespace, name)
            if done:
                print(text)
                return str(name)
        time.sleep(2)
    print(text)
    raise SystemExit(f"error: the run of {PIPELINE} did not finish within {timeout:.0f}s; see "
                     f"`kubectl -n {SYSTEM_NAMESPACE} logs deploy/{RELEASE}-operator`")


def run(args: argparse.Namespace) -> int:
    try:
        install_chart(args)
    except (subprocess.CalledProcessError, FileNotFoundError) as error:
        print(f"error: helm failed: {error}", file=sys.stderr)
        return 1
    apply_pipeline(args.namespace)
    _step("waiting for the first PipelineRun to finish")
    run_name = wait_for_first_run(args.namespace, args.timeout)
    print(f"\nNext:\n  datapipeline runs {PIPELINE} -n {args.namespace}\n  datapipeline logs {run_name} --activity "
          f"count-words -n {args.namespace}\n  kubectl get dpl,dplrun -n {args.namespace}")
    return 0


def add_parser(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "demo", help="install the chart on the current cluster and run the getting-started pipeline")
    parser.add_argument("--namespace", default="datapipeline-demo", help="where the demo pipeline goes")
    parser.add_argument("--image", default="localhost/kube-datapipeline:dev", help="operator and runner image")
    parser.add_argument("--chart", type=Path, default=Path("charts/kube-datapipeline"), help="the chart")
    parser.add_argument("--helm", help="helm binary (default: on PATH, or the one `make cluster-up` built)")
    parser.add_argument("--timeout", type=float, default=300, help="seconds to wait for the run")
    parser.set_defaults(func=run)
