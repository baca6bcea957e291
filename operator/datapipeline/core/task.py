"""The contract between the operator and the task runner.

The operator resolves one activity (or precondition check, or action) of one run
into a :class:`TaskSpec`: every ``#{...}`` expression already evaluated for the
run's interval, every referenced object inlined. It reaches the runner as JSON
in the ``DATAPIPELINE_TASK`` environment variable of the Job's container.
Secrets never appear in it: a database password is the *name* of an environment
variable that the Job fills from a Secret with ``secretKeyRef``.

The runner answers with its exit code and a :class:`TaskResult` written as JSON
to the pod's termination message (``/dev/termination-log``, at most 4 KiB).
While it works it prints a line starting with ``progress:`` at least every
``PROGRESS_INTERVAL_SECONDS``; the operator reads the newest log line's time to
apply ``reportProgressTimeout``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

TASK_ENV = "DATAPIPELINE_TASK"
ENV_VALUE_PREFIX = "DATAPIPELINE_VALUE_"  # run-supplied values a shell command reads (never pasted as code)
ENV_PARAMETER_PREFIX = "DATAPIPELINE_PARAM_"  # masked parameters, from their Secret
# The runner redacts every secret value it can see: the variables named here (comma separated; the Job
# lists every variable it fills from a Secret) and every file under SECRET_MOUNT_DIR (the Secrets a compute
# profile passes whole with envFromSecrets, mounted read-only so their values are known to the redactor).
SECRET_ENV_LIST = "DATAPIPELINE_SECRET_ENV"
HEADER_ENV_PREFIX = "DATAPIPELINE_HEADER_"  # a Webhook's headersFromSecret Secret, mounted with this envFrom prefix
PROGRESS_ENV = "DATAPIPELINE_PROGRESS_INTERVAL"  # seconds between the runner's progress lines
SECRET_MOUNT_DIR = "/var/run/datapipeline/secrets"
TASK_VERSION = 1
TERMINATION_LOG = "/dev/termination-log"
TERMINATION_MESSAGE_LIMIT = 4096
PROGRESS_INTERVAL_SECONDS = 10


def masked_env_name(parameter: str) -> str:
    """The variable a shell command reads a masked parameter from."""
    return ENV_PARAMETER_PREFIX + "".join(c if c.isascii() and c.isalnum() else "_" for c in parameter.upper())


# Times in status, node.* fields, results and log lines: RFC 3339 in UTC, whole seconds.
TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


def utc_text(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime(TIME_FORMAT)


# node.* text fields: present for every triggering object, empty when they do not apply (the last four are
# runtime fields the guide lists that we have no value for; validation lets #{node.hostname} through).
NODE_TEXT_KEYS = ("errorId", "errorMessage", "errorStackTrace", "cancellationReason", "@failureReason",
                  "@cascadeFailedOn", "@waitingOn", "hostname", "reportProgressTime", "emrStepLog", "hadoopJobLog")


# Exit codes
EXIT_FINISHED = 0
EXIT_FAILED = 1
EXIT_INVALID_TASK = 2  # the task itself is wrong: retrying cannot help
EXIT_PRECONDITION_NOT_MET = 75  # EX_TEMPFAIL: the check ran and said "not yet"

# What a task is
KIND_ACTIVITY = "activity"
KIND_PRECONDITION = "precondition"
KIND_ACTION = "action"


@dataclass(frozen=True)
class DatabaseSpec:
    name: str
    type: str  # JdbcDatabase | RdsDatabase | RedshiftDatabase
    connection_string: str  # jdbc:postgresql://host:port/db, jdbc:mysql://..., jdbc:sqlite:/path
    database_name: str | None = None
    username: str | None = None
    username_env: str | None = None  # env var holding the user name (from a Secret)
    password_env: str | None = None  # env var holding the password (from a Secret)
    properties: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class DataFormatSpec:
    type: str  # CSV | TSV | Custom | RegEx | DynamoDBDataFormat | DynamoDBExportDataFormat
    fields: Mapping[str, Any] = field(default_factory=dict)  # column, columnSeparator, ...


@dataclass(frozen=True)
class DataNodeSpec:
    name: str
    type: str  # S3DataNode | SqlDataNode | MySqlDataNode | DynamoDBDataNode | RedshiftDataNode
    fields: Mapping[str, Any] = field(default_factory=dict)  # resolved: filePath, table, selectQuery, ...
    data_format: DataFormatSpec | None = None
    database: DatabaseSpec | None = None


@dataclass(frozen=True)
class AwsSpec:
    region: str = "us-east-1"
    s3_endpoint_url: str | None = None
    sns_endpoint_url: str | None = None
    dynamodb_endpoint_url: str | None = None
    s3_path_style: bool = False
    # Credentials arrive as AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY from a Secret.


@dataclass(frozen=True)
class TaskSpec:
    kind: str  # activity | precondition | action
    type: str  # the AWS type: ShellCommandActivity, S3KeyExists, SnsAlarm, ...
    name: str  # the object's name
    pipeline: str
    run: str
    attempt: int
    fields: Mapping[str, Any] = field(default_factory=dict)  # the object's own fields, resolved
    inputs: tuple[DataNodeSpec, ...] = ()
    outputs: tuple[DataNodeSpec, ...] = ()
    database: DatabaseSpec | None = None  # SqlActivity, SqlQueryPrecondition
    guarded_node: DataNodeSpec | None = None  # the data node an Exists precondition checks
    node: Mapping[str, Any] = field(default_factory=dict)  # actions: the triggering object's runtime fields
    aws: AwsSpec = field(default_factory=AwsSpec)
    log_uri: str | None = None
    version: int = TASK_VERSION
    # The EMR family: the resolved fields of the cluster profile the activity runs on (docs/spark.md).
    cluster: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True, separators=(",", ":"))

    @staticmethod
    def from_json(text: str) -> TaskSpec:
        data = json.loads(text)
        if data.get("version") != TASK_VERSION:
            raise ValueError(f"task version {data.get('version')!r} is not {TASK_VERSION}; runner and operator "
                             "images differ")
        return TaskSpec(
            kind=data["kind"], type=data["type"], name=data["name"], pipeline=data["pipeline"], run=data["run"],
            attempt=data["attempt"], fields=data.get("fields") or {},
            inputs=tuple(_node(n) for n in data.get("inputs") or ()),
            outputs=tuple(_node(n) for n in data.get("outputs") or ()),
            database=_database(data.get("database")),
            guarded_node=_node(data["guarded_node"]) if data.get("guarded_node") else None,
            node=data.get("node") or {}, aws=AwsSpec(**(data.get("aws") or {})), log_uri=data.get("log_uri"),
            cluster=data.get("cluster") or {},
        )


@dataclass(frozen=True)
class TaskResult:
    status: str  # FINISHED | FAILED | FALSE (precondition not met)
    rows_read: int | None = None
    rows_written: int | None = None
    bytes: int | None = None
    output_uris: tuple[str, ...] = ()
    error_id: str | None = None  # a stable code, e.g. S3.NoSuchBucket, SQL.BadRow
    error_message: str | None = None

    def to_json(self) -> str:
        """Compact JSON that fits the termination message; the error text is cut to fit."""
        data = {k: v for k, v in asdict(self).items() if v not in (None, ())}
        text = json.dumps(data, separators=(",", ":"))
        if len(text.encode()) > TERMINATION_MESSAGE_LIMIT and self.error_message:
            room = max(0, len(self.error_message) - (len(text.encode()) - TERMINATION_MESSAGE_LIMIT) - 16)
            data["error_message"] = self.error_message[:room] + "..."
            text = json.dumps(data, separators=(",", ":"))
        return text

    @staticmethod
    def from_json(text: str) -> TaskResult:
        data = json.loads(text)
        data["output_uris"] = tuple(data.get("output_uris") or ())
        return TaskResult(**data)


def _database(data: Mapping[str, Any] | None) -> DatabaseSpec | None:
    return DatabaseSpec(**data) if data else None


def _node(data: Mapping[str, Any]) -> DataNodeSpec:
    fmt = data.get("data_format")
    return DataNodeSpec(
        name=data["name"], type=data["type"], fields=data.get("fields") or {},
        data_format=DataFormatSpec(**fmt) if fmt else None, database=_database(data.get("database")),
    )
