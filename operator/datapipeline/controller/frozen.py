"""A run's frozen definition: the Pipeline's spec as it was when the run first ran, kept in the run's status.

The status subresource is written only by the operator, so neither whoever may create PipelineRuns nor
whoever may write ConfigMaps can choose what a run executes (its image, service account, secrets). RBAC
on the status is the protection; the SHA-256 of the copy's canonical JSON (not a keyed MAC: whoever may
write status could recompute it) catches a copy changed by hand or damaged, which is refused, never run.
Nulls are dropped before freezing (a JSON merge patch would drop them anyway), and the copy is limited
in size so the run stays well within etcd's object limit.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

FROZEN_SPEC = "pipelineSpec"
FROZEN_HASH = "pipelineSpecHash"
FROZEN_GENERATION = "pipelineGeneration"
FROZEN_VALUES = "values"  # the run's spec.values once checked: later edits of spec.values change nothing


def digest(spec: Mapping[str, Any]) -> str:
    canonical = json.dumps(spec, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()


MAX_FROZEN_BYTES = 512 * 1024  # the copy in a run's status; etcd refuses objects over about 1.5 MiB


def without_nulls(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [without_nulls(v) for v in value]
    return value


def freeze(spec: Mapping[str, Any], generation: int) -> dict[str, Any]:
    """The status fields that freeze ``spec`` into a run."""
    clean = without_nulls(spec)
    return {FROZEN_SPEC: clean, FROZEN_HASH: digest(clean), FROZEN_GENERATION: generation}


def size_problem(spec: Mapping[str, Any]) -> str | None:
    size = len(json.dumps(spec, separators=(",", ":"), default=str).encode())
    if size <= MAX_FROZEN_BYTES:
        return None
    return (f"the Pipeline's spec is {size:,} bytes as JSON; a run keeps a copy in its status, at most "
            f"{MAX_FROZEN_BYTES:,} bytes: split the pipeline")


def frozen_problem(status: Mapping[str, Any]) -> str | None:
    """Why the run's frozen copy cannot be trusted, or None."""
    spec = status.get(FROZEN_SPEC)
    if not isinstance(spec, Mapping):
        return f"status.{FROZEN_SPEC}: the run's frozen definition is missing or not an object"
    expected = status.get(FROZEN_HASH)
    if digest(spec) != expected:
        return (f"status.{FROZEN_SPEC}: the run's frozen definition does not match its hash {expected}; it was "
                "changed after the run started, so the run is refused")
    return None
