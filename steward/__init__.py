"""Steward: a stateful runtime for LangGraph agents.

Users keep writing plain LangGraph; Steward supplies the checkpointer that knows who owns each
thread, and (in later parts) the guardrails, the effect ledger and the audit trail.
"""

from steward.errors import (
    ApprovalInvalid,
    AuditTampered,
    ConfigError,
    PayloadCorrupted,
    PolicyDenied,
    StewardError,
    StorageError,
    ThreadAccessDenied,
    ThreadBusy,
)
from steward.identity import Principal
from steward.runtime import Runtime, aopen, open

__all__ = [
    "ApprovalInvalid",
    "AuditTampered",
    "ConfigError",
    "PayloadCorrupted",
    "PolicyDenied",
    "Principal",
    "Runtime",
    "StewardError",
    "StorageError",
    "ThreadAccessDenied",
    "ThreadBusy",
    "aopen",
    "open",
]

__version__ = "0.1.0"
