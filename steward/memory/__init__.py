"""Long-term memory scoped by identity (issue #8): ``rt.store`` is a ``MemoryStore``.

- ``space``: namespaces ``(tenant, "user:<id>" | "agent:<id>" | "team:<name>", ...)`` and who
  may reach them;
- ``rules``: ``MemoryRules``, what may enter memory and for how long;
- ``store``: the store itself (a LangGraph ``BaseStore``, sync and async);
- ``vectors``: embeddings and the exact cosine scan of semantic recall;
- ``pgvector``: the vector column and HNSW indexes where the PostgreSQL server has pgvector;
- ``subjects``: ``steward.add_subjects``, the people a thread holds personal data about;
- ``erase``: ``rt.erase(subject, by=...)`` and its receipt.
"""

from steward.memory.erase import ErasureReceipt
from steward.memory.rules import DEFAULT_PURPOSES, MemoryRules
from steward.memory.space import agent_space, team_space, user_space
from steward.memory.store import MemoryStore
from steward.memory.vectors import MiniLMEmbeddings

__all__ = ["DEFAULT_PURPOSES", "ErasureReceipt", "MemoryRules", "MemoryStore",
           "MiniLMEmbeddings", "agent_space", "team_space", "user_space"]
