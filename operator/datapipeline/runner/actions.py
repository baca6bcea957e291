"""Actions: SnsAlarm (SNS Publish) and Webhook (HTTP POST of a JSON body, with retries).

Subject and message arrive with their ``#{node.*}`` expressions already resolved
by the operator; ``node`` in the task carries the triggering object's runtime fields.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import requests

from datapipeline.core.task import HEADER_ENV_PREFIX, TaskResult
from datapipeline.runner.aws import client, errors_as
from datapipeline.runner.context import Context
from datapipeline.runner.errors import InvalidTask, TaskError
from datapipeline.runner.log import get

log = get("action")
SNS_SUBJECT_LIMIT = 100  # SNS refuses longer subjects


def sns_alarm(ctx: Context) -> TaskResult:
    what = f"SnsAlarm {ctx.spec.name}"
    topic = str(ctx.require("topicArn"))
    message = str(ctx.require("message"))
    subject = str(ctx.field("subject", ""))
    kwargs: dict[str, Any] = {"TopicArn": topic, "Message": message}
    if subject:
        # SNS takes one line of printable ASCII, at most 100 characters.
        clean = " ".join(subject.split()).encode("ascii", "replace").decode()
        kwargs["Subject"] = clean[:SNS_SUBJECT_LIMIT]
    sns = client("sns", ctx.spec.aws)
    with errors_as("SNS", f"{what} (topicArn {topic})", ctx.spec.aws.sns_endpoint_url):
        reply = sns.publish(**kwargs)
    log.info("published message %s to %s", reply.get("MessageId"), topic)
    return TaskResult("FINISHED")


def _shown(url: str) -> str:
    """The URL without its query string, which may hold a token."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.rsplit('@', 1)[-1]}{parts.path}"


def webhook(ctx: Context) -> TaskResult:
    spec = ctx.spec
    what = f"Webhook {spec.name}"
    url = str(ctx.require("url"))
    if urlsplit(url).scheme not in ("http", "https"):
        raise InvalidTask(f"{what}: url must be http:// or https://")
    node = dict(spec.node)
    body = {
        "subject": ctx.field("subject"),
        "message": str(ctx.require("message")),
        "pipeline": spec.pipeline,
        "run": spec.run,
        "activity": node.get("name") or node.get("@id"),
        "status": node.get("@status") or node.get("status"),
    }
    headers = {"Content-Type": "application/json", "User-Agent": "datapipeline-runner"}
    extra = ctx.field("headers") or {}
    if not isinstance(extra, dict):
        raise InvalidTask(f"{what}: headers must be a map of header names to values")
    headers.update({str(k): str(v) for k, v in extra.items()})
    headers.update({k[len(HEADER_ENV_PREFIX):].replace("_", "-"): v for k, v in os.environ.items()
                    if k.startswith(HEADER_ENV_PREFIX) and len(k) > len(HEADER_ENV_PREFIX)})
    attempts = int(os.environ.get("DATAPIPELINE_WEBHOOK_ATTEMPTS", "4"))
    backoff = float(os.environ.get("DATAPIPELINE_WEBHOOK_BACKOFF", "2"))
    data = json.dumps(body).encode()
    last = ""
    for attempt in range(1, attempts + 1):
        try:
            reply = requests.post(url, data=data, headers=headers, timeout=(5, 30))
            if reply.status_code < 300:
                log.info("POST %s answered %d", _shown(url), reply.status_code)
                return TaskResult("FINISHED")
            last = f"HTTP {reply.status_code}"
            if reply.status_code < 500 and reply.status_code not in (408, 429):
                raise TaskError("Webhook.Rejected", f"{what}: {_shown(url)} answered {last}; not retried")
        except requests.RequestException as e:
            last = f"{type(e).__name__}"
            if isinstance(e, requests.ConnectionError):
                last = "cannot connect"
        if attempt < attempts:
            delay = backoff * 2 ** (attempt - 1)
            log.warning("POST %s failed (%s); retrying in %.0fs", _shown(url), last, delay)
            time.sleep(delay)
    raise TaskError("Webhook.Failed", f"{what}: POST {_shown(url)} failed {attempts} times; last: {last}")


HANDLERS: dict[str, Callable[[Context], TaskResult]] = {"SnsAlarm": sns_alarm, "Webhook": webhook}
