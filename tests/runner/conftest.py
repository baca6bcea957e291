"""Fixtures of the runner tests; helpers live in runner_helpers.py."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from fixtures.servers import S3Server
from runner_helpers import Runner


@pytest.fixture
def runner(tmp_path: Path) -> Runner:
    return Runner(tmp_path)


@pytest.fixture
def bucket(minio: S3Server) -> str:
    """A fresh MinIO bucket for one test."""
    name = "b-" + uuid.uuid4().hex[:10]
    minio.client().create_bucket(Bucket=name)
    return name
