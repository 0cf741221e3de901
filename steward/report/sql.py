"""The SQL every part of a report shares: the scope's threads, and JSON fields of payloads in
each dialect.

Every report statement starts with the ``scope`` common table expression: the ids of the
tenant's threads that the report covers (started in the period, of the workflow or the thread
asked for), each with its ``workflow``: the name its first run recorded (``run_start``'s
payload: ``steward run``'s workflow, the LangGraph server's graph id, or the graph's name).
The statements join it to the parts' own tables (threads, audit events, approvals and votes,
guarded actions, the effect ledger) through their keys, and read JSON payload fields with
``text``/``num`` (``json_extract`` on SQLite, ``#>>`` on PostgreSQL), so that both databases
answer the same statements with the same figures.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from steward.report.scorecard import Scope

__all__ = ["ReportSql"]


@dataclass(frozen=True)
class ReportSql:
    dialect: str

    def text(self, column: str, *path: str) -> str:
        """A JSON field of ``column`` as text (numbers as numbers on SQLite); NULL if absent."""
        if self.dialect == "sqlite":
            return f"json_extract({column}, '$.{'.'.join(path)}')"
        return f"({column} #>> '{{{','.join(path)}}}')"

    def num(self, column: str, *path: str) -> str:
        """A numeric JSON field of ``column``; NULL if absent."""
        if self.dialect == "sqlite":
            return self.text(column, *path)
        return f"({column} #>> '{{{','.join(path)}}}')::float8"

    def workflow(self, thread: str) -> str:
        """The workflow of the thread ``thread`` (a column), as its first named run recorded."""
        name = self.text("w.payload", "workflow")
        return (f"(SELECT {name} FROM steward_audit w WHERE w.thread_id = {thread} AND "
                f"w.kind = 'run_start' AND {name} IS NOT NULL ORDER BY w.seq LIMIT 1)")

    def scope(self, scope: Scope) -> tuple[str, list[Any]]:
        """``WITH scope AS (...)`` (thread_id, workflow) and its parameters."""
        where: list[str] = ["t.tenant = ?"]
        params: list[Any] = [scope.tenant]
        if scope.thread is not None:
            where.append("t.thread_id = ?")
            params.append(scope.thread)
        if scope.since is not None:
            where.append("t.created_at >= ?")
            params.append(scope.since)
        if scope.until is not None:
            where.append("t.created_at < ?")
            params.append(scope.until)
        if scope.workflow is not None:
            where.append(f"{self.workflow('t.thread_id')} = ?")
            params.append(scope.workflow)
        return (f"WITH scope AS (SELECT t.thread_id, {self.workflow('t.thread_id')} AS workflow "
                f"FROM steward_threads t WHERE {' AND '.join(where)})", params)

    def workflows(self) -> str:
        """The workflows a tenant's trail names (parameter: the tenant)."""
        name = self.text("a.payload", "workflow")
        return (f"SELECT DISTINCT {name} FROM steward_threads t JOIN steward_audit a ON "
                f"a.thread_id = t.thread_id WHERE t.tenant = ? AND a.kind = 'run_start' AND "
                f"{name} IS NOT NULL")
