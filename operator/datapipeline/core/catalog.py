"""The catalogue of object types and their fields: the one source of truth.

Every object a Pipeline holds lives in a section of the spec (``activities``,
``dataNodes``, ...) and has an AWS type name (``ShellCommandActivity``,
``S3DataNode``, ...). This module lists, for each type, the fields it accepts,
their kind and their documentation. The parser checks manifests against it,
the CRD schema is generated from it (so ``kubectl explain`` shows the same
words), and the AWS importer maps AWS fields through it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum


class Kind(Enum):
    """How a field's value is written in a manifest."""

    STRING = "string"  # may hold #{...} expressions
    INT = "int"
    BOOL = "bool"
    DURATION = "duration"  # "10 minutes", "2 hours", or "90s", "1h30m"
    STRINGS = "strings"  # a list of strings (each may hold expressions)
    REF = "ref"  # the name of another object, in `ref_sections`
    REFS = "refs"  # a name or a list of names
    SECRET_REF = "secretRef"  # {name, key} of a Kubernetes Secret
    MAP = "map"  # string -> string
    OBJECTS = "objects"  # a list of free-form objects (tolerations, ...)
    OBJECT = "object"  # a free-form object


@dataclass(frozen=True)
class FieldSpec:
    name: str
    kind: Kind
    doc: str
    ref_sections: tuple[str, ...] = ()
    enum: tuple[str, ...] = ()
    required: bool = False


@dataclass(frozen=True)
class TypeSpec:
    name: str
    section: str
    doc: str
    fields: tuple[FieldSpec, ...]
    # Groups of fields of which exactly one must be set, e.g. command / scriptUri.
    one_of: tuple[tuple[str, ...], ...] = ()
    # Groups of fields of which at most one may be set.
    at_most_one_of: tuple[tuple[str, ...], ...] = ()
    field_map: dict[str, FieldSpec] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "field_map", {f.name: f for f in self.fields})


def _f(name: str, kind: Kind, doc: str, *, refs: tuple[str, ...] = (), enum: tuple[str, ...] = (),
       required: bool = False) -> FieldSpec:
    return FieldSpec(name, kind, doc, refs, enum, required)


# Fields whose text decides what runs or where things go. A value the author did not write (a run's
# spec.values) never enters them as code: in the shell fields it becomes a quoted environment variable; in
# the control fields (SQL, Hive, Pig and EMR step text, table names, the program to run, where logs, alarms
# and webhooks go, which workers run it) it must be a number or be limited by allowedValues or a pattern.
SHELL_CODE_FIELDS = frozenset({"command", "preStepCommand", "postStepCommand"})
CONTROL_FIELDS = frozenset({
    "script", "selectQuery", "insertQuery", "createTableSql", "transformSql", "query", "hiveScript", "filterSql",
    "scriptVariable", "step", "table", "tableName", "schemaName", "scriptUri", "jarUri", "mainClass", "workerGroup",
    "pipelineLogUri", "url", "headersFromSecret", "topicArn", "connectionString", "jdbcDriverJarUri",
})
# Fields used as written, never evaluated: a Secret's name is never computed.
LITERAL_FIELDS = frozenset({"headersFromSecret", "schedule"})

S, INT, B, D, L = Kind.STRING, Kind.INT, Kind.BOOL, Kind.DURATION, Kind.STRINGS

# Sections of Pipeline.spec that hold named objects, in the order they are documented.
SECTIONS: tuple[str, ...] = (
    "activities",
    "dataNodes",
    "dataFormats",
    "databases",
    "preconditions",
    "computeProfiles",
    "clusterProfiles",
    "actions",
)

# --- fields every object of a section shares -------------------------------------------------

ACTIONS = ("actions",)

FAILURE_AND_RERUN_MODE = _f(
    "failureAndRerunMode", S, "How this object behaves as a consumer when what it depends on fails or is rerun. "
    "cascade: it becomes CASCADE_FAILED (its onFail runs) when a dependency fails, and a rerun of the dependency "
    "reruns it if it is CASCADE_FAILED; none (default): it keeps waiting.", enum=("none", "cascade"))

SCHEDULE_REF = _f(
    "schedule", S, "The schedule this object runs on: a name from spec.schedules, or default (spec.schedule, "
    "the default). One PipelineRun per schedule and interval holds its activities; a dependency on an activity "
    "of another schedule waits for that activity's instances in other runs (a finer schedule: every instance "
    "inside this interval; a coarser one: the instance covering its start).")

ACTIVITY_COMMON: tuple[FieldSpec, ...] = (
    SCHEDULE_REF,
    _f("dependsOn", Kind.REFS, "Activities that must finish before this one starts.", refs=("activities",)),
    _f("input", Kind.REFS, "Input data nodes; their preconditions must hold before this activity runs.",
       refs=("dataNodes",)),
    _f("output", Kind.REFS, "Output data nodes.", refs=("dataNodes",)),
    _f("precondition", Kind.REFS, "Preconditions that must hold before this activity runs.",
       refs=("preconditions",)),
    _f("runsOn", Kind.REF, "The compute profile (Ec2Resource) or cluster profile (EmrCluster) to run on.",
       refs=("computeProfiles", "clusterProfiles")),
    _f("workerGroup", S, "Routes the activity to a worker group of spec.workerGroups: mode poll, pollers on the "
       "group's machines run it (AWS's Task Runner); mode nodeSelector, its pod runs on nodes labelled "
       "datapipeline.io/worker-group=<name>. runsOn wins when both are set."),
    _f("maximumRetries", INT, "How many times a failed attempt is retried (our default 2; AWS caps it at 5)."),
    _f("retryDelay", D, "Wait between a failed attempt and the next (our default 10 minutes; AWS's minimum "
       "is 2 minutes)."),
    _f("attemptTimeout", D, "An attempt running longer than this is stopped, fails (AttemptTimeout) and is "
       "retried."),
    _f("lateAfterTimeout", D, "Time after the run is due (the interval's start; its end for timeseries) by "
       "which the activity must have completed; past it, onLateAction runs. Not on ondemand pipelines."),
    _f("reportProgressTimeout", D, "An attempt that reports no progress for this long is stalled and retried."),
    _f("onFail", Kind.REFS, "Actions to run when the activity fails for good or is CASCADE_FAILED.",
       refs=ACTIONS),
    _f("onSuccess", Kind.REFS, "Actions to run when the activity finishes.", refs=ACTIONS),
    _f("onLateAction", Kind.REFS, "Actions to run when the activity is late (see lateAfterTimeout).",
       refs=ACTIONS),
    FAILURE_AND_RERUN_MODE,
    _f("maxActiveInstances", INT, "How many runs may execute this activity at the same time (reruns do not "
       "count); on defaults of an ondemand pipeline: how many runs may be active (default 1)."),
    _f("pipelineLogUri", S, "S3 URI under which each attempt's log is kept after its pod is gone."),
)

SHELL_FIELDS: tuple[FieldSpec, ...] = (
    _f("command", S, "The shell command to run (with /bin/sh -c)."),
    _f("scriptUri", S, "S3 URI of a script to download and run, instead of command."),
    _f("scriptArgument", L, "Arguments passed to the command or script."),
    _f("stdout", S, "S3 URI the standard output is uploaded to."),
    _f("stderr", S, "S3 URI the standard error is uploaded to."),
)

STAGE = _f("stage", B, "Stage inputs into ${INPUT1_STAGING_DIR}... before the run and upload "
           "${OUTPUT1_STAGING_DIR}... after it.")

SCRIPT_VARIABLE = _f("scriptVariable", L, "Variables for the script, as NAME=VALUE; ${NAME} in the script is "
                     "replaced by VALUE as text, so a value set by a run must be limited (allowedValues, pattern).")

DATA_NODE_COMMON: tuple[FieldSpec, ...] = (
    SCHEDULE_REF,
    _f("precondition", Kind.REFS, "Preconditions that must hold before the data node is ready.",
       refs=("preconditions",)),
    _f("onFail", Kind.REFS, "Actions to run when a precondition of the node fails (timed out or out of "
       "retries), or when the node is CASCADE_FAILED.", refs=ACTIONS),
    _f("onSuccess", Kind.REFS, "Actions to run when the node becomes ready (its preconditions hold).",
       refs=ACTIONS),
    FAILURE_AND_RERUN_MODE,
)

SQL_NODE_FIELDS: tuple[FieldSpec, ...] = (
    _f("database", Kind.REF, "The database holding the table.", refs=("databases",), required=True),
    _f("table", S, "The table to read or write.", required=True),
    _f("schemaName", S, "Schema of the table."),
    _f("selectQuery", S, "SQL that reads the data (default: SELECT * FROM table)."),
    _f("insertQuery", S, "SQL that writes one row, with ? placeholders for the columns."),
    _f("createTableSql", S, "SQL that creates the table when it does not exist."),
)

COLUMN = _f("column", L, "Column names (optionally 'name TYPE'), in file order.")

DATABASE_COMMON: tuple[FieldSpec, ...] = (
    _f("databaseName", S, "Name of the database to connect to."),
    _f("username", S, "User name to connect as (or usernameSecret)."),
    _f("usernameSecret", Kind.SECRET_REF, "Secret key holding the user name."),
    _f("passwordSecret", Kind.SECRET_REF, "Secret key holding the password (AWS *password); passwords are "
       "never written inline."),
    _f("jdbcProperties", L, "Connection properties, as key=value."),
)

PRECONDITION_COMMON: tuple[FieldSpec, ...] = (
    _f("preconditionTimeout", D, "Give up (the precondition fails) when it has not held by this long after "
       "the check began."),
    _f("maximumRetries", INT, "How many checks may err (fail to run, not merely find the condition false) "
       "before the precondition fails (our default 2)."),
    _f("retryDelay", D, "Wait between two checks (our default 1 minute)."),
    _f("attemptTimeout", D, "A check running longer than this is stopped."),
    _f("runsOn", Kind.REF, "Compute profile the check runs on.", refs=("computeProfiles",)),
    _f("workerGroup", S, "Worker group of spec.workerGroups the check runs on (default: its activity's)."),
    _f("onFail", Kind.REFS, "Actions to run when the precondition fails for good.", refs=ACTIONS),
    _f("onSuccess", Kind.REFS, "Actions to run when the precondition holds.", refs=ACTIONS),
    FAILURE_AND_RERUN_MODE,
)

MESSAGE_FIELDS: tuple[FieldSpec, ...] = (
    _f("subject", S, "Subject line; may use #{node.*} expressions."),
    _f("message", S, "Message body; may use #{node.*} expressions.", required=True),
)

# AWS lets a resource run on a coarser schedule than its activities so that one EC2 instance serves several
# activity instances; here each attempt gets its own pod, so the field is accepted (imports keep working) and a
# warning says it changes nothing.
RESOURCE_SCHEDULE = _f("schedule", S, "Accepted for AWS compatibility and ignored: each attempt has its own "
                       "pod, so a resource's schedule changes nothing (a warning says so).")

_TYPES: tuple[TypeSpec, ...] = (
    # ---------------------------------------------------------------- activities
    TypeSpec("ShellCommandActivity", "activities", "Runs a shell command or script.",
             (*ACTIVITY_COMMON, *SHELL_FIELDS, STAGE), one_of=(("command", "scriptUri"),)),
    TypeSpec("CopyActivity", "activities",
             "Copies data from one data node to another (S3 and SQL, in every direction).",
             ACTIVITY_COMMON),
    TypeSpec("SqlActivity", "activities", "Runs a SQL script against a database, in one transaction.",
             (*ACTIVITY_COMMON,
              _f("database", Kind.REF, "The database to run the script on.", refs=("databases",), required=True),
              _f("script", S, "The SQL script."),
              _f("scriptUri", S, "S3 URI of the SQL script."),
              _f("scriptArgument", L, "Values bound to the script's ? placeholders, in order.")),
             one_of=(("script", "scriptUri"),)),
    TypeSpec("EmrActivity", "activities", "Runs steps on a cluster profile (the EmrCluster stand-in).",
             (*ACTIVITY_COMMON,
              _f("step", L, "Steps: a jar or command followed by its arguments, comma separated (AWS form).",
                 required=True),
              _f("preStepCommand", L, "Shell commands to run before the steps."),
              _f("postStepCommand", L, "Shell commands to run after the steps."))),
    TypeSpec("HiveActivity", "activities", "Runs a Hive script on a cluster profile.",
             (*ACTIVITY_COMMON,
              _f("hiveScript", S, "The Hive script."),
              _f("scriptUri", S, "S3 URI of the Hive script."),
              SCRIPT_VARIABLE, STAGE),
             one_of=(("hiveScript", "scriptUri"),)),
    TypeSpec("HiveCopyActivity", "activities", "Copies data with Hive, optionally filtered.",
             (*ACTIVITY_COMMON,
              _f("filterSql", S, "A Hive SQL fragment that filters the rows copied."),
              _f("generatedScriptsPath", S, "S3 URI where the generated scripts are kept."))),
    TypeSpec("PigActivity", "activities", "Runs a Pig script on a cluster profile.",
             (*ACTIVITY_COMMON,
              _f("script", S, "The Pig script."),
              _f("scriptUri", S, "S3 URI of the Pig script."),
              SCRIPT_VARIABLE, STAGE),
             one_of=(("script", "scriptUri"),)),
    TypeSpec("HadoopActivity", "activities", "Runs a jar on a cluster profile.",
             (*ACTIVITY_COMMON,
              _f("jarUri", S, "Location of the jar to run.", required=True),
              _f("mainClass", S, "Main class of the jar."),
              _f("argument", L, "Arguments passed to the jar."),
              _f("hadoopQueue", S, "Scheduler queue to submit to."))),
    TypeSpec("RedshiftCopyActivity", "activities",
             "Loads data into a warehouse table (Redshift semantics on any PostgreSQL-protocol database).",
             (*ACTIVITY_COMMON,
              _f("insertMode", S, "What happens to rows already in the table.", required=True,
                 enum=("KEEP_EXISTING", "OVERWRITE_EXISTING", "TRUNCATE", "APPEND")),
              _f("transformSql", S, "SQL that transforms the staged rows (reads from table staging)."),
              _f("commandOptions", L, "Extra options for the load (e.g. 'CSV', 'IGNOREHEADER 1')."),
              _f("queue", S, "Query queue (kept for compatibility; not used)."))),
    # ---------------------------------------------------------------- data nodes
    TypeSpec("S3DataNode", "dataNodes", "A file or directory in an S3-compatible store.",
             (*DATA_NODE_COMMON,
              _f("filePath", S, "s3://bucket/key of one file."),
              _f("directoryPath", S, "s3://bucket/prefix/ of a directory."),
              _f("dataFormat", Kind.REF, "The format of the data.", refs=("dataFormats",)),
              _f("compression", S, "Compression of the data.", enum=("none", "gzip")),
              _f("manifestFilePath", S, "s3://bucket/key of a manifest listing the files to read.")),
             one_of=(("filePath", "directoryPath", "manifestFilePath"),)),
    TypeSpec("SqlDataNode", "dataNodes", "A table in a SQL database.", (*DATA_NODE_COMMON, *SQL_NODE_FIELDS)),
    TypeSpec("MySqlDataNode", "dataNodes", "A table in a MySQL or MariaDB database.",
             (*DATA_NODE_COMMON, *SQL_NODE_FIELDS)),
    TypeSpec("DynamoDBDataNode", "dataNodes", "A DynamoDB table.",
             (*DATA_NODE_COMMON,
              _f("tableName", S, "The DynamoDB table.", required=True),
              _f("region", S, "Region of the table."),
              _f("dataFormat", Kind.REF, "The format of the data.", refs=("dataFormats",)),
              _f("readThroughputPercent", S, "Share of the provisioned read capacity to use (0.1-1.0)."),
              _f("writeThroughputPercent", S, "Share of the provisioned write capacity to use (0.1-1.0)."))),
    TypeSpec("RedshiftDataNode", "dataNodes", "A warehouse table (Redshift or any PostgreSQL-protocol database).",
             (*DATA_NODE_COMMON,
              _f("database", Kind.REF, "The warehouse database.", refs=("databases",), required=True),
              _f("tableName", S, "The table.", required=True),
              _f("schemaName", S, "Schema of the table."),
              _f("createTableSql", S, "SQL that creates the table when it does not exist."),
              _f("primaryKeys", L, "Primary key columns (used by insertMode OVERWRITE_EXISTING)."))),
    # ---------------------------------------------------------------- data formats
    TypeSpec("CSV", "dataFormats", "Comma-separated values (RFC 4180 quoting).",
             (COLUMN, _f("escapeChar", S, "Escape character."),
              _f("headerRow", B, "The first line holds column names (read: skipped; write: emitted)."))),
    TypeSpec("TSV", "dataFormats", "Tab-separated values.",
             (COLUMN, _f("columnSeparator", S, "Column separator (default tab)."),
              _f("recordSeparator", S, "Record separator (default newline)."),
              _f("escapeChar", S, "Escape character."),
              _f("headerRow", B, "The first line holds column names."))),
    TypeSpec("Custom", "dataFormats", "Delimited text with a custom column separator.",
             (COLUMN, _f("columnSeparator", S, "Column separator.", required=True),
              _f("recordSeparator", S, "Record separator (default newline)."))),
    TypeSpec("RegEx", "dataFormats", "Lines parsed by a regular expression.",
             (COLUMN, _f("inputRegEx", S, "Regular expression whose groups are the columns.", required=True),
              _f("outputFormat", S, "Output format, with %1$s-style group references."))),
    TypeSpec("DynamoDBDataFormat", "dataFormats", "DynamoDB items as columns.", (COLUMN,)),
    TypeSpec("DynamoDBExportDataFormat", "dataFormats", "DynamoDB export format (one JSON item per line).",
             (COLUMN,)),
    # ---------------------------------------------------------------- databases
    TypeSpec("JdbcDatabase", "databases",
             "A database reached by a JDBC-style connection string (jdbc:postgresql://, jdbc:mysql://, "
             "jdbc:sqlite:).",
             (_f("connectionString", S, "jdbc:postgresql://host:port/db, jdbc:mysql://host:port/db or "
                 "jdbc:sqlite:/path.", required=True),
              _f("jdbcDriverClass", S, "Driver class (kept for compatibility; the driver is chosen by the URL)."),
              _f("jdbcDriverJarUri", S, "Driver jar (kept for compatibility; not used)."),
              *DATABASE_COMMON)),
    TypeSpec("RdsDatabase", "databases", "An RDS instance; give its endpoint as connectionString here.",
             (_f("rdsInstanceId", S, "The RDS instance id (informational)."),
              _f("connectionString", S, "jdbc:mysql://endpoint:port/db or jdbc:postgresql://endpoint:port/db.",
                 required=True),
              _f("region", S, "Region of the instance."),
              *DATABASE_COMMON)),
    TypeSpec("RedshiftDatabase", "databases", "A Redshift cluster or another PostgreSQL-protocol warehouse.",
             (_f("clusterId", S, "The Redshift cluster id (informational)."),
              _f("connectionString", S, "jdbc:redshift://host:port/db or jdbc:postgresql://host:port/db.",
                 required=True),
              *DATABASE_COMMON)),
    # ---------------------------------------------------------------- preconditions
    TypeSpec("S3KeyExists", "preconditions", "Holds when an S3 object exists.",
             (*PRECONDITION_COMMON, _f("s3Key", S, "s3://bucket/key to look for.", required=True))),
    TypeSpec("S3PrefixNotEmpty", "preconditions", "Holds when an S3 prefix holds at least one object.",
             (*PRECONDITION_COMMON, _f("s3Prefix", S, "s3://bucket/prefix to look under.", required=True))),
    TypeSpec("ShellCommandPrecondition", "preconditions", "Holds when a shell command exits 0.",
             (*PRECONDITION_COMMON, *SHELL_FIELDS), one_of=(("command", "scriptUri"),)),
    TypeSpec("Exists", "preconditions", "Holds when the data node it guards exists (S3 object, prefix or table).",
             PRECONDITION_COMMON),
    TypeSpec("DynamoDBTableExists", "preconditions", "Holds when a DynamoDB table exists.",
             (*PRECONDITION_COMMON, _f("tableName", S, "The table.", required=True))),
    TypeSpec("DynamoDBDataExists", "preconditions", "Holds when a DynamoDB table holds at least one item.",
             (*PRECONDITION_COMMON, _f("tableName", S, "The table.", required=True))),
    TypeSpec("SqlQueryPrecondition", "preconditions",
             "Holds when a SQL query returns a row whose first column is true or non-zero.",
             (*PRECONDITION_COMMON,
              _f("database", Kind.REF, "The database to query.", refs=("databases",), required=True),
              _f("query", S, "The query.", required=True))),
    # ---------------------------------------------------------------- resources
    TypeSpec("ComputeProfile", "computeProfiles",
             "Where and how an activity's pod runs (stands in for Ec2Resource).",
             (_f("image", S, "Container image (default: the runner image)."),
              _f("cpu", S, "CPU request and limit, e.g. 500m."),
              _f("memory", S, "Memory request and limit, e.g. 512Mi."),
              _f("nodeSelector", Kind.MAP, "Node labels the pod must match."),
              _f("tolerations", Kind.OBJECTS, "Pod tolerations."),
              _f("serviceAccountName", S, "Service account of the pod."),
              _f("envFromSecrets", L, "Names of Secrets whose keys become environment variables."),
              _f("env", Kind.MAP, "Extra environment variables (not for secrets)."),
              _f("terminateAfter", D, "Hard limit on any attempt run on this profile: past it the resource is "
                 "TIMEDOUT and the activity FAILED (ResourceTimeout), not retried."),
              _f("instanceType", S, "The AWS instance type it replaces (informational)."),
              RESOURCE_SCHEDULE)),
    TypeSpec("ClusterProfile", "clusterProfiles",
             "A big-data runtime for Emr/Hive/Pig/Hadoop activities (stands in for EmrCluster).",
             (_f("image", S, "Image with the big-data tools (for example a Spark image).", required=True),
              _f("releaseLabel", S, "The EMR release it replaces (informational)."),
              _f("applications", L, "Applications expected in the image (Spark, Hive, Pig, Hadoop)."),
              _f("mode", S, "Where Spark runs: local (default), all in the activity's pod; kubernetes, the driver "
                 "in the activity's pod creating executorInstances executor pods (needs serviceAccountName).",
                 enum=("local", "kubernetes")),
              _f("driverCpu", S, "CPU of the driver pod."),
              _f("driverMemory", S, "Memory of the driver pod."),
              _f("executorInstances", INT, "Number of executors (coreInstanceCount)."),
              _f("executorCpu", S, "CPU per executor."),
              _f("executorMemory", S, "Memory per executor."),
              _f("bootstrapAction", L, "Commands run in the driver before the activity."),
              _f("configuration", Kind.OBJECTS, "EmrConfiguration objects: classification and properties."),
              _f("serviceAccountName", S, "Service account of the pods."),
              _f("nodeSelector", Kind.MAP, "Node labels the pods must match."),
              _f("envFromSecrets", L, "Names of Secrets whose keys become environment variables."),
              _f("terminateAfter", D, "Hard limit on any attempt run on this profile: past it the resource is "
                 "TIMEDOUT and the activity FAILED (ResourceTimeout), not retried."),
              RESOURCE_SCHEDULE)),
    # ---------------------------------------------------------------- actions
    TypeSpec("SnsAlarm", "actions", "Publishes a message to an SNS topic.",
             (_f("topicArn", S, "The topic's ARN.", required=True), *MESSAGE_FIELDS,
              _f("role", S, "IAM role (kept for compatibility; credentials come from the pipeline's aws "
                 "settings)."))),
    TypeSpec("Webhook", "actions", "POSTs a JSON body {subject, message, pipeline, run, activity, status} "
             "to a URL, with retries.",
             (_f("url", S, "The URL to POST to.", required=True), *MESSAGE_FIELDS,
              _f("headers", Kind.MAP, "Extra HTTP headers (not for secrets)."),
              _f("headersFromSecret", S, "Name of a Secret whose keys become HTTP headers (for tokens)."))),
    TypeSpec("Terminate", "actions", "Cancels the activity that triggered it, waiting or running (used with "
             "onLateAction).", ()),
)

TYPES: dict[str, TypeSpec] = {t.name: t for t in _TYPES}

# Common fields of every object; not repeated in each TypeSpec.
COMMON_FIELDS: tuple[FieldSpec, ...] = (
    _f("name", S, "Unique name of the object within its section (the AWS id).", required=True),
    _f("type", S, "The object's type (the AWS type name)."),
    _f("parent", Kind.REF, "An object of the same section whose fields this one inherits."),
    _f("vars", Kind.MAP, "User-defined fields (AWS my* fields), referenced as #{myName}; names start with my."),
)

SCHEDULE_FIELDS: tuple[FieldSpec, ...] = (
    _f("cron", S, "Cron expression (5 fields, or 6 with seconds first)."),
    _f("period", S, "How often: 'N minutes|hours|days|weeks|months|years' (AWS form)."),
    _f("timeZone", S, "IANA time zone the cron expression and calendar periods are read in (default UTC)."),
    _f("startDateTime", S, "First interval's start, ISO 8601 (UTC unless an offset is given)."),
    _f("startAt", S, "FIRST_ACTIVATION_DATE_TIME: start when the pipeline is first activated.",
       enum=("FIRST_ACTIVATION_DATE_TIME",)),
    _f("endDateTime", S, "No interval starts at or after this time."),
    _f("occurrences", INT, "How many intervals in all."),
)

PARAMETER_FIELDS: tuple[FieldSpec, ...] = (
    _f("id", S, "Parameter name, starting with my; referenced as #{myName}.", required=True),
    _f("type", S, "Value type.", enum=("String", "Integer", "Double", "AWS::S3::ObjectKey")),
    _f("description", S, "What the parameter is for."),
    _f("optional", B, "The parameter may be left without a value."),
    _f("allowedValues", L, "The only values accepted."),
    _f("default", S, "Value used when none is given."),
    _f("isArray", B, "The parameter holds a list of values."),
    _f("helpText", S, "Longer help for the parameter."),
    _f("pattern", S, "A regular expression (RE2 syntax) every value must match in full."),
    _f("overridable", B, "A PipelineRun may set this parameter in spec.values (default false: only the "
       "Pipeline's author chooses its value)."),
    _f("valueFromSecret", Kind.SECRET_REF, "Where a masked (*) parameter's value comes from: {name, key} of a "
       "Secret. The value reaches the run's pods from the Secret and never appears in a Job spec."),
)

# Activity defaults: the AWS Default object. Only activity fields are inherited.
DEFAULTS_FIELDS: tuple[FieldSpec, ...] = (*tuple(f for f in ACTIVITY_COMMON if f.name not in ("dependsOn", "input", "output")), _f("vars", Kind.MAP, "User-defined fields every object inherits."))


def types_in(section: str) -> list[TypeSpec]:
    return [t for t in _TYPES if t.section == section]


def default_type(section: str) -> str | None:
    """The type an object gets when it names none: the section's only type, if it has one."""
    names = [t.name for t in types_in(section)]
    return names[0] if len(names) == 1 else None
