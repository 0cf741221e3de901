"""``steward.add_subjects``: a node says whose personal data its thread now holds.

A refund thread holds its customer's e-mail although the customer never runs it; naming the
customer as a *subject* of the thread lets ``rt.erase(customer)`` reach the thread's working
context too. Subjects known when a run starts go in ``rt.config(..., subjects=[...])``; those
a node discovers (the order's customer) are added here. Adding one twice is a no-op, so a node
that re-runs adds nothing new.
"""

from __future__ import annotations

from steward.context import current

__all__ = ["aadd_subjects", "add_subjects"]


def add_subjects(*subjects: str) -> None:
    """Record, inside a node, the people whose personal data the thread holds."""
    ctx = current("add_subjects", need_principal=False)
    ctx.runtime.checkpointer.add_subjects(ctx.thread_id, ctx.principal, subjects)


async def aadd_subjects(*subjects: str) -> None:
    """The async twin of :func:`add_subjects`, for async nodes."""
    ctx = current("aadd_subjects", need_principal=False)
    await ctx.runtime.checkpointer.aadd_subjects(ctx.thread_id, ctx.principal, subjects)
