"""The operator's writes, on its event loop (kubernetes_asyncio): a pass decides in a thread, then acts here.

Every write is idempotent, as in :mod:`datapipeline.k8s.api` (its synchronous twin, for the CLI, the console and
the rare reads a pass still makes): creating what exists and deleting what is gone both succeed. One client per
event loop, made on first use and closed with the operator (:func:`close`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from kubernetes_asyncio import client as _client_module
from kubernetes_asyncio import config as _config_module
from kubernetes_asyncio.client.exceptions import ApiException

__all__ = ["ApiException", "close", "create_job", "create_object", "delete_job", "delete_object", "patch_status"]

from datapipeline.core.definition import GROUP, VERSION

MERGE_PATCH = "application/merge-patch+json"
CONNECTIONS = 32
client: Any = _client_module  # partly typed: plain dicts go where it declares models
config: Any = _config_module
_client: Any = None


async def _api() -> Any:
    global _client
    if _client is None:
        configuration = client.Configuration()
        try:
            config.load_incluster_config(client_configuration=configuration)
        except config.ConfigException:
            await config.load_kube_config(config_file=os.environ.get("KUBECONFIG"),
                                          client_configuration=configuration)
        # As many connections as passes may write at once (the default, 5 per core, queued a restart's writes).
        configuration.connection_pool_maxsize = CONNECTIONS
        if _client is None:  # another task may have made it while this one read the configuration
            _client = client.ApiClient(configuration)
            _ignore_environment(_client)
    return _client


def _ignore_environment(api_client: Any) -> None:
    """kubernetes_asyncio makes its aiohttp session with trust_env: then every request looks up ~/.netrc and the
    proxy variables, each in a thread of the executor the passes decide in (two hand-offs per write). Like kopf
    (``settings.networking.trust_env``, off) and the synchronous client, the operator takes its proxy only
    from the kubeconfig (``proxy-url``, which the configuration passes on every request)."""
    session = api_client.rest_client.pool_manager
    session._trust_env = False  # aiohttp reads it per request; a public setting exists only at construction


async def close() -> None:
    global _client
    if _client is not None:
        await _client.close()
        _client = None


async def create_job(namespace: str, manifest: Mapping[str, Any]) -> bool:
    """True if created, False if it already existed."""
    try:
        await client.BatchV1Api(await _api()).create_namespaced_job(namespace, dict(manifest))
        return True
    except ApiException as error:
        if error.status == 409:
            return False
        raise


async def delete_job(namespace: str, name: str) -> None:
    try:
        await client.BatchV1Api(await _api()).delete_namespaced_job(name, namespace,
                                                                    propagation_policy="Background")
    except ApiException as error:
        if error.status != 404:
            raise


async def create_object(namespace: str, plural: str, body: Mapping[str, Any]) -> bool:
    """True if created, False if it already existed."""
    try:
        await client.CustomObjectsApi(await _api()).create_namespaced_custom_object(GROUP, VERSION, namespace,
                                                                                    plural, dict(body))
        return True
    except ApiException as error:
        if error.status == 409:
            return False
        raise


async def delete_object(namespace: str, plural: str, name: str) -> None:
    try:
        await client.CustomObjectsApi(await _api()).delete_namespaced_custom_object(
            GROUP, VERSION, namespace, plural, name, body=client.V1DeleteOptions(propagation_policy="Background"))
    except ApiException as error:
        if error.status != 404:
            raise


async def patch_status(namespace: str, plural: str, name: str, status: Mapping[str, Any],
                       resource_version: str | None = None) -> dict[str, Any] | None:
    """A JSON merge patch of the status; with ``resource_version``, only if the object is still at it (409).
    Returns the object as the API server stored it."""
    body: dict[str, Any] = {"status": dict(status)}
    if resource_version:
        body["metadata"] = {"resourceVersion": resource_version}
    answer = await client.CustomObjectsApi(await _api()).patch_namespaced_custom_object_status(
        GROUP, VERSION, namespace, plural, name, body, _content_type=MERGE_PATCH)
    return dict(answer) if isinstance(answer, Mapping) else None
