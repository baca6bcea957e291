"""The task runner: ``datapipeline-runner`` runs one activity attempt, precondition check or action.

Layout: ``main`` (contract: task in, result/exit code out), ``log`` (line format, redaction,
progress heartbeat), ``context`` (what handlers get), adapters at the I/O edge (``s3``, ``aws``,
``sql`` with ``sqltext``), ``formats`` and ``nodes`` (streamed rows), and the handlers
(``activities/*``, ``preconditions``, ``actions``). boto3, psycopg and pymysql are used only here.

Environment the runner reads, besides the task (``DATAPIPELINE_TASK``):
- ``AWS_ACCESS_KEY_ID`` / ``AWS_SECRET_ACCESS_KEY`` (/ ``AWS_SESSION_TOKEN``) from a Secret;
- each database's ``password_env`` / ``username_env`` variable from a Secret;
- ``DATAPIPELINE_HEADER_<Name>``: extra Webhook headers (the ``headersFromSecret`` Secret mounted
  with ``envFrom.prefix: DATAPIPELINE_HEADER_``; ``_`` in the name becomes ``-``);
- ``TMPDIR``: scratch space (the pod's emptyDir; the root filesystem may be read-only);
- for tests and tuning: ``DATAPIPELINE_TERMINATION_LOG`` (default /dev/termination-log),
  ``DATAPIPELINE_PROGRESS_INTERVAL`` (seconds), ``DATAPIPELINE_AWS_MAX_ATTEMPTS``,
  ``DATAPIPELINE_WEBHOOK_ATTEMPTS``, ``DATAPIPELINE_WEBHOOK_BACKOFF``.

Values of all secret variables are masked (``***``) in every log line and in the result.

With the task's ``log_uri`` (``pipelineLogUri``) set, the runner uploads its complete log at the
end of the attempt, also on failure, to ``<log_uri>/<pipeline>/<run>/<name>/attempt-<n>.log``
(see ``main``). Shell commands get the task's AWS settings as ``AWS_REGION``,
``AWS_ENDPOINT_URL_S3``/``_DYNAMODB``/``_SNS`` (and a path-style ``AWS_CONFIG_FILE``), which boto3
and the AWS CLI honour; ``tools.dynamodb`` is the export/import command of the DynamoDB templates.
"""
