"""The web console against the real cluster. In a real headless browser (Debian's chromium, driven by
selenium) with the operator running: a failed run is seen, read and rerun from the console without a reload;
a user the API server does not let patch runs is told so. Screenshots go to the test's tmp dir. Over HTTP:
``console --in-cluster`` acts with each request's own bearer token."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fixtures.console_http import get, post_action
from kdp_harness import ROOT, Operator, pipeline_doc, shell

from datapipeline.console.graph import FAILURE_COLOUR, STATE_COLOURS

pytestmark = pytest.mark.cluster
CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"  # Debian's chromium, chromium-driver
# load fails on its first attempt and succeeds on any later one: a rerun of the failed activity succeeds.
LOAD = 'echo "load attempt #{@attemptCount}"; test #{@attemptCount} -ge 2 || { echo "boom: warehouse locked" >&2; exit 3; }'


def flaky_pipeline() -> dict[str, Any]:
    return pipeline_doc("flaky", [shell("extract", "echo extracting"),
                                  shell("load", LOAD, dependsOn=["extract"], maximumRetries=0),
                                  shell("report", "echo reported", dependsOn=["load"])],
                        scheduleType="ondemand", activated=False)


# ---------------------------------------------------------------------------------------------- fixtures
class Console:
    """``datapipeline console`` as a subprocess on a free loopback port."""

    def __init__(self, kubeconfig: str, namespace: str, log: Path, *options: str) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "KUBECONFIG": kubeconfig, "PYTHONPATH": str(ROOT / "operator")}
        self.proc = subprocess.Popen([sys.executable, "-m", "datapipeline.cli.main", "console", "--port",
                                      str(self.port), "-n", namespace, *options], env=env, stdout=log.open("ab"),
                                     stderr=subprocess.STDOUT)
        self.log = log
        _until(self._healthy, 30, f"the console did not start; its log:\n{log}")

    def _healthy(self) -> bool:
        if self.proc.poll() is not None:
            raise AssertionError(f"the console exited: {self.log.read_text()}")
        try:
            with urllib.request.urlopen(f"{self.url}/healthz", timeout=2) as answer:
                return bool(answer.status == 200)
        except OSError:
            return False

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _until(check: Callable[[], bool], timeout: float, message: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    raise AssertionError(message)


@pytest.fixture()
def browser(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    for path in (CHROMIUM, CHROMEDRIVER):
        assert Path(path).exists(), f"{path} is missing: apt-get install chromium chromium-driver (tests/setup-deps.sh)"
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})  # the page's console, read by _page_errors
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                     "--window-size=1400,1000", f"--user-data-dir={tmp_path / 'chromium'}"):
        options.add_argument(argument)
    monkeypatch.setenv("SE_OFFLINE", "true")  # selenium must not look for drivers or browsers on the internet
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()


# ---------------------------------------------------------------------------------------------- helpers
def _wait(driver: Any, find: Callable[[Any], Any], timeout: float = 30) -> Any:
    """What ``find`` returns once it is truthy; the live part is replaced under it, so stale elements retry."""
    from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout, poll_frequency=0.2,
                         ignored_exceptions=(NoSuchElementException, StaleElementReferenceException)).until(find)


def _css(driver: Any, selector: str) -> Any:
    from selenium.webdriver.common.by import By

    return driver.find_element(By.CSS_SELECTOR, selector)


def _node_fill(driver: Any, element_id: str) -> str:
    """The fill of a graph node's shape, as Graphviz drew it."""
    return str(_css(driver, f'g[id="{element_id}"] polygon, g[id="{element_id}"] path').get_attribute("fill"))


def _confirm(driver: Any, action: str) -> None:
    _css(driver, f'button[data-action="{action}"]').click()
    _wait(driver, lambda d: _css(d, "dialog#confirm").get_attribute("open") is not None)
    _css(driver, "#confirm-ok").click()


def _page_errors(driver: Any) -> list[str]:
    """Script errors and refusals of the content security policy the browser logged."""
    return [entry["message"] for entry in driver.get_log("browser")
            if "Uncaught" in entry["message"] or "Content Security Policy" in entry["message"]]


class Timer:
    def __init__(self) -> None:
        self.start = self.last = time.monotonic()
        self.steps: list[tuple[str, float]] = []

    def step(self, name: str) -> None:
        now = time.monotonic()
        self.steps.append((name, round(now - self.last, 2)))
        self.last = now

    def report(self) -> str:
        return ", ".join(f"{name} {seconds}s" for name, seconds in self.steps)


# ---------------------------------------------------------------------------------------------- tests
def test_a_failed_run_is_read_and_rerun_in_the_browser(operator: Operator, browser: Any, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    timer = Timer()
    operator.apply(flaky_pipeline())
    operator.cli("run", "flaky", "--name", "flaky-1")
    operator.wait_phase("flaky-1", ("Failed",))
    timer.step("run failed")
    # The pipelines page shows the health the operator writes; its pipeline worker may write it a while after
    # the run's own status (it is not the console's to hurry).
    operator.wait(lambda: (operator.get("pipeline", "flaky").get("status") or {}).get("health") == "ERROR", 120)
    timer.step("pipeline health ERROR")
    console = Console(operator.kubeconfig, operator.namespace, tmp_path / "console.log")
    try:
        timer.step("console started")
        browser.get(f"{console.url}/")
        selector = f'tr[data-pipeline="{operator.namespace}/flaky"]'
        row = _wait(browser, lambda d: "ERROR" in _css(d, selector).text and _css(d, selector))
        assert "on demand" in row.text and "flaky-1" in row.text
        browser.save_screenshot(str(tmp_path / "1-pipelines.png"))
        timer.step("pipelines page")

        row.find_element(By.LINK_TEXT, "flaky").click()
        _wait(browser, lambda d: _css(d, 'g[id="activity-load"]'))
        assert _node_fill(browser, "activity-load") == FAILURE_COLOUR
        assert _node_fill(browser, "activity-extract") == STATE_COLOURS["FINISHED"]
        assert "flaky-1" in _css(browser, "#runs").text
        browser.save_screenshot(str(tmp_path / "2-pipeline.png"))
        timer.step("pipeline page, failed node in the failure colour")

        _css(browser, "#graph-run").click()
        attempt = _wait(browser, lambda d: _css(d, 'tr.attempt-row[data-activity="load"][data-attempt="1"]'))
        assert "boom: warehouse locked" in attempt.find_element(By.CSS_SELECTOR, ".attempt-error").text
        attempt.find_element(By.CSS_SELECTOR, "button[data-log]").click()
        log = _wait(browser, lambda d: "warehouse locked" in _css(d, "#log").text and _css(d, "#log").text)
        assert "load attempt 1" in log
        assert "from the pod" in _css(browser, "#log-title").text
        assert browser.find_elements(By.CSS_SELECTOR, "#timeline rect.bar-failed")  # the Gantt shows the failure
        browser.save_screenshot(str(tmp_path / "3-run-failed.png"))
        timer.step("run page, error and log read")

        browser.execute_script("window.notReloaded = true;")
        _confirm(browser, "rerun-failed")
        _wait(browser, lambda d: "rerun" in _css(d, "#flash").text)
        timer.step("rerun failed confirmed")
        _wait(browser, lambda d: _css(d, "#run-phase").get_attribute("data-phase") == "Succeeded", timeout=120)
        timer.step("run succeeded on the page")
        assert browser.execute_script("return window.notReloaded === true;"), "the page was reloaded"
        assert _node_fill(browser, "activity-load") == STATE_COLOURS["FINISHED"]
        assert int(_css(browser, "body").get_attribute("data-refreshed") or 0) > 0
        browser.save_screenshot(str(tmp_path / "4-run-succeeded.png"))
        assert _page_errors(browser) == []
    except BaseException:
        browser.save_screenshot(str(tmp_path / "failure.png"))
        print(f"\nconsole browser test failed after: {timer.report()}; see {tmp_path}")
        raise
    finally:
        console.stop()
    assert operator.run_phase("flaky-1") == "Succeeded"
    print(f"\nconsole browser test: {timer.report()}; screenshots in {tmp_path}")


def test_a_user_who_may_not_patch_runs_is_told_so(operator: Operator, browser: Any, tmp_path: Path) -> None:
    operator.apply(flaky_pipeline())
    operator.cli("run", "flaky", "--name", "flaky-1")
    operator.wait_phase("flaky-1", ("Failed",))
    kubeconfig = _viewer_kubeconfig(operator, tmp_path)
    console = Console(kubeconfig, operator.namespace, tmp_path / "console.log")
    try:
        browser.get(f"{console.url}/runs/{operator.namespace}/flaky-1")
        _wait(browser, lambda d: _css(d, "#run-phase").get_attribute("data-phase") == "Failed")
        _confirm(browser, "rerun-failed")
        flash = _wait(browser, lambda d: "403" in _css(d, "#flash").text and _css(d, "#flash"))
        assert "error" in (flash.get_attribute("class") or "")
        assert "forbidden" in flash.text and "patch" in flash.text
        browser.save_screenshot(str(tmp_path / "refused.png"))
    finally:
        console.stop()
    run = operator.get("pipelinerun", "flaky-1")
    assert "rerun" not in run["spec"] and run["status"]["phase"] == "Failed"


def test_in_the_cluster_each_request_acts_with_its_own_token(kube_cluster: Any, namespace: str,
                                                             tmp_path: Path) -> None:
    """``console --in-cluster`` (here on loopback, its cache filled as the admin): a request without a token is
    refused; a viewer's token sees the pipeline and is refused the rerun by the API server; a token that may
    list nothing sees nothing, though the console's own identity may see everything."""
    from kdp_harness import _kubeconfig, run_doc

    kubeconfig = _kubeconfig(kube_cluster)
    kube = Operator(kubeconfig, namespace, tmp_path / "unused.log")  # kubectl helpers only: no operator runs
    kube.apply(flaky_pipeline())
    kube.apply(run_doc("flaky-1", "flaky"))
    viewer = _token(kube, "viewer", "get,list,watch")
    nobody = _token(kube, "nobody", None)
    console = Console(kubeconfig, namespace, tmp_path / "console.log", "--in-cluster", "--address", "127.0.0.1")
    try:
        assert f"on http://127.0.0.1:{console.port}/" in console.log.read_text()  # loopback only, even here
        assert _get(console, "/", None)[0] == 401
        status, page = _get(console, "/", viewer)
        assert status == 200 and f'data-pipeline="{namespace}/flaky"' in page
        status, page = _get(console, "/", nobody)
        assert status == 200 and "flaky" not in page
        assert _get(console, f"/runs/{namespace}/flaky-1", viewer)[0] == 200
        assert _get(console, f"/runs/{namespace}/flaky-1", nobody)[0] == 404
        status, answer = _post(console, {"action": "rerun-failed", "namespace": namespace, "run": "flaky-1"}, viewer)
        assert status == 403 and "system:serviceaccount:" + namespace + ":viewer" in answer["error"], answer
        status, answer = _post(console, {"action": "cancel", "namespace": namespace, "run": "flaky-1"}, nobody)
        assert status == 403 and ":nobody" in answer["error"] and "cannot patch" in answer["error"], answer
    finally:
        console.stop()
    spec = kube.get("pipelinerun", "flaky-1")["spec"]
    assert "rerun" not in spec and not spec.get("cancel")


def _get(console: Console, path: str, token: str | None) -> tuple[int, str]:
    return get(console.url, path, token)


def _post(console: Console, body: dict[str, Any], token: str) -> tuple[int, dict[str, Any]]:
    return post_action(console.url, body, token)


def _token(kube: Operator, account: str, verbs: str | None) -> str:
    """A token of a new ServiceAccount that may ``verbs`` Pipelines, runs, pods and logs (None: nothing)."""
    kube.kubectl("create", "serviceaccount", account)
    if verbs:
        kube.kubectl("create", "role", account, f"--verb={verbs}",
                     "--resource=pipelines.datapipeline.io,pipelineruns.datapipeline.io,pods,pods/log")
        kube.kubectl("create", "rolebinding", account, f"--role={account}",
                     f"--serviceaccount={kube.namespace}:{account}")
    return kube.kubectl("create", "token", account, "--duration=1h").strip()


def _viewer_kubeconfig(operator: Operator, tmp_path: Path) -> str:
    """A kubeconfig of a ServiceAccount that may read Pipelines, runs, pods and logs, and change nothing."""
    ns = operator.namespace
    token = _token(operator, "viewer", "get,list,watch")
    admin = json.loads(operator.kubectl("config", "view", "--raw", "--minify", "--flatten", "-o", "json"))
    cluster = admin["clusters"][0]
    config = {"apiVersion": "v1", "kind": "Config", "clusters": [cluster],
              "users": [{"name": "viewer", "user": {"token": token}}],
              "contexts": [{"name": "viewer", "context": {"cluster": cluster["name"], "user": "viewer",
                                                          "namespace": ns}}],
              "current-context": "viewer"}
    path = tmp_path / "viewer.kubeconfig"
    path.write_text(json.dumps(config))
    return str(path)
