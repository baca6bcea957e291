"""Fixtures of the runner tests; helpers live in runner_helpers.py."""

from __future__ import annotations

from pathlib import Path

import pytest
from runner_helpers import Runner


@pytest.fixture
def runner(tmp_path: Path) -> Runner:
    return Runner(tmp_path)
