"""KmsKeys (steward.storage.kms) against AWS KMS as moto's server mode runs it on 127.0.0.1:
data keys bound to their encryption context, rotation and a change of KMS key without a
rewrite, and every failure of AWS as a steward error that says what to do (moto cannot refuse a
disabled key or throttle, so those answers are played by botocore's Stubber)."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from _kms import REGION, Kms, client, free_port
from botocore.exceptions import NoCredentialsError
from botocore.stub import Stubber

from steward import ConfigError, KmsKeys, PayloadCorrupted, StorageError
from steward.storage.keys import key_source

CONTEXT = {"steward:scope": "thread", "steward:thread": "T-1", "steward:tenant": "acme"}


def test_a_data_key_opens_only_under_its_own_context(kms: Kms) -> None:
    keys = kms.keys()
    made = keys.generate(CONTEXT)
    assert len(made.plaintext) == 32 and made.wrapped and made.plaintext not in made.wrapped
    assert made.master == kms.arn  # the key the alias named, as an ARN
    assert keys.unwrap(made.wrapped, CONTEXT) == made.plaintext
    for moved in ({**CONTEXT, "steward:thread": "T-2"}, {**CONTEXT, "steward:tenant": "globex"},
                  {}):
        with pytest.raises(PayloadCorrupted, match="moved from another thread"):
            keys.unwrap(made.wrapped, moved)


def test_rotating_the_kms_key_needs_no_rewrite(kms: Kms) -> None:
    keys = kms.keys()
    before = keys.generate(CONTEXT)
    kms.admin.enable_key_rotation(KeyId=kms.key_id)
    kms.admin.rotate_key_on_demand(KeyId=kms.key_id)
    assert kms.admin.list_key_rotations(KeyId=kms.key_id)["Rotations"]
    after = keys.generate(CONTEXT)
    # Data keys wrapped before the rotation still open, as they are: nothing re-encrypted.
    assert keys.unwrap(before.wrapped, CONTEXT) == before.plaintext
    assert keys.unwrap(after.wrapped, CONTEXT) == after.plaintext


def test_after_moving_to_a_new_kms_key_the_old_one_is_listed_as_previous(kms: Kms) -> None:
    old = kms.keys(kms.arn).generate(CONTEXT)
    new_id, new_arn = kms.new_key()
    moved = kms.keys(new_id)
    assert moved.generate(CONTEXT).master == new_arn
    # Decrypt names the configured key: a data key of another KMS key is not taken on trust.
    with pytest.raises(ConfigError):
        moved.unwrap(old.wrapped, CONTEXT)
    assert kms.keys(new_id, previous=[kms.arn]).unwrap(old.wrapped, CONTEXT) == old.plaintext


def test_an_unknown_key_is_a_config_error_naming_it(kms: Kms) -> None:
    with pytest.raises(ConfigError, match="has no key alias/no-such-key") as info:
        kms.keys("alias/no-such-key").generate(CONTEXT)
    assert "region" in str(info.value)


def test_access_denied_says_which_action_to_grant(kms: Kms) -> None:
    keys = kms.app_keys()
    made = keys.generate(CONTEXT)
    with kms.deny("kms:Decrypt"):
        with pytest.raises(ConfigError, match="denied kms:Decrypt") as info:
            keys.unwrap(made.wrapped, CONTEXT)
        assert "encryption-context condition" in str(info.value)
        keys.generate(CONTEXT)  # still allowed
    with kms.deny("kms:GenerateDataKey"):
        with pytest.raises(ConfigError, match="denied kms:GenerateDataKey"):
            keys.generate(CONTEXT)
    assert keys.unwrap(made.wrapped, CONTEXT) == made.plaintext  # granted again


def test_an_unreachable_endpoint_is_a_storage_error() -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    keys = KmsKeys("alias/steward", client=client(dead))
    with pytest.raises(StorageError, match="cannot reach AWS KMS") as info:
        keys.generate(CONTEXT)
    assert dead in str(info.value) and "VPC endpoint" in str(info.value)


def test_the_region_comes_from_an_arn_and_the_endpoint_from_the_environment(
        kms: Kms) -> None:
    keys = KmsKeys(f"arn:aws:kms:eu-west-3:123456789012:key/{kms.key_id}")
    assert keys._client.meta.region_name == "eu-west-3"
    by_alias = KmsKeys(kms.alias)  # AWS_ENDPOINT_URL_KMS and AWS_REGION (the kms fixture)
    assert by_alias._client.meta.region_name == REGION
    made = by_alias.generate(CONTEXT)
    assert by_alias.unwrap(made.wrapped, CONTEXT) == made.plaintext


def _stubbed(method: str, code: str, status: int = 400,
             message: str = "stubbed") -> KmsKeys:
    kms_client = boto3.client("kms", region_name=REGION, aws_access_key_id="testing",
                              aws_secret_access_key="testing")
    stub = Stubber(kms_client)
    stub.add_client_error(method, service_error_code=code, service_message=message,
                          http_status_code=status)
    stub.activate()
    return KmsKeys("alias/steward", client=kms_client)


def _call(keys: KmsKeys, method: str) -> Any:
    if method == "generate_data_key":
        return keys.generate(CONTEXT)
    return keys.unwrap(b"wrapped", CONTEXT)


@pytest.mark.parametrize(("method", "code", "status", "error", "says"), [
    ("decrypt", "DisabledException", 400, ConfigError, "disabled or pending deletion"),
    ("generate_data_key", "KMSInvalidStateException", 400, ConfigError, "enable-key"),
    ("decrypt", "AccessDeniedException", 400, ConfigError, "denied kms:Decrypt"),
    ("generate_data_key", "NotFoundException", 400, ConfigError, "has no key"),
    ("decrypt", "InvalidCiphertextException", 400, PayloadCorrupted, "moved from another"),
    ("decrypt", "IncorrectKeyException", 400, ConfigError, "previous="),
    ("generate_data_key", "UnrecognizedClientException", 400, ConfigError, "credentials"),
    ("generate_data_key", "InvalidKeyUsageException", 400, ConfigError, "symmetric"),
    ("generate_data_key", "ThrottlingException", 400, StorageError, "retry later"),
    ("decrypt", "KMSInternalException", 500, StorageError, "retry later"),
])
def test_every_aws_error_becomes_a_steward_error_that_says_what_to_do(
        method: str, code: str, status: int, error: type[Exception], says: str) -> None:
    with pytest.raises(error, match=says) as info:
        _call(_stubbed(method, code, status), method)
    assert isinstance(info.value.__cause__, Exception)  # AWS's own error stays visible


def test_no_credentials_is_a_config_error() -> None:
    class NoCredentials:
        meta = None

        def generate_data_key(self, **_: Any) -> Any:
            raise NoCredentialsError()

    with pytest.raises(ConfigError, match="no AWS credentials"):
        KmsKeys("alias/steward", client=NoCredentials()).generate(CONTEXT)


def test_a_bad_key_id_is_refused() -> None:
    for bad in ("", "   ", None, 42):
        with pytest.raises(ConfigError, match="KMS key id"):
            KmsKeys(bad, client=object())  # type: ignore[arg-type]


def test_pairs_of_ones_own_bind_every_data_key(kms: Kms,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    prod = kms.keys(context={"steward:deployment": "prod"})
    made = prod.generate(CONTEXT)
    assert prod.unwrap(made.wrapped, CONTEXT) == made.plaintext
    for other in (kms.keys(), kms.keys(context={"steward:deployment": "staging"})):
        with pytest.raises(PayloadCorrupted):  # another deployment's wrapped key
            other.unwrap(made.wrapped, CONTEXT)
    monkeypatch.setenv("STEWARD_KMS_CONTEXT", "steward:deployment=prod, team=payments")
    from_env = key_source(f"kms:{kms.alias}")
    assert isinstance(from_env, KmsKeys)
    assert from_env.context == {"steward:deployment": "prod", "team": "payments"}
    both = kms.keys(context=from_env.context)
    assert both.unwrap(both.generate(CONTEXT).wrapped, CONTEXT)
    with pytest.raises(PayloadCorrupted):
        from_env.unwrap(made.wrapped, CONTEXT)  # the pairs are part of the binding


@pytest.mark.parametrize("context", [{"steward:thread": "x"}, {"steward:tenant": "acme"},
                                     {"": "x"}, {"k": ""}, {"k": 1}])
def test_pairs_that_would_clash_or_say_nothing_are_refused(context: Any) -> None:
    with pytest.raises(ConfigError, match="context="):
        KmsKeys("alias/steward", client=object(), context=context)


@pytest.mark.parametrize("text", ["steward:deployment", "=prod", "steward:deployment= "])
def test_a_malformed_context_variable_says_how_to_write_it(
        monkeypatch: pytest.MonkeyPatch, text: str) -> None:
    monkeypatch.setenv("STEWARD_KMS_CONTEXT", text)
    with pytest.raises(ConfigError, match="STEWARD_KMS_CONTEXT holds name=value pairs"):
        key_source("kms:alias/steward")


@pytest.mark.parametrize("previous", ["alias/old", ["alias/old", ""], [None]])
def test_previous_keys_are_a_list_of_key_ids(kms: Kms, previous: Any) -> None:
    with pytest.raises(ConfigError, match=r"previous=\['alias/old'\]"):
        kms.keys(kms.arn, previous=previous)
