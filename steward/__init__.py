"""Steward: a stateful runtime for LangGraph agents.

Users keep writing plain LangGraph; Steward supplies the checkpointer that knows who owns each
thread, the guardrails that check policies and wait for approvals, the effect ledger that runs
each side effect once, the audit trail, and long-term memory that forgets on request.
"""

from steward.errors import (
    ApprovalInvalid,
    AuditTampered,
    ConfigError,
    DataKeyDestroyed,
    EffectConflict,
    MemoryAccessDenied,
    MemoryRefused,
    PayloadCorrupted,
    PolicyDenied,
    StewardError,
    StorageError,
    ThreadAccessDenied,
    ThreadBusy,
    TokenInvalid,
)
from steward.guardrails.decision import Approval, Decision
from steward.guardrails.guard import aguard, guard
from steward.guardrails.policy import Policy
from steward.guardrails.redact import Redactor
from steward.guardrails.request import Escalate, arequest_approval, request_approval
from steward.identity import Principal
from steward.memory import ErasureReceipt, MemoryRules
from steward.memory.subjects import aadd_subjects, add_subjects
from steward.nodes.effects import RETRY, effect
from steward.runtime import Runtime, aopen, open
from steward.storage.keys import DataKeyProvider, EnvKey, FileKey, KeyProvider, StaticKey
from steward.storage.kms import KmsKeys

__all__ = [
    "RETRY",
    "Approval",
    "ApprovalInvalid",
    "AuditTampered",
    "ConfigError",
    "DataKeyDestroyed",
    "DataKeyProvider",
    "Decision",
    "EffectConflict",
    "EnvKey",
    "ErasureReceipt",
    "Escalate",
    "FileKey",
    "KeyProvider",
    "KmsKeys",
    "MemoryAccessDenied",
    "MemoryRefused",
    "MemoryRules",
    "PayloadCorrupted",
    "Policy",
    "PolicyDenied",
    "Principal",
    "Redactor",
    "Runtime",
    "StaticKey",
    "StewardError",
    "StorageError",
    "ThreadAccessDenied",
    "ThreadBusy",
    "TokenInvalid",
    "aadd_subjects",
    "add_subjects",
    "aguard",
    "aopen",
    "arequest_approval",
    "effect",
    "guard",
    "open",
    "request_approval",
]

__version__ = "0.1.0"
