"""``steward approvals``: what a principal may approve, and votes that resume the thread."""

from __future__ import annotations

import contextlib
import json
from typing import Annotated, Any

import typer
from langgraph.types import Command
from rich.text import Text

import steward
from steward.cli.options import (
    DEFAULT_DB,
    DEFAULT_ROLES,
    AsOption,
    DbOption,
    JsonOption,
    RolesOption,
    acting_as,
    console,
    open_runtime,
    print_data,
)
from steward.cli.run import invoke, run_result, workflow_of
from steward.errors import ConfigError
from steward.examples import WORKFLOWS
from steward.identity import Principal

__all__ = ["app"]

app = typer.Typer(no_args_is_help=True, help="Approvals: list, approve, reject.")

CommentOption = Annotated[str | None, typer.Option("--comment", help="Why, kept with the vote.")]
EditOption = Annotated[str | None, typer.Option(
    "--edit", help="Approve these arguments instead, as JSON (merged over the request's): "
                   "the policy judges them again.")]
StandingOption = Annotated[str | None, typer.Option(
    "--standing", help="USES/SECONDS: later calls of the same action on the thread that would "
                       "ask the same roles pass without asking, USES times within SECONDS.")]

SubmitOption = Annotated[bool, typer.Option(
    "--submit", help="Check the vote and queue the resume for `steward worker` (PostgreSQL; "
                     "graphs from $STEWARD_GRAPHS or ./langgraph.json); returns at once.")]


@app.command("list")
def approvals_list(who: AsOption, db: DbOption = DEFAULT_DB, roles: RolesOption = DEFAULT_ROLES,
                   as_json: JsonOption = False) -> None:
    """What the principal may approve now, oldest first; each request's id is printed whole
    (``approvals approve`` takes it, or any unique start of it)."""
    principal = acting_as(who)
    with open_runtime(db, roles) as rt:
        pending = rt.approvals.pending(principal)
    if as_json:
        print_data(pending, True)
        return
    if not pending:
        console.print(f"nothing for {principal.id} to approve")
    for p in pending:
        console.print(Text.assemble((p["id"], "bold"),
                                    f"  {p['action']} on thread {p['thread_id']}"),
                      soft_wrap=True)
        console.print(f"    args {json.dumps(p['args'], default=str)}; asked by "
                      f"{p['requested_by']}; votes {len(p['votes'])}/{p['quorum']}; "
                      f"expires {p['expires_at'] or 'never'}", soft_wrap=True)
        if p["reasons"]:
            console.print(f"    why: {'; '.join(map(str, p['reasons']))}", soft_wrap=True)


@app.command("approve")
def approvals_approve(request: str, who: AsOption, comment: CommentOption = None,
                      edit: EditOption = None, standing: StandingOption = None,
                      db: DbOption = DEFAULT_DB, roles: RolesOption = DEFAULT_ROLES,
                      as_json: JsonOption = False, submit: SubmitOption = False) -> None:
    """Approve a pending request (resumes its thread as the principal; with --submit, a
    `steward worker` does, and the command returns at once)."""
    _vote(request, "approve", who, comment, db, roles, as_json, edit=edit,
          standing=_standing(standing), submit=submit)


@app.command("reject")
def approvals_reject(request: str, who: AsOption, comment: CommentOption = None,
                     db: DbOption = DEFAULT_DB, roles: RolesOption = DEFAULT_ROLES,
                     as_json: JsonOption = False, submit: SubmitOption = False) -> None:
    """Reject a pending request (resumes its thread as the principal; with --submit, a
    `steward worker` does)."""
    _vote(request, "reject", who, comment, db, roles, as_json, submit=submit)


@app.command("standing")
def approvals_standing(thread: str, who: AsOption, db: DbOption = DEFAULT_DB,
                       roles: RolesOption = DEFAULT_ROLES, as_json: JsonOption = False) -> None:
    """A thread's standing approvals, with the uses left."""
    principal = acting_as(who)
    with open_runtime(db, roles) as rt:
        grants = rt.approvals.standing(thread, principal)
    if as_json:
        print_data(grants, True)
        return
    if not grants:
        console.print(f"no standing approvals on thread {thread}")
    for g in grants:
        state = f"revoked by {g['revoked_by']}" if g["revoked_at"] else \
            f"{g['uses_left']} of {g['uses']} uses left until {g['expires_at']}"
        console.print(f"{g['id']}  {g['action']} for {g['roles']}, granted by "
                      f"{g['granted_by']}: {state}", soft_wrap=True)


@app.command("revoke")
def approvals_revoke(standing_id: str, who: AsOption, db: DbOption = DEFAULT_DB,
                     roles: RolesOption = DEFAULT_ROLES, as_json: JsonOption = False) -> None:
    """End a standing approval now (its granter, a holder of its roles, or a thread writer)."""
    principal = acting_as(who)
    with open_runtime(db, roles) as rt:
        grant = rt.approvals.revoke(standing_id, principal)
    if as_json:
        print_data(grant, True)
    else:
        console.print(f"revoked {grant['id']} ({grant['action']} on thread "
                      f"{grant['thread_id']}, {grant['used']} of {grant['uses']} used)")


def _standing(spec: str | None) -> dict[str, float] | None:
    if spec is None:
        return None
    uses, slash, seconds = spec.partition("/")
    try:
        if not slash:
            raise ValueError(spec)
        return {"uses": int(uses), "expires_in": float(seconds)}
    except ValueError:
        raise ConfigError(f"--standing {spec!r}: write USES/SECONDS, e.g. --standing 3/86400 "
                          "(three more calls within a day).") from None


def _edited(spec: str, request: dict[str, Any]) -> dict[str, Any]:
    try:
        edited = json.loads(spec)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"--edit {spec!r} is not valid JSON ({exc.msg}): write the "
                          "arguments to change, e.g. --edit '{\"amount\": \"90.00\"}'.") from None
    if not isinstance(edited, dict):
        raise ConfigError(f"--edit takes a JSON object of arguments, got {spec!r}.")
    return {**(request.get("args") or {}), **edited}


def _payload(decision: str, comment: str | None, edit: str | None,
             standing: dict[str, float] | None, found: dict[str, Any]) -> Any:
    payload: Any = {"decision": decision}
    if comment:
        payload["comment"] = comment
    if standing is not None:
        payload["standing"] = standing
    if edit is not None:
        if comment or standing:
            raise ConfigError("--edit approves other arguments alone: drop --comment and "
                              "--standing with it.")
        payload = {"decisions": [{"type": "edit", "edited_action": {
            "name": found["action"], "args": _edited(edit, found)}}]}
    return payload


def _vote(given: str, decision: str, who: str, comment: str | None, db: str, roles: str,
          as_json: bool, *, edit: str | None = None,
          standing: dict[str, float] | None = None, submit: bool = False) -> None:
    """Resume the thread of the request ``given`` names with the principal's vote, under the
    policy of the workflow ``steward run`` started it with; with ``submit``, queue the resume
    for ``steward worker`` (the graph of the same name in langgraph.json) instead."""
    principal = acting_as(who)
    with open_runtime(db, roles) as rt:
        found = _open_request(rt, given, principal, decision)
        request, thread = found["id"], found["thread_id"]
        spec = workflow_of(rt, thread, principal)
        if spec is None:
            raise ConfigError(f"thread {thread!r} was not started by `steward run`: resume it "
                              "from the application that runs its graph.")
        payload = _payload(decision, comment, edit, standing, found)
        if submit:
            name = next(n for n, w in WORKFLOWS.items() if w is spec)
            handle = rt.submit(name, thread, Command(resume=payload), principal)
    if submit:
        queued = {"request": request, "thread_id": thread, "decision": decision,
                  "submitted": True, "job_id": handle.job_id}
        if as_json:
            print_data(queued, True)
        else:
            console.print(f"{decision} of {request} on thread {thread} submitted as job "
                          f"{handle.job_id}: a `steward worker` runs the rest", soft_wrap=True)
        return
    with open_runtime(db, roles, policy=spec.policy()) as rt:
        graph = spec.build().compile(checkpointer=rt.checkpointer, store=rt.store)
        out = invoke(graph, Command(resume=payload), rt.config(thread, principal))
    result = run_result(out, request=request, thread_id=thread, decision=decision)
    if as_json:
        print_data(result, True)
    else:
        done = {"approve": "approved", "reject": "rejected"}[decision]
        reason = result["reason"]
        console.print(f"{done} {request} on thread {thread}: {result['status']}"
                      + (f" — {reason}" if reason else ""), soft_wrap=True)


def _audit_refusal(rt: steward.Runtime, request: dict[str, Any], principal: Principal,
                   decision: str) -> None:
    """Record a vote the approval rules refuse in the thread's trail, as the node records it
    (``approval_invalid`` with its rule: reports count refused self-approvals); the command
    then says why in its own words."""
    with contextlib.suppress(steward.ApprovalInvalid, steward.ThreadAccessDenied):
        rt.approvals.check_resume(request["thread_id"], principal, {"decision": decision})


def _open_request(rt: steward.Runtime, given: str, principal: Principal,
                  decision: str) -> dict[str, Any]:
    """The open request ``given`` (an id, or the start of one) names that ``principal`` may
    vote on; otherwise a ConfigError saying why not."""
    found = rt.approvals.find(given, principal)
    exact = [r for r in found if r["id"] == given]
    pending = [r for r in found if r["status"] == "pending"]
    matches = exact or pending or found
    if not matches:
        raise ConfigError(f"no approval request {given!r} in tenant {principal.tenant!r}: check "
                          "the id; `steward approvals list --as TENANT/ID:ROLE` shows what a "
                          "principal may approve.")
    if len(matches) > 1:
        kind = "open requests" if matches is pending else "requests"
        more = " (and more)" if len(found) >= 20 else ""
        raise ConfigError(f"{given!r} names {len(matches)} {kind}{more}: "
                          f"{', '.join(r['id'] for r in matches)}; give more of the id.")
    request = matches[0]
    rid, needs = request["id"], request["required_roles"]
    if request["status"] != "pending":
        then = f"; it was escalated to {request['escalated_to']}" \
            if request["escalated_to"] else ""
        raise ConfigError(f"request {rid} is already {request['status']}: there is nothing to "
                          f"vote on{then}.")
    if request["requested_by"] == principal.id:
        _audit_refusal(rt, request, principal, decision)
        raise ConfigError(f"{principal.id!r} asked for request {rid} and cannot {decision} "
                          "their own request: the four-eyes rule. Another person holding one of "
                          f"the roles {needs} must vote on it.")
    if not set(needs) & principal.roles:
        raise ConfigError(f"request {rid} needs one of the roles {needs}; {principal.id!r} "
                          f"holds {sorted(principal.roles)}: act as an approver holding one "
                          f"(--as TENANT/ID:{needs[0]}).")
    if any(v["voter"] == principal.id for v in request["votes"]):
        _audit_refusal(rt, request, principal, decision)
        raise ConfigError(f"{principal.id!r} already voted on request {rid}; each approver "
                          f"votes once (it has {len(request['votes'])} of {request['quorum']} "
                          "votes).")
    if not any(p["id"] == rid for p in rt.approvals.pending(principal)):
        raise ConfigError(f"request {rid} expired at {request['expires_at']} and can no longer "
                          "be voted on; `steward sweep` closes it as its on_expire says.")
    return request
