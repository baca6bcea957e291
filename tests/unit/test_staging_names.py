"""Where a ShellCommandActivity's staged inputs land: below their staging folder, and never outside it."""

from __future__ import annotations

import pytest

from datapipeline.core.task import DataNodeSpec
from datapipeline.runner.activities.shell import _staged_names
from datapipeline.runner.errors import TaskError
from datapipeline.runner.s3 import S3Url

LOGS = DataNodeSpec("Logs", "S3DataNode", {"directoryPath": "s3://b/logs/"})


def urls(*keys: str) -> list[S3Url]:
    return [S3Url("b", key) for key in keys]


def test_a_directory_keeps_the_paths_below_it_and_skips_folder_markers() -> None:
    staged = _staged_names(LOGS, urls("logs/2026-11-02/access.log", "logs/2026-11-03/access.log", "logs/x/"))
    assert [name for _, name in staged] == ["2026-11-02/access.log", "2026-11-03/access.log"]


@pytest.mark.parametrize("key", ["logs/../../etc/cron.d/x", "logs//abs", "logs/a/../../up"])
def test_a_key_that_would_leave_the_staging_folder_is_refused(key: str) -> None:
    with pytest.raises(TaskError) as error:
        _staged_names(LOGS, urls(key))
    assert error.value.error_id == "Shell.StagingInput"
    assert "would be staged outside its staging folder" in error.value.message


def test_two_manifest_entries_of_one_name_are_an_error_not_an_overwrite() -> None:
    node = DataNodeSpec("M", "S3DataNode", {"manifestFilePath": "s3://b/manifest.json"})
    with pytest.raises(TaskError) as error:
        _staged_names(node, urls("a/part-1", "b/part-1"))
    assert "s3://b/a/part-1 and s3://b/b/part-1 would both be staged as 'part-1'" in str(error.value)
