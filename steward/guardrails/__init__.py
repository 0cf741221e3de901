"""Guardrails: Cedar policies, approval gates and redaction.

- ``policy``: :class:`Policy` (Cedar text or file) and the pure evaluator; ``decision``: the
  :class:`Decision` it returns and the :class:`Approval` an approval ends with;
- ``guard``: ``steward.guard`` inside a node; ``approval``: ``steward.request_approval``;
- ``approvals``: ``rt.approvals`` (pending requests, a thread's history, expiry);
- ``redact``: :class:`Redactor`, which masks personal data in what leaves the working context;
- ``_records``: the tables behind them; ``_node``: how a node-level call finds its run.
"""
