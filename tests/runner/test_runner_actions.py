"""SnsAlarm, Webhook and the DynamoDB preconditions against moto (server mode) and a real HTTP receiver."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fixtures.servers import MotoServer, Webhook, free_port
from runner_helpers import Runner, assert_failed, task

pytestmark = pytest.mark.servers


def aws(moto: MotoServer) -> dict[str, Any]:
    return {"region": moto.region, "sns_endpoint_url": moto.endpoint, "dynamodb_endpoint_url": moto.endpoint}


def test_sns_alarm_publishes(runner: Runner, moto: MotoServer) -> None:
    sns, sqs = moto.client("sns"), moto.client("sqs")
    topic = sns.create_topic(Name="alarms")["TopicArn"]
    queue = sqs.create_queue(QueueName="alarm-inbox")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn)
    spec = task("action", "SnsAlarm", {"topicArn": topic, "subject": "Copy failed: MyCopy\nat 10:00",
                                       "message": "MyCopy failed: S3.NoSuchBucket"}, aws=aws(moto))
    run = runner(spec, moto.env())
    assert run.code == 0, run.output
    body = json.loads(sqs.receive_message(QueueUrl=queue, WaitTimeSeconds=2)["Messages"][0]["Body"])
    assert body["Message"] == "MyCopy failed: S3.NoSuchBucket"
    assert body["Subject"] == "Copy failed: MyCopy at 10:00"


def test_sns_alarm_missing_topic(runner: Runner, moto: MotoServer) -> None:
    topic = "arn:aws:sns:us-east-1:123456789012:no-such-topic"
    run = runner(task("action", "SnsAlarm", {"topicArn": topic, "message": "m"}, aws=aws(moto)), moto.env())
    assert_failed(run, "SNS.NotFound")
    assert run.result.error_message.startswith(f"SnsAlarm MySnsAlarm (topicArn {topic}): ")


def test_sns_unreachable_endpoint(runner: Runner, moto: MotoServer) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    spec = task("action", "SnsAlarm", {"topicArn": "arn:aws:sns:us-east-1:123456789012:t", "message": "m"},
                aws={"region": "us-east-1", "sns_endpoint_url": dead})
    run = runner(spec, moto.env() | {"DATAPIPELINE_AWS_MAX_ATTEMPTS": "1"})
    assert_failed(run, "SNS.EndpointUnreachable", "SnsAlarm MySnsAlarm (topicArn arn:aws:sns:us-east-1:"
                  f"123456789012:t): cannot connect to the SNS endpoint {dead} (EndpointConnectionError)")


def webhook_task(hook: Webhook, **fields: Any) -> dict[str, Any]:
    return task("action", "Webhook", {"url": hook.url, "subject": "done", "message": "MyCopy finished", **fields},
                node={"name": "MyCopy", "@status": "FINISHED", "@scheduledStartTime": "2026-11-21T10:00:00"})


def test_webhook_posts_json_with_secret_headers(runner: Runner, webhook: Webhook) -> None:
    run = runner(webhook_task(webhook, headers={"X-Team": "data"}),
                 {"DATAPIPELINE_HEADER_Authorization": "Bearer top-secret-token"})
    assert run.code == 0, run.output
    (req,) = webhook.requests
    assert req["body"] == {"subject": "done", "message": "MyCopy finished", "pipeline": "p1",
                           "run": "p1-20261121t1000", "activity": "MyCopy", "status": "FINISHED"}
    assert req["headers"]["Authorization"] == "Bearer top-secret-token"
    assert req["headers"]["X-Team"] == "data"
    assert "top-secret-token" not in run.output


def test_webhook_retries_server_errors(runner: Runner, webhook: Webhook) -> None:
    webhook.fail_first = 2
    run = runner(webhook_task(webhook))
    assert run.code == 0, run.output
    assert len(webhook.requests) == 3
    assert run.stdout.count("failed (HTTP 503); retrying") == 2


def test_webhook_client_error_is_not_retried(runner: Runner, webhook: Webhook) -> None:
    webhook.status = 404
    run = runner(webhook_task(webhook))
    assert_failed(run, "Webhook.Rejected", f"Webhook MyWebhook: {webhook.url} answered HTTP 404; not retried")
    assert len(webhook.requests) == 1


def test_webhook_unreachable(runner: Runner) -> None:
    url = f"http://127.0.0.1:{free_port()}/hook?token=abc"
    run = runner(task("action", "Webhook", {"url": url, "message": "m"}))
    assert_failed(run, "Webhook.Failed", f"Webhook MyWebhook: POST {url.split('?')[0]} failed 4 times; last: "
                  "cannot connect")
    assert "token=abc" not in run.output


# ----------------------------------------------------------------------------------- DynamoDB
@pytest.fixture
def table(moto: MotoServer) -> str:
    ddb = moto.client("dynamodb")
    name = f"events{free_port()}"
    ddb.create_table(TableName=name, KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
                     AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
                     BillingMode="PAY_PER_REQUEST")
    return name


def test_dynamodb_table_exists(runner: Runner, moto: MotoServer, table: str) -> None:
    assert runner(task("precondition", "DynamoDBTableExists", {"tableName": table}, aws=aws(moto)),
                  moto.env()).code == 0
    run = runner(task("precondition", "DynamoDBTableExists", {"tableName": "nope"}, aws=aws(moto)), moto.env())
    assert run.code == 75
    assert run.result.status == "FALSE"
    assert run.result.error_message == "DynamoDBTableExists MyDynamoDBTableExists: DynamoDB table nope does not exist"


def test_dynamodb_data_exists(runner: Runner, moto: MotoServer, table: str) -> None:
    spec = task("precondition", "DynamoDBDataExists", {"tableName": table}, aws=aws(moto))
    run = runner(spec, moto.env())
    assert run.code == 75
    assert run.result.error_message == f"DynamoDBDataExists MyDynamoDBDataExists: DynamoDB table {table} holds no items"
    moto.client("dynamodb").put_item(TableName=table, Item={"id": {"S": "1"}})
    assert runner(spec, moto.env()).code == 0


def test_dynamodb_unreachable_is_a_failure_not_false(runner: Runner) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    run = runner(task("precondition", "DynamoDBTableExists", {"tableName": "t"},
                      aws={"dynamodb_endpoint_url": dead}),
                 {"AWS_ACCESS_KEY_ID": "a", "AWS_SECRET_ACCESS_KEY": "bbbb", "DATAPIPELINE_AWS_MAX_ATTEMPTS": "1"})
    assert_failed(run, "DynamoDB.EndpointUnreachable", "DynamoDBTableExists MyDynamoDBTableExists (tableName t): "
                  f"cannot connect to the DynamoDB endpoint {dead} (EndpointConnectionError)")
