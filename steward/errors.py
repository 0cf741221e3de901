"""One exception hierarchy for everything Steward raises on purpose.

    StewardError
     ├── ConfigError            (also ValueError)      the caller's setup or input is wrong
     ├── ThreadAccessDenied     (also PermissionError)  the thread access rule refused a request
     ├── ThreadBusy             (also RuntimeError)     another run holds the thread's lease
     ├── TokenInvalid           (also PermissionError)  a request's bearer token did not verify
     ├── PolicyDenied           (also PermissionError)  a guardrail policy forbade an action
     ├── ApprovalInvalid        (also ValueError)       a resume did not carry a valid approval
     ├── EffectConflict         (also RuntimeError)     a re-run node called an effect differently
     ├── MemoryAccessDenied     (also PermissionError)  memories outside the principal's reach
     ├── MemoryRefused          (also ValueError)       the memory rules refused a write
     ├── AuditTampered                                  the audit hash chain does not verify
     ├── PayloadCorrupted                               a stored payload failed its integrity check
     │    └── DataKeyDestroyed                          its data key was destroyed (crypto-shredded)
     └── StorageError                                   the database failed underneath Steward

Every message says what was wrong and what to do about it. Errors from database drivers and
libraries are wrapped with ``raise ... from exc`` so the original cause stays visible.
"""

from __future__ import annotations

__all__ = [
    "ApprovalInvalid",
    "AuditTampered",
    "ConfigError",
    "DataKeyDestroyed",
    "EffectConflict",
    "MemoryAccessDenied",
    "MemoryRefused",
    "PayloadCorrupted",
    "PolicyDenied",
    "StewardError",
    "StorageError",
    "ThreadAccessDenied",
    "ThreadBusy",
    "TokenInvalid",
]


class StewardError(Exception):
    """Base class of every error Steward raises on purpose.

    ``cli``, when set, is the same message worded for the ``steward`` command: its advice names
    the command's flags (``--thread-roles``, ``--as``) where ``str(exc)`` names Python keywords.
    """

    cli: str | None = None


class ConfigError(StewardError, ValueError):
    """The runtime was set up or called with something malformed: fix the call and retry.

    ``cli``: the message worded for the ``steward`` command (see StewardError)."""

    def __init__(self, message: str, *, cli: str | None = None) -> None:
        super().__init__(message)
        self.cli = cli


class ThreadAccessDenied(StewardError, PermissionError):
    """The principal may not touch this thread (another tenant, or a role the rule lacks).

    When the rule refused a principal of another tenant, ``tenant`` is the thread's tenant and
    ``principal_id``/``principal_tenant`` name who was refused (``foreign`` is then True), and
    ``need`` what was asked (``read``, ``write``, ``admin``): such refusals are audited in the
    thread's tenant's access chain (``steward.audit.refusals``)."""

    def __init__(self, message: str, *, thread_id: str | None = None,
                 cli: str | None = None, tenant: str | None = None,
                 principal_id: str | None = None, principal_tenant: str | None = None,
                 need: str | None = None) -> None:
        super().__init__(message)
        self.thread_id = thread_id
        self.cli = cli
        self.tenant = tenant
        self.principal_id = principal_id
        self.principal_tenant = principal_tenant
        self.need = need

    @property
    def foreign(self) -> bool:
        """Whether a principal of another tenant than the thread's was refused."""
        return (self.tenant is not None and self.principal_id is not None
                and self.principal_tenant is not None and self.principal_tenant != self.tenant)


class TokenInvalid(StewardError, PermissionError):
    """A request's bearer token is missing, malformed or fails verification (HTTP 401): send
    a token that the deployment's key verifies and that names a principal."""


class ThreadBusy(StewardError, RuntimeError):
    """Another run holds the thread's lease; retry after it ends or its lease expires."""

    def __init__(
        self, message: str, *, thread_id: str | None = None, expires_in: float | None = None
    ) -> None:
        super().__init__(message)
        self.thread_id = thread_id
        self.expires_in = expires_in


class PolicyDenied(StewardError, PermissionError):
    """A policy forbade the requested action; ``decision`` is the Decision that did."""

    def __init__(self, message: str, *, decision: object = None) -> None:
        super().__init__(message)
        self.decision = decision


class ApprovalInvalid(StewardError, ValueError):
    """A resume did not carry a valid approval for the pending request; ``malformed`` when
    the payload itself was wrong (rather than who sent it, or when). ``rule`` names the rule
    the vote broke, as the audit trail records it: ``four_eyes`` (the requester's own
    request), ``role``, ``tenant``, ``second_vote``, ``expired``, ``no_principal``, ``quorum``,
    ``edit`` (an edit the policy refuses), ``malformed``."""

    def __init__(self, message: str, *, malformed: bool = False,
                 rule: str | None = None) -> None:
        super().__init__(message)
        self.malformed = malformed
        self.rule = rule or ("malformed" if malformed else None)


class EffectConflict(StewardError, RuntimeError):
    """A node that re-ran called a recorded side effect with other arguments (or another
    function) at the same place: replaying the old result, or acting again, would both be
    wrong."""


class MemoryAccessDenied(StewardError, PermissionError):
    """A principal reached for memories outside its tenant or a space it may not use."""


class MemoryRefused(StewardError, ValueError):
    """A memory write the runtime's memory rules refuse (a purpose that is never stored, a
    category such as card numbers, no purpose at all); nothing was written."""


class AuditTampered(StewardError):
    """The audit hash chain of a thread does not verify; ``thread_id`` and ``seq`` name the
    first event that does not fit, when one does (a cut tail has none)."""

    def __init__(self, message: str, *, thread_id: str | None = None,
                 seq: int | None = None) -> None:
        super().__init__(message)
        self.thread_id = thread_id
        self.seq = seq


class PayloadCorrupted(StewardError):
    """A stored payload failed authentication: it was altered, or written without encryption."""


class DataKeyDestroyed(PayloadCorrupted):
    """A payload sealed under a per-thread (or per-subject) data key whose key no longer
    exists: deleting the thread or erasing the person destroyed it (crypto-shredding), so
    this copy of the payload -- a leftover row, a restored backup of the data -- can never be
    read again."""


class StorageError(StewardError):
    """The database failed underneath Steward (connection lost, disk full, ...)."""
