"""``steward demo``: the refund story told end to end, across three processes.

``demo`` runs in this process and starts the others as the hidden ``demo-resume`` command:
one that approves and is killed right after the refund, one that finishes the thread.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from typing import Annotated, Any

import typer
from langgraph.types import Command
from rich.console import Console
from rich.markup import escape
from rich.panel import Panel
from rich.table import Table

import steward
from steward.cli.options import DEFAULT_DB, DbOption
from steward.errors import StewardError
from steward.examples.refund import (
    compile_refund_graph,
    outbox,
    payments,
    refund_policy,
    reset_records,
    ticket,
)
from steward.identity import Principal
from steward.storage.url import mask

__all__ = ["demo", "demo_resume"]

console = Console()  # the story is told with rich markup; its data is escaped

ALICE = Principal(id="alice@acme.test", tenant="acme", roles=frozenset({"support"}))
BOB = Principal(id="bob@acme.test", tenant="acme", roles=frozenset({"manager"}))
MALLORY = Principal(id="mallory@globex.test", tenant="globex", roles=frozenset({"manager"}))
DEMO_ROLES = {"manager": "write", "auditor": "read"}
DEMO_LEASE_TTL = 1.0  # a killed demo process's lease runs out quickly


def demo(db: DbOption = DEFAULT_DB) -> None:
    """Run the refund story: Alice asks, the thread pauses, Bob approves from another process,
    that process crashes right after the refund, a third one finishes without paying twice."""
    thread_id = f"T-{uuid.uuid4().hex[:8]}"
    console.print(Panel.fit(f"Steward demo on [bold]{mask(db)}"
                            f"[/bold], thread [bold]{thread_id}[/bold]"))
    reset_records()  # the local system of record: order 98765 paid, nothing refunded yet
    with steward.open(db, thread_roles=DEMO_ROLES, policy=refund_policy()) as rt:
        graph = compile_refund_graph(rt.checkpointer, rt.store)
        console.print(f"[bold]1.[/bold] {ALICE.id} (support) asks to refund $120.00 "
                      "on order 98765")
        graph.invoke({"order_id": "98765", "amount": "120.00"}, rt.config(thread_id, ALICE))
        state = graph.get_state(rt.config(thread_id, ALICE))
        request = state.interrupts[0].value
        console.print(f"   the policy says: {escape('; '.join(request['reasons']))}")
        console.print(f"   paused in {list(state.next)}: approval request {request['id']} "
                      f"waits for {request['required_roles']}")
        info = rt.checkpointer.thread_info(thread_id, ALICE) or {}
        console.print(f"   thread: tenant={info.get('tenant')} owner={info.get('owner')} "
                      f"status={info.get('status')}")
        console.print(f"   {ALICE.id} tries to approve her own request")
        try:
            graph.invoke(Command(resume={"decision": "approve"}), rt.config(thread_id, ALICE))
        except steward.ApprovalInvalid as exc:
            console.print(f"   refused: [red]{escape(str(exc))}[/red]")
        else:  # pragma: no cover - the demo's own check
            raise StewardError("the requester was allowed to approve her own refund")

    console.print(f"[bold]2.[/bold] this process exits; a second process resumes as {BOB.id} "
                  "— and crashes (SIGKILL) right after the refund went out")
    before = len(payments("98765"))  # the provider's ledger may hold earlier demos' refunds
    crashed = _child(db, thread_id, "approve", crash=True)
    if crashed.returncode != -signal.SIGKILL:
        raise StewardError(f"the crashing process ended with exit code {crashed.returncode}")
    console.print(f"   refunds the provider executed: {len(payments('98765')) - before}")
    console.print("[bold]3.[/bold] a third process picks the thread up where it stopped")
    again = _child(db, thread_id, "continue")
    if again.returncode != 0:
        raise StewardError(f"the resuming process failed with exit code {again.returncode}")
    executed = payments("98765")[before:]
    console.print(f"   refunds the provider executed: {len(executed)} "
                  f"({', '.join(txn for txn, _, _ in executed)}) — the node ran again, the "
                  "refund did not")
    if len(executed) != 1:  # pragma: no cover - the demo's own check
        raise StewardError("the refund was issued more than once")

    with steward.open(db, thread_roles=DEMO_ROLES, policy=refund_policy()) as rt:
        graph = compile_refund_graph(rt.checkpointer, rt.store)
        console.print(f"[bold]4.[/bold] {MALLORY.id} of another tenant tries to read the thread")
        try:
            graph.get_state(rt.config(thread_id, MALLORY))
        except steward.ThreadAccessDenied as exc:
            console.print(f"   refused: [red]{escape(str(exc))}[/red]")
        else:  # pragma: no cover - the demo's own check
            raise StewardError("the access rule let another tenant read the thread")
        final = graph.get_state(rt.config(thread_id, ALICE))
        console.print("[bold]5.[/bold] the thread's working context, as Alice sees it")
        table = Table("checkpoint", "step", "source", "written by")
        history = list(graph.get_state_history(rt.config(thread_id, ALICE)))
        for snap in reversed(history):
            md: dict[str, Any] = dict(snap.metadata or {})
            table.add_row(str(snap.config["configurable"]["checkpoint_id"])[-12:],
                          str(md.get("step")), str(md.get("source")),
                          str(md.get("principal_id", "")))
        console.print(table)
        for event in final.values.get("events", []):
            console.print(f"   • {escape(str(event))}")
        for record in rt.approvals.history(thread_id, ALICE):
            votes = ", ".join(f"{v['decision']} by {v['voter']} ({v['role']})"
                              for v in record["votes"])
            console.print(f"   approval {record['id']}: {record['status']} — {escape(votes)}")
        console.print(f"   receipt: [bold green]{final.values.get('receipt')}[/bold green]")
        mails = outbox(str(final.values.get("customer")))
        status = ticket("98765")
        console.print(f"   e-mails to the customer: {len(mails)}; ticket: "
                      f"{status[0] if status else '-'} ({status[1] if status else ''})")
        if len(mails) != 1:  # pragma: no cover - the demo's own check
            raise StewardError("the receipt was e-mailed more than once")
        console.print("[bold]6.[/bold] the audit timeline (hash-chained; "
                      f"{rt.audit.verify(thread_id)} events verified)")
        for event in rt.audit.events(thread_id, ALICE):
            if event.kind in ("run_start", "resume", "approval_request",
                              "approval_invalid", "approval_vote", "effect_call",
                              "effect_replay", "run_paused", "run_end"):
                console.print(f"   {event.seq:>3} {event.kind:<17} {event.principal_id or '-':<17} "
                              f"{event.node or '-'}")


def _child(db: str, thread_id: str, mode: str, *, crash: bool = False,
           ) -> subprocess.CompletedProcess[bytes]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    if crash:
        env["STEWARD_DEMO_CRASH"] = "after-refund"
    return subprocess.run([sys.executable, "-m", "steward.cli", "demo-resume", "--db", db,
                           "--thread", thread_id, "--mode", mode], env=env, check=False)


def demo_resume(thread: Annotated[str, typer.Option("--thread")], db: DbOption = DEFAULT_DB,
                mode: Annotated[str, typer.Option("--mode")] = "approve") -> None:
    """The demo's other processes: Bob approves the pending refund, or (``continue``) picks
    up a thread whose process was killed."""
    with steward.open(db, thread_roles=DEMO_ROLES, policy=refund_policy(),
                      lease_ttl=DEMO_LEASE_TTL) as rt:
        graph = compile_refund_graph(rt.checkpointer, rt.store)
        config = rt.config(thread, BOB)
        if mode == "approve":
            [pending] = rt.approvals.pending(BOB)
            console.print(f"   \\[pid {os.getpid()}] {BOB.id} sees the pending request: "
                          f"{pending['action']} {escape(str(pending['args']))} asked by "
                          f"{pending['requested_by']}, and approves it")
            payload: Any = Command(resume={"decision": "approve",
                                           "comment": "customer is a regular"})
        else:
            payload = None
        while True:
            try:
                result = graph.invoke(payload, config)
                break
            except steward.ThreadBusy as exc:  # the killed process's lease runs out first
                time.sleep(min(exc.expires_in or 0.2, 0.5))
        console.print(f"   \\[pid {os.getpid()}] the refund is done: {result['receipt']}")
