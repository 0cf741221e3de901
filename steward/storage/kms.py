"""AWS KMS as Steward's key service: a data key per thread, wrapped by a KMS key.

``steward.open(url, encryption_key=KmsKeys("alias/steward"))`` -- or ``"kms:alias/steward"``,
or ``STEWARD_ENCRYPTION_KEY=kms:alias/steward`` -- makes each thread's data key with
``GenerateDataKey`` (AES-256) under that KMS key and unwraps it with ``Decrypt``, both bound
to an encryption context naming the thread and its tenant (``steward.storage.envelope``). The
plaintext data keys stay in this process's memory, for ``cache_ttl`` seconds at most.

``Decrypt`` names the KMS key (``KeyId``), so a wrapped key planted by someone who can write
the database but made under a KMS key of their own is refused rather than trusted; after
moving to a new KMS key, list the old one in ``previous`` so that threads made under it still
open. Rotating a KMS key (automatic or on demand) keeps its id: nothing to change or rewrite.

boto3 is an optional dependency (``pip install 'langgraph-steward[aws]'``), imported when a
``KmsKeys`` without a client of its own is made. AWS's errors become steward errors that say
what to do: ConfigError for access, keys and credentials, StorageError for a service that
failed or could not be reached, PayloadCorrupted for a wrapped key that does not open.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from typing import Any

from steward.errors import ConfigError, PayloadCorrupted, StewardError, StorageError
from steward.storage.keys import DataKey

__all__ = ["CONTEXT_ENV", "KmsKeys"]

INSTALL = "pip install 'langgraph-steward[aws]'"
CONTEXT_ENV = "STEWARD_KMS_CONTEXT"  # extra encryption context of the kms: text form
# The encryption context's names Steward sets itself (steward.storage.envelope).
_STEWARDS = {"steward:scope", "steward:thread", "steward:tenant", "steward:subject"}
# Fail within seconds, not minutes, when KMS cannot be reached (boto3's default is 60 s and
# more attempts): a write waits on it the first time it meets a thread.
_TIMEOUTS = {"connect_timeout": 5, "read_timeout": 10,
             "retries": {"max_attempts": 3, "mode": "standard"}}
_DENIED = {"AccessDeniedException", "AccessDenied", "403"}
_CREDENTIALS = {"UnrecognizedClientException", "InvalidClientTokenId", "ExpiredTokenException",
                "InvalidSignatureException", "SignatureDoesNotMatch"}
_STATE = {"DisabledException", "KMSInvalidStateException"}


class KmsKeys:
    """Data keys from AWS KMS (a :class:`steward.storage.keys.DataKeyProvider`).

    - ``key_id``: the KMS key's id, alias (``alias/steward``) or ARN, a symmetric
      encryption key;
    - ``client``: a boto3 KMS client to use (else one is made for ``region`` -- default: the
      ARN's region, then ``AWS_REGION`` -- and ``endpoint_url``, default boto3's, which
      honours ``AWS_ENDPOINT_URL_KMS``);
    - ``previous``: KMS keys that wrapped older data keys, still accepted to unwrap them;
    - ``context``: pairs added to every data key's encryption context, such as
      ``{"steward:deployment": "steward-refund"}``, which a key policy can require (and
      which then binds each wrapped key to this deployment); fixed for the life of the
      database. The ``kms:`` text form takes them from ``$STEWARD_KMS_CONTEXT``
      (``name=value`` pairs, comma-separated);
    - ``cache_ttl``: seconds an unwrapped data key stays in memory (default 300; 0: unwrap on
      every read or write that needs it); ``cache_size``: at most that many keys (default
      10,000, least recently used first out).
    """

    def __init__(self, key_id: str, *, client: Any = None, region: str | None = None,
                 endpoint_url: str | None = None, previous: Sequence[str] = (),
                 context: Mapping[str, str] | None = None, cache_ttl: float = 300.0,
                 cache_size: int = 10_000) -> None:
        if not isinstance(key_id, str) or not key_id.strip():
            raise ConfigError(f"KmsKeys takes a KMS key id, alias (alias/...) or ARN, got "
                              f"{key_id!r}.")
        self.key_id = key_id.strip()
        if isinstance(previous, str) or not all(isinstance(k, str) and k.strip()
                                                 for k in previous):
            raise ConfigError(f"KmsKeys(previous=...) takes a list of KMS key ids, aliases or "
                              f"ARNs, got {previous!r}: write previous=['alias/old'].")
        self.previous = tuple(k.strip() for k in previous)
        self.context = _checked_context(context or {})
        self.name = f"AWS KMS key {self.key_id}"
        self.cache_ttl = cache_ttl
        self.cache_size = cache_size
        self._client = client if client is not None else _client(
            region or _arn_region(self.key_id), endpoint_url)

    @classmethod
    def from_text(cls, key_id: str) -> KmsKeys:
        """``encryption_key="kms:<key_id>"``: boto3's defaults, and the extra encryption
        context of ``$STEWARD_KMS_CONTEXT``."""
        return cls(key_id, context=_parse_context(os.environ.get(CONTEXT_ENV, "")))

    def __repr__(self) -> str:
        return f"KmsKeys({self.key_id!r})"

    def generate(self, context: Mapping[str, str]) -> DataKey:
        try:
            found = self._client.generate_data_key(
                KeyId=self.key_id, KeySpec="AES_256",
                EncryptionContext={**self.context, **context})
        except Exception as exc:
            raise self._failure(exc, "kms:GenerateDataKey", self.key_id) from exc
        return DataKey(bytes(found["Plaintext"]), bytes(found["CiphertextBlob"]),
                       str(found.get("KeyId") or self.key_id))

    def unwrap(self, wrapped: bytes, context: Mapping[str, str]) -> bytes:
        first: tuple[StewardError, Exception] | None = None
        for key_id in (self.key_id, *self.previous):
            try:
                found = self._client.decrypt(CiphertextBlob=wrapped, KeyId=key_id,
                                             EncryptionContext={**self.context, **context})
                return bytes(found["Plaintext"])
            except Exception as exc:
                failure = self._failure(exc, "kms:Decrypt", key_id)
                if not _other_key(exc):
                    raise failure from exc
                first = first or (failure, exc)
        assert first is not None
        raise first[0] from first[1]

    def _failure(self, exc: Exception, action: str, key_id: str) -> StewardError:
        """AWS's error as a steward error that says what to do."""
        where = self._where()
        try:
            from botocore import exceptions as aws
        except ImportError:  # a client of the caller's own, without botocore
            return StorageError(f"{action} on KMS key {key_id} failed: {exc!r}.")
        if isinstance(exc, aws.ClientError):
            error = exc.response.get("Error", {})
            code = str(error.get("Code", ""))
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            message = _short(str(error.get("Message") or code))
            if code in _DENIED or status == 403:
                return ConfigError(
                    f"AWS KMS denied {action} on key {key_id} ({message}): grant the role "
                    f"Steward runs as {action} on that key, with the encryption-context "
                    "condition of the README's key policy, or check which credentials it uses.")
            if code == "NotFoundException":
                return ConfigError(f"AWS KMS has no key {key_id}{where} ({message}): check the "
                                   "key id, alias or ARN, and the region.")
            if code in _STATE:
                return ConfigError(
                    f"KMS key {key_id} cannot be used ({code}: {message}): it is disabled or "
                    "pending deletion. Enable it (aws kms enable-key, or cancel-key-deletion); "
                    "until then the threads it protects can be neither read nor written.")
            if code == "IncorrectKeyException":
                return ConfigError(
                    f"a wrapped data key was made under another KMS key than {key_id}: if the "
                    "threads moved to a new key, list the old one in KmsKeys(previous=[...]).")
            if code == "InvalidCiphertextException":
                return PayloadCorrupted(
                    "a wrapped data key did not open under its encryption context: it was "
                    "altered, or moved from another thread or person. Restore the keys table "
                    "from a backup, or delete the thread.")
            if code in _CREDENTIALS:
                return ConfigError(f"AWS rejected the credentials for {action} ({code}: "
                                   f"{message}): check the role or keys Steward runs with.")
            if code in ("InvalidKeyUsageException", "ValidationException"):
                return ConfigError(f"KMS key {key_id} cannot make data keys ({code}: "
                                   f"{message}): use a symmetric encryption key "
                                   "(KeySpec SYMMETRIC_DEFAULT, KeyUsage ENCRYPT_DECRYPT).")
            return StorageError(f"AWS KMS failed {action} on key {key_id}{where} ({code or status}"
                                f": {message}): retry later.")
        if isinstance(exc, (aws.NoCredentialsError, aws.PartialCredentialsError)):
            return ConfigError(f"no AWS credentials for {action} on KMS key {key_id}: give "
                               "Steward a role (instance profile, task or pod role) or set "
                               "AWS_PROFILE / AWS_ACCESS_KEY_ID.")
        if isinstance(exc, aws.NoRegionError):
            return ConfigError(f"no AWS region for KMS key {key_id}: set AWS_REGION, pass "
                               "KmsKeys(region=...), or name the key by its ARN.")
        if isinstance(exc, (aws.EndpointConnectionError, aws.ConnectTimeoutError,
                            aws.ReadTimeoutError, aws.ConnectionClosedError)):
            return StorageError(f"cannot reach AWS KMS{where} for {action} ({_short(str(exc))}): "
                                "check the network path to KMS (from a private subnet, a VPC "
                                "endpoint for KMS) and retry.")
        return StorageError(f"AWS KMS failed {action} on key {key_id}{where}: "
                            f"{_short(repr(exc))}. Retry later.")

    def _where(self) -> str:
        meta = getattr(self._client, "meta", None)
        region = getattr(meta, "region_name", None)
        endpoint = getattr(meta, "endpoint_url", None)
        return f" at {endpoint}" if endpoint else f" in {region}" if region else ""


def _checked_context(context: Mapping[str, str]) -> dict[str, str]:
    out = {}
    for name, value in dict(context).items():
        if not isinstance(name, str) or not isinstance(value, str) or not name or not value:
            raise ConfigError(f"KmsKeys(context=...) maps names to values, both non-empty "
                              f"text, got {name!r}: {value!r}.")
        if name in _STEWARDS:
            raise ConfigError(f"KmsKeys(context=...) may not set {name!r}: Steward sets it "
                              "for each data key. Use a name of your own, such as "
                              "'steward:deployment'.")
        out[name] = value
    return out


def _parse_context(text: str) -> dict[str, str]:
    """``name=value,name=value`` (``$STEWARD_KMS_CONTEXT``)."""
    pairs = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, eq, value = part.partition("=")
        if not eq or not name.strip() or not value.strip():
            raise ConfigError(f"{CONTEXT_ENV} holds name=value pairs, comma-separated (such "
                              f"as steward:deployment=prod), got {part!r}.")
        pairs[name.strip()] = value.strip()
    return _checked_context(pairs)


def _other_key(exc: Exception) -> bool:
    """Whether Decrypt refused because the wrapped key belongs to another KMS key (real KMS
    says IncorrectKeyException; some emulators say access denied)."""
    response = getattr(exc, "response", None)
    if not isinstance(response, dict):
        return False
    code = str(response.get("Error", {}).get("Code", ""))
    return code in ("IncorrectKeyException", *_DENIED)


def _short(text: str, limit: int = 300) -> str:
    """AWS's message on one line (the text of an XML error's <Message>, if that is what came)."""
    found = re.search(r"<Message>(.*?)</Message>", text, flags=re.S)
    text = " ".join((found.group(1) if found else text).split())
    return text if len(text) <= limit else text[:limit] + "..."


def _arn_region(key_id: str) -> str | None:
    """The region of a key or alias ARN (``arn:aws:kms:REGION:ACCOUNT:key/...``)."""
    parts = key_id.split(":")
    return parts[3] or None if len(parts) > 5 and parts[0] == "arn" else None


def _client(region: str | None, endpoint_url: str | None) -> Any:
    try:
        import boto3
        from botocore.config import Config
        from botocore.exceptions import BotoCoreError
    except ImportError as exc:
        raise ConfigError(f"AWS KMS keys need boto3: {INSTALL}.") from exc
    try:
        return boto3.client("kms", region_name=region, endpoint_url=endpoint_url,
                            config=Config(**_TIMEOUTS))
    except BotoCoreError as exc:
        raise ConfigError(f"cannot make an AWS KMS client ({exc}): set AWS_REGION (or pass "
                          "KmsKeys(region=...)) and check the AWS configuration.") from exc
