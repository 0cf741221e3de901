"""One refusal, one HTTP status wherever it is served (``steward.server.status``): the
LangGraph server's auth handlers and the AgentCore entrypoint share the mapping."""

from __future__ import annotations

import pytest

from steward.errors import (
    ApprovalInvalid,
    AuditTampered,
    ConfigError,
    PolicyDenied,
    StewardError,
    ThreadAccessDenied,
    ThreadBusy,
    TokenInvalid,
)
from steward.server.status import http_message, http_status

FOREIGN = ThreadAccessDenied("principal 'eve' of tenant 'globex' may not read thread 't': it "
                             "belongs to another tenant.", thread_id="t", tenant="acme",
                             principal_id="eve", principal_tenant="globex", need="read")
SAME = ThreadAccessDenied("principal 'dave' may not write thread 't' owned by 'alice': Grant "
                          "one with steward.open(..., thread_roles=...).", thread_id="t")


@pytest.mark.parametrize(("exc", "status"), [
    (TokenInvalid("no token"), 401),
    (ApprovalInvalid("own request", rule="four_eyes"), 403),
    (ApprovalInvalid("maybe?", malformed=True), 422),
    (SAME, 403),
    (FOREIGN, 404),
    (PolicyDenied("policy forbids it: ask an admin."), 403),
    (ThreadBusy("held"), 409),
    (ConfigError("bad"), 400),
    (AuditTampered("chain broken"), 500),
], ids=["token", "vote", "malformed-vote", "same-tenant", "foreign", "policy", "busy",
        "config", "other"])
def test_each_refusal_has_one_status(exc: StewardError, status: int) -> None:
    assert http_status(exc) == status


def test_only_a_foreign_refusal_hides_its_message() -> None:
    assert http_message(SAME) == str(SAME)  # what to do stays in the answer
    assert http_message(PolicyDenied("p: ask an admin.")) == "p: ask an admin."
    hidden = http_message(FOREIGN)
    assert "globex" not in hidden and "acme" not in hidden and "no such thread" in hidden
