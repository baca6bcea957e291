"""Who a console request acts as.

Locally (the default) every request is the kube context's user: the console is that user's tool, like
kubectl. In the cluster (``--in-cluster``) every request must carry ``Authorization: Bearer <token>``;
writes and log reads are made with a client holding that token, and before a namespace's objects are
served from the watch cache the API server is asked (a SelfSubjectAccessReview made with the same token)
whether this user may list them there. The console's own identity only fills the cache.
"""

from __future__ import annotations

import copy
import hashlib
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from datapipeline.core.definition import GROUP

REVIEW_SECONDS = 30.0  # how long an access review's answer is used


class Unauthenticated(Exception):
    """An in-cluster request without a bearer token."""


@dataclass(frozen=True)
class Caller:
    """The identity of one request: ``client`` None is the kube context's user."""

    client: Any = None
    token_digest: str | None = None


def bearer_token(headers: Mapping[str, str]) -> str | None:
    """The token of an ``Authorization: Bearer ...`` header, or None."""
    scheme, _, token = (headers.get("authorization") or "").partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


class Access:
    """Decides each request's identity, and (in the cluster) what it may read from the cache."""

    def __init__(self, in_cluster: bool, review: Callable[[Any, str, str, str], bool] | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.in_cluster = in_cluster
        self._review = review or _review_with_api_server
        self._clock = clock
        self._answers: dict[tuple[str, str, str, str], tuple[bool, float]] = {}
        self._lock = threading.Lock()

    def caller(self, headers: Mapping[str, str]) -> Caller:
        if not self.in_cluster:
            return Caller()
        token = bearer_token(headers)
        if token is None:
            raise Unauthenticated("send Authorization: Bearer <token> (kubectl create token ...)")
        return Caller(client=_client_with_token(token), token_digest=hashlib.sha256(token.encode()).hexdigest())

    def may(self, caller: Caller, verb: str, plural: str, namespace: str) -> bool:
        """May the caller ``verb`` ``plural`` in ``namespace``? Locally the API server decides at each call."""
        if caller.token_digest is None:
            return True
        key = (caller.token_digest, verb, plural, namespace)
        now = self._clock()
        with self._lock:
            known = self._answers.get(key)
        if known is not None and known[1] > now:
            return known[0]
        allowed = self._review(caller.client, verb, plural, namespace)
        with self._lock:
            self._answers[key] = (allowed, now + REVIEW_SECONDS)
        return allowed


def _client_with_token(token: str) -> Any:
    from kubernetes import client

    config = copy.copy(client.Configuration.get_default_copy())
    config.api_key = {"authorization": f"Bearer {token}"}
    config.api_key_prefix = {}
    config.refresh_api_key_hook = None  # the in-cluster hook would put the console's own token back
    # Nothing of the console's own identity may go along: a client certificate would authenticate the request
    # as the console (the API server tries x509 before tokens), whatever the token says.
    config.cert_file = config.key_file = None
    config.username = config.password = None
    return client.ApiClient(config)


def _review_with_api_server(api_client: Any, verb: str, plural: str, namespace: str) -> bool:
    from kubernetes import client

    body = client.V1SelfSubjectAccessReview(spec=client.V1SelfSubjectAccessReviewSpec(
        resource_attributes=client.V1ResourceAttributes(group=GROUP, resource=plural, verb=verb,
                                                        namespace=namespace)))
    answer = client.AuthorizationV1Api(api_client).create_self_subject_access_review(body)
    return bool(answer.status and answer.status.allowed)
