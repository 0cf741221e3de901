"""Amazon RDS and Aurora PostgreSQL with IAM database authentication.

A database user granted ``rds_iam`` logs in with no stored password: it presents a token, a
request to ``rds-db:connect`` signed with the process's AWS credentials (the IAM role of its
task, function or instance), valid for 15 minutes. boto3 signs it locally; no call to AWS is
made. A pool keeps connections for hours and opens new ones at any time, so the token cannot be
written into the URL: ``rds_iam_password(...)`` is a callable for ``steward.open(url,
password=...)``, which asks it for a fresh token for each new connection
(``steward.storage.passwords``).

The token travels as the password, so RDS accepts it only over TLS: put ``sslmode=verify-full``
and ``sslrootcert=`` the RDS CA bundle (``global-bundle.pem``) in the URL. The host, port and
user must be those the URL connects to and logs in as, since the token is signed for them.
"""

from __future__ import annotations

import os
import re
from typing import Any

from steward.errors import ConfigError

__all__ = ["INSTALL", "RdsIamPassword", "rds_iam_password"]

INSTALL = "pip install 'langgraph-steward[aws]'"
# An RDS endpoint names its region: <name>.<id>.<region>.rds.amazonaws.com (also RDS Proxy's,
# and .com.cn in China).
_RDS_HOST = re.compile(r"\.(?P<region>[a-z]{2}(?:-[a-z]+)+-\d+)\.rds\.amazonaws\.com(?:\.cn)?$")


def _boto3() -> Any:
    """boto3, or ConfigError saying how to install it."""
    try:
        import boto3
    except ImportError as exc:
        raise ConfigError(f"steward.aws needs boto3: {INSTALL}.") from exc
    return boto3


class RdsIamPassword:
    """A fresh IAM authentication token for each call: ``password=`` for ``steward.open``.
    Built by :func:`rds_iam_password`."""

    def __init__(self, host: str, port: int, user: str, region: str, client: Any) -> None:
        self.host, self.port, self.user, self.region = host, port, user, region
        self._client = client

    def __call__(self) -> str:
        from botocore.exceptions import BotoCoreError, NoCredentialsError

        try:
            token = self._client.generate_db_auth_token(
                DBHostname=self.host, Port=self.port, DBUsername=self.user, Region=self.region)
        except NoCredentialsError as exc:
            raise ConfigError(
                f"no AWS credentials to sign the IAM token for {self.user}@{self.host}: give "
                "this process an IAM role allowed rds-db:connect on that user (or set "
                "AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY).") from exc
        except BotoCoreError as exc:
            raise ConfigError(f"cannot sign the IAM token for {self.user}@{self.host}: {exc}. "
                              "Check this process's AWS credentials and region.") from exc
        return str(token)

    def __repr__(self) -> str:
        return f"RdsIamPassword({self.user}@{self.host}:{self.port}, {self.region})"


def rds_iam_password(host: str, port: int, user: str, region: str | None = None, *,
                     session: Any = None) -> RdsIamPassword:
    """The callable for ``steward.open(url, password=...)`` that logs ``user`` into the RDS or
    Aurora PostgreSQL endpoint ``host:port`` with a fresh IAM token for each connection.

    ``region`` defaults to the one the endpoint's name holds, else boto3's
    (``AWS_DEFAULT_REGION``, the profile's), else ``AWS_REGION``. ``session`` is a
    ``boto3.Session`` (default: a new one, with the usual credential chain: environment,
    profile, the role of the container or instance). Checked at once: ConfigError for a
    malformed argument, no region, or no boto3."""
    boto3 = _boto3()
    if not isinstance(host, str) or not host.strip():
        raise ConfigError(f"host must be the endpoint's name, e.g. "
                          f"mydb.cluster-abc.eu-west-1.rds.amazonaws.com; got {host!r}.")
    if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
        raise ConfigError(f"port must be the endpoint's port (e.g. 5432), got {port!r}.")
    if not isinstance(user, str) or not user:
        raise ConfigError(f"user must be the database user granted rds_iam, got {user!r}.")
    session = session if session is not None else boto3.Session()
    found = _RDS_HOST.search(host.strip().lower())
    # boto3 reads AWS_DEFAULT_REGION (and profiles); AWS_REGION is what Lambda, ECS and
    # AgentCore Runtime set.
    region = (region or (found["region"] if found else None) or session.region_name
              or os.environ.get("AWS_REGION"))
    if not region:
        raise ConfigError(f"no AWS region for {host}: pass region=, or set AWS_REGION.")
    return RdsIamPassword(host.strip(), port, user, region,
                          session.client("rds", region_name=region))
