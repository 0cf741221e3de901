"""``steward.aws.rds_iam_password``: a callable that signs a fresh RDS IAM authentication
token for each connection, offline (boto3 signs locally; fake static credentials do), which
``steward.open(url, password=...)`` sends as the password and never shows."""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs

import pytest
from _password_role import PasswordRole, password_role
from _pg import PgServer

import steward
from steward.aws import RdsIamPassword, rds_iam_password
from steward.errors import ConfigError

HOST = "orders.cluster-c9akciq32.eu-west-1.rds.amazonaws.com"
KEY_ID = "AKIAIOSFODNN7EXAMPLE"
SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    """No AWS configuration but the environment's: no files, no instance metadata, no
    region; the test sets credentials (or not)."""
    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_REGION", "AWS_DEFAULT_REGION",
                 "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
                 "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_CREDENTIALS_FULL_URI",
                 "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ROLE_ARN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    return monkeypatch


@pytest.fixture
def credentials(aws_env: pytest.MonkeyPatch) -> None:
    aws_env.setenv("AWS_ACCESS_KEY_ID", KEY_ID)
    aws_env.setenv("AWS_SECRET_ACCESS_KEY", SECRET)


def _parts(token: str) -> tuple[str, dict[str, str]]:
    where, sep, query = token.partition("/?")
    assert sep, token
    params = {k: v[0] for k, v in parse_qs(query, strict_parsing=True).items()}
    return where, params


@pytest.mark.usefixtures("credentials")
def test_the_token_is_a_signed_connect_request_for_the_host_port_and_user() -> None:
    password = rds_iam_password(HOST, 5432, "app_user")
    assert isinstance(password, RdsIamPassword) and password.region == "eu-west-1"  # the host's
    where, params = _parts(password())
    assert where == f"{HOST}:5432"
    assert params["Action"] == "connect" and params["DBUser"] == "app_user"
    assert params["X-Amz-Algorithm"] == "AWS4-HMAC-SHA256"
    key_id, day, region, service, scope = params["X-Amz-Credential"].split("/")
    assert (key_id, region, service, scope) == (KEY_ID, "eu-west-1", "rds-db", "aws4_request")
    assert re.fullmatch(r"\d{8}", day) and params["X-Amz-Date"].startswith(day)
    assert params["X-Amz-Expires"] == "900"  # 15 minutes
    assert params["X-Amz-SignedHeaders"] == "host"
    assert re.fullmatch(r"[0-9a-f]{64}", params["X-Amz-Signature"])
    assert SECRET not in password() and SECRET not in repr(password)


def test_the_region_is_the_argument_else_the_host_s_else_boto3_s_else_aws_region(
        credentials: None, aws_env: pytest.MonkeyPatch) -> None:
    assert rds_iam_password(HOST, 5432, "app", "us-east-2").region == "us-east-2"
    proxy = "orders.proxy-c9akciq32.ap-southeast-2.rds.amazonaws.com"  # RDS Proxy's
    assert rds_iam_password(proxy, 5432, "app").region == "ap-southeast-2"
    elsewhere = "db.example.internal"  # a name that holds no region
    with pytest.raises(ConfigError, match=f"no AWS region for {elsewhere}: pass region="):
        rds_iam_password(elsewhere, 5432, "app")
    aws_env.setenv("AWS_REGION", "ca-central-1")  # what Lambda, ECS and AgentCore set
    password = rds_iam_password(elsewhere, 6432, "app")
    assert password.region == "ca-central-1"
    assert _parts(password())[1]["X-Amz-Credential"].split("/")[2] == "ca-central-1"
    aws_env.setenv("AWS_DEFAULT_REGION", "sa-east-1")  # boto3's own comes first
    assert rds_iam_password(elsewhere, 6432, "app").region == "sa-east-1"


@pytest.mark.usefixtures("aws_env")
def test_no_credentials_is_a_config_error_that_says_what_to_give() -> None:
    password = rds_iam_password(HOST, 5432, "app")  # no credentials needed yet
    with pytest.raises(ConfigError, match=r"no AWS credentials to sign the IAM token for "
                                          r"app@orders\..* give this process an IAM role"):
        password()


@pytest.mark.usefixtures("credentials")
@pytest.mark.parametrize(("args", "says"), [
    (("", 5432, "app"), "host must be the endpoint's name"),
    ((HOST, "5432", "app"), "port must be the endpoint's port"),
    ((HOST, 0, "app"), "port must be the endpoint's port"),
    ((HOST, 5432, ""), "user must be the database user granted rds_iam"),
])
def test_malformed_arguments_are_refused_at_once(args: tuple[object, ...], says: str) -> None:
    with pytest.raises(ConfigError, match=says):
        rds_iam_password(*args)  # type: ignore[arg-type]


def test_without_boto3_the_error_says_how_to_install_it(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "boto3", None)  # import boto3 raises ImportError
    with pytest.raises(ConfigError, match=re.escape(
            "steward.aws needs boto3: pip install 'langgraph-steward[aws]'")):
        rds_iam_password(HOST, 5432, "app")


@pytest.fixture
def role(pg_server: PgServer, pg_url: str) -> Iterator[PasswordRole]:
    with password_role(pg_server, pg_url) as made:
        yield made


@pytest.mark.postgres
@pytest.mark.usefixtures("credentials")
async def test_steward_open_sends_a_token_as_the_password_and_never_shows_it(
        role: PasswordRole) -> None:
    # The local server cannot check a signature: it refuses the token as a wrong password,
    # which shows that the token was sent; the error holds neither the token nor its parts.
    tokens: list[str] = []
    signer = rds_iam_password(HOST, 5432, role.role)

    def password() -> str:
        tokens.append(signer())
        return tokens[-1]

    with pytest.raises(ConfigError, match="password authentication failed") as sync:
        steward.open(role.url, password=password)
    with pytest.raises(ConfigError, match="password authentication failed") as async_:
        await steward.aopen(role.url, password=password)
    assert len(tokens) == 2
    for caught, token in zip((sync, async_), tokens, strict=True):
        assert token not in str(caught.value)
        assert _parts(token)[1]["X-Amz-Signature"] not in str(caught.value)
