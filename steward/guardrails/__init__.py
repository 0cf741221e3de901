"""Guardrails: Cedar policies, approval gates and redaction (a part above the saver).

- ``policy``: :class:`Policy` (Cedar text or file) and the pure evaluator; ``decision``: the
  :class:`Decision` it returns and the :class:`Approval` an approval ends with;
- ``guard``: ``steward.guard`` inside a node; ``request``: ``steward.request_approval``;
- ``inbox``: ``rt.approvals`` (what an approver may vote on, a thread's history, expiry, a
  resume checked before a run);
- ``resumes``: the saver's write filter (resume values used once, refused tasks store nothing);
- ``redact``: :class:`Redactor`, which masks personal data in what leaves the working context;
- ``records``: the tables behind them (``schema``: their migrations).
"""
