"""What every activity handler gets: the task, the progress counters, adapters and scratch space."""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from typing import Any

from datapipeline.core.task import DataNodeSpec, TaskSpec
from datapipeline.runner.errors import InvalidTask
from datapipeline.runner.log import Progress
from datapipeline.runner.s3 import S3


@dataclass
class Context:
    spec: TaskSpec
    progress: Progress
    _s3: S3 | None = field(default=None, repr=False)
    _scratch: str | None = None

    @property
    def s3(self) -> S3:
        if self._s3 is None:
            self._s3 = S3(self.spec.aws)
        return self._s3

    def scratch(self) -> str:
        """A private directory under $TMPDIR (the pod's writable emptyDir; the root fs is read-only)."""
        if self._scratch is None:
            self._scratch = tempfile.mkdtemp(prefix="datapipeline-", dir=os.environ.get("TMPDIR") or None)
        return self._scratch

    def field(self, name: str, default: Any = None) -> Any:
        value = self.spec.fields.get(name)
        return default if value is None or value == "" else value

    def require(self, name: str) -> Any:
        value = self.field(name)
        if value is None:
            raise InvalidTask(f"{self.spec.type} {self.spec.name}: field {name} is required")
        return value


def strings(value: Any) -> list[str]:
    """A STRINGS field: a list, or one string (AWS lets a list field hold a single value)."""
    if value is None or value == "":
        return []
    if isinstance(value, list | tuple):
        return [str(v) for v in value]
    return [str(value)]


def truthy(value: Any) -> bool:
    return str(value).strip().lower() in ("true", "1", "yes")


def describe(role: str, node: DataNodeSpec, field_name: str | None = None) -> str:
    """``input 'Orders' (filePath s3://b/k)``: how messages name a data node and field."""
    text = f"{role} {node.name!r}"
    if field_name:
        text += f" ({field_name} {node.fields.get(field_name)})"
    return text
