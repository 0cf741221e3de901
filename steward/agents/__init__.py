"""Steward for LangChain agents (``langchain.agents.create_agent``), from the ``agents`` extra:
``pip install 'langgraph-steward[agents]'``.

- ``GuardedToolsMiddleware``: every tool call the model makes through the runtime's policy,
  approvals, effect ledger and audit trail, as the run's principal.

``import steward`` does not need LangChain's agents; this package does, and says so.
"""

from steward.errors import ConfigError

try:
    import langchain.agents  # noqa: F401
except ImportError as exc:
    raise ConfigError("steward.agents needs LangChain v1 (langchain.agents.create_agent): "
                      "pip install 'langgraph-steward[agents]'.") from exc

from steward.agents.middleware import GuardedToolsMiddleware

__all__ = ["GuardedToolsMiddleware"]
