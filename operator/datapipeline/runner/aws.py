"""boto3 clients for SNS and DynamoDB and their error mapping (S3 has its own module)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError, ConnectTimeoutError, EndpointConnectionError

from datapipeline.core.task import AwsSpec
from datapipeline.runner.errors import TaskError
from datapipeline.runner.s3 import client_config

_AUTH = {"UnrecognizedClientException", "InvalidClientTokenId", "InvalidSignatureException",
         "SignatureDoesNotMatch", "IncompleteSignature", "MissingAuthenticationToken"}


def client(service: str, aws: AwsSpec, region: str | None = None) -> Any:
    endpoint = aws.sns_endpoint_url if service == "sns" else aws.dynamodb_endpoint_url
    cfg = client_config(AwsSpec(region=region or aws.region), service)
    return boto3.session.Session().client(service, endpoint_url=endpoint, config=cfg)


@contextmanager
def errors_as(label: str, where: str, endpoint: str | None) -> Iterator[None]:
    """``label`` is SNS or DynamoDB; error ids are ``<label>.<AWS code>``."""
    try:
        yield
    except ClientError as e:
        code = str(e.response.get("Error", {}).get("Code", "Unknown"))
        detail = e.response.get("Error", {}).get("Message") or code
        if code in _AUTH:
            raise TaskError(f"{label}.AuthFailure", f"{where}: {label} rejected the credentials (check "
                            f"AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY): {code}") from None
        raise TaskError(f"{label}.{code}", f"{where}: {detail}") from None
    except (EndpointConnectionError, ConnectTimeoutError) as e:
        raise TaskError(f"{label}.EndpointUnreachable", f"{where}: cannot connect to the {label} endpoint "
                        f"{endpoint or '(AWS default)'} ({type(e).__name__})") from None
    except BotoCoreError as e:
        raise TaskError(f"{label}.Error", f"{where}: {type(e).__name__}: {e}") from None
