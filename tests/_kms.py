"""AWS KMS for the tests: moto's server mode on 127.0.0.1 (``moto[server]``, the dev extra),
reached by boto3 through ``endpoint_url`` with fake credentials; nothing leaves the machine.

``start_kms()`` runs one server (a thread of the test process); ``Kms`` makes keys on it, and
clients and ``KmsKeys`` pointed at it. ``deny`` turns on moto's IAM checks with a policy that
refuses the given KMS actions to the application's user, the way a revoked grant would in AWS
(moto does not refuse a disabled key, so denial and an unreachable endpoint are how the tests
make KMS fail mid-way).
"""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from steward.storage.kms import KmsKeys

REGION = "us-east-1"
FAKE = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing", "AWS_DEFAULT_REGION": REGION, "AWS_REGION": REGION}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def start_kms() -> Iterator[str]:
    """A moto server on a free local port; yields its endpoint URL."""
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per request otherwise
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


def client(endpoint: str, service: str = "kms", **credentials: str) -> Any:
    import boto3

    return boto3.client(service, endpoint_url=endpoint, region_name=REGION,
                        aws_access_key_id=credentials.get("key", "testing"),
                        aws_secret_access_key=credentials.get("secret", "testing"))


@dataclass
class Kms:
    """One test's KMS key (and alias) on the shared server."""

    endpoint: str
    admin: Any = field(init=False)
    key_id: str = field(init=False)
    arn: str = field(init=False)
    alias: str = field(init=False)
    _users: dict[str, tuple[str, dict[str, str]]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.admin = client(self.endpoint)
        self.key_id, self.arn = self.new_key()
        self.alias = f"alias/steward-{uuid.uuid4().hex[:8]}"
        self.admin.create_alias(AliasName=self.alias, TargetKeyId=self.key_id)

    def new_key(self) -> tuple[str, str]:
        meta = self.admin.create_key(Description="steward test")["KeyMetadata"]
        return meta["KeyId"], meta["Arn"]

    def keys(self, key_id: str | None = None, **options: Any) -> KmsKeys:
        """KmsKeys for this key (or ``key_id``), on a client of its own."""
        return KmsKeys(key_id or self.alias, client=options.pop("client", None)
                       or client(self.endpoint), **options)

    def app_keys(self, **options: Any) -> KmsKeys:
        """KmsKeys acting as an IAM user of its own, allowed GenerateDataKey and Decrypt, so
        that ``deny`` can take them away."""
        iam = client(self.endpoint, "iam")
        for name, allowed in (("app", ["kms:GenerateDataKey", "kms:Decrypt"]), ("root", ["*"])):
            user = f"{name}-{uuid.uuid4().hex[:8]}"
            iam.create_user(UserName=user)
            iam.put_user_policy(UserName=user, PolicyName="p", PolicyDocument=_policy(allowed))
            made = iam.create_access_key(UserName=user)["AccessKey"]
            self._users[name] = (user, {"key": made["AccessKeyId"],
                                        "secret": made["SecretAccessKey"]})
        return self.keys(client=client(self.endpoint, **self._users["app"][1]), **options)

    @contextlib.contextmanager
    def deny(self, *actions: str) -> Iterator[None]:
        """While the block runs, ``app_keys``' user is denied ``actions`` (moto checks every
        request's credentials then)."""
        user, _ = self._users["app"]
        _auth(self.endpoint, "0")
        try:
            root = client(self.endpoint, "iam", **self._users["root"][1])
            root.put_user_policy(UserName=user, PolicyName="p", PolicyDocument=json.dumps({
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Resource": "*",
                               "Action": ["kms:GenerateDataKey", "kms:Decrypt"]},
                              {"Effect": "Deny", "Action": list(actions), "Resource": "*"}]}))
            yield
            root.put_user_policy(UserName=user, PolicyName="p", PolicyDocument=_policy(
                ["kms:GenerateDataKey", "kms:Decrypt"]))
        finally:
            _auth(self.endpoint, "inf")


def _policy(actions: list[str]) -> str:
    return json.dumps({"Version": "2012-10-17",
                       "Statement": [{"Effect": "Allow", "Action": actions, "Resource": "*"}]})


def _auth(endpoint: str, count: str) -> None:
    """moto's IAM checks on (after ``count`` more requests; "inf": off)."""
    request = urllib.request.Request(f"{endpoint}/moto-api/reset-auth", data=count.encode(),
                                     method="POST", headers={"Content-Type": "text/plain"})
    with urllib.request.urlopen(request, timeout=10) as answer:
        answer.read()
