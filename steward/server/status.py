"""Steward's refusals as HTTP answers, one mapping for every host that serves graphs over HTTP
(the LangGraph server's auth handlers, the AgentCore entrypoint), so that the same refusal is
the same status wherever it is served."""

from __future__ import annotations

from steward.errors import (
    ApprovalInvalid,
    ConfigError,
    PolicyDenied,
    StewardError,
    ThreadAccessDenied,
    ThreadBusy,
    TokenInvalid,
)

__all__ = ["http_message", "http_status"]

_NOT_FOUND = ("no such thread for this principal: check the id, and that the token names the "
              "tenant the thread belongs to")


def http_status(exc: StewardError) -> int:
    """The status a refusal is answered with: 401 a bad token, 403 what the principal may not
    do (a vote the approval refuses, a role the access rule lacks, a policy), 404 another
    tenant's thread (no thread of the caller's: its existence is not disclosed), 409 a thread
    another run holds, 422 a malformed vote, 400 a malformed request, 500 anything else."""
    if isinstance(exc, TokenInvalid):
        return 401
    if isinstance(exc, ApprovalInvalid):
        return 422 if exc.malformed else 403
    if isinstance(exc, ThreadAccessDenied):
        return 404 if exc.foreign else 403
    if isinstance(exc, PolicyDenied):
        return 403
    if isinstance(exc, ThreadBusy):
        return 409
    return 400 if isinstance(exc, ConfigError) else 500


def http_message(exc: StewardError) -> str:
    """What the answer says: the error's own message, except for another tenant's thread,
    whose refusal names tenants the caller must not learn of."""
    if isinstance(exc, ThreadAccessDenied) and exc.foreign:
        return _NOT_FOUND
    return str(exc)
