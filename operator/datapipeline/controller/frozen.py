"""A run's frozen definition: the Pipeline's spec as it was when the run first ran, kept in the run's status.

The status subresource is written only by the operator, so neither whoever may create PipelineRuns nor
whoever may write ConfigMaps can choose what a run executes (its image, service account, secrets). The
copy carries a SHA-256 of its canonical JSON; a copy that does not match is refused, never executed.
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


def freeze(spec: Mapping[str, Any], generation: int) -> dict[str, Any]:
    """The status fields that freeze ``spec`` into a run."""
    return {FROZEN_SPEC: dict(spec), FROZEN_HASH: digest(spec), FROZEN_GENERATION: generation}


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
