"""The operator's commands of ``steward``: run a workflow, look at threads, approve, audit.

Every command opens the database named by ``--db`` (or ``$STEWARD_DB``; default the embedded
SQLite file) and acts as the principal named by ``--as`` (or ``$STEWARD_AS``), so the thread
access rule applies exactly as it does in code. ``--json`` prints machine-readable output.
A principal is written ``TENANT/ID[:ROLE,ROLE...]`` (e.g. ``acme/bob@acme.test:manager``) or
as JSON (``{"id": ..., "tenant": ..., "roles": [...]}``). Commands that read (or vote on what
is there) refuse a SQLite path with no database rather than create an empty one. Output is
printed without rich markup, so brackets in data and messages stay as they are.
"""

from __future__ import annotations

import itertools
import json
import os
import sys
import time
import uuid
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from langgraph.types import Command
from rich.console import Console
from rich.table import Table
from rich.text import Text

import steward
from steward.errors import ConfigError
from steward.identity import Principal
from steward.storage.url import parse_url

console = Console(markup=False)  # data and messages may hold [brackets]: print them as they are

DEFAULT_DB = "sqlite:///steward-demo.db"
DEFAULT_ROLES = (
    "manager=write,security=write,compliance-officer=write,cfo=write,controller=write,"
    "auditor=read,ops=admin")

DbOption = Annotated[str, typer.Option("--db", envvar="STEWARD_DB",
                                       help="Database URL (sqlite:///..., postgresql://...).")]
AsOption = Annotated[str, typer.Option("--as", envvar="STEWARD_AS",
                                       help="Act as TENANT/ID[:ROLE,...] or a JSON principal.")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")]
RolesOption = Annotated[str, typer.Option(
    "--thread-roles", envvar="STEWARD_THREAD_ROLES",
    help="Which roles reach others' threads: ROLE=read|write|admin,...")]


def parse_principal(spec: str) -> Principal:
    """``TENANT/ID[:ROLE,...]`` or a JSON object."""
    text = spec.strip()
    if text.startswith("{"):
        try:
            return Principal.parse(json.loads(text))
        except json.JSONDecodeError as exc:
            raise ConfigError(f"--as {spec!r} is not valid JSON: {exc.msg}.") from exc
    who, _, roles = text.partition(":")
    tenant, slash, ident = who.partition("/")
    if not slash or not tenant or not ident:
        raise ConfigError(f"--as {spec!r} names no tenant: write TENANT/ID[:ROLE,...], e.g. "
                          "acme/bob@acme.test:manager.")
    return Principal.parse({"id": ident, "tenant": tenant,
                            "roles": [r for r in roles.split(",") if r]})


def parse_roles(spec: str) -> dict[str, str]:
    out = {}
    for part in filter(None, (p.strip() for p in spec.split(","))):
        role, eq, level = part.partition("=")
        if not eq or not role or level not in ("read", "write", "admin"):
            raise ConfigError(f"--thread-roles {spec!r}: write ROLE=read|write|admin, ...")
        out[role] = level
    return out


def existing(db: str) -> str:
    """``db``, once it is known not to name a missing SQLite file: a command that reads must
    not create an empty database where a path was mistyped. PostgreSQL URLs are not checked
    here (a missing database fails to connect)."""
    url = parse_url(db)
    if url.backend == "sqlite" and url.target != ":memory:" and not Path(url.target).exists():
        raise ConfigError(f"no Steward database at {os.path.abspath(url.target)}: check --db "
                          "(or $STEWARD_DB); `steward run` and `steward demo` create one.")
    return db


@contextmanager
def _runtime(db: str, roles: str, policy: Any = None) -> Iterator[steward.Runtime]:
    """A runtime on an existing database, with the thread roles ``--thread-roles`` grants."""
    grants = parse_roles(roles)
    with steward.open(existing(db), thread_roles=grants, policy=policy) as rt:
        yield rt


def _print(data: Any, as_json: bool, table: Table | None = None) -> None:
    if as_json:
        print(json.dumps(data, indent=2, default=str, sort_keys=True))
    elif table is not None:
        console.print(table)
    else:
        console.print(data)


def _table(first: tuple[str, list[str]], *others: str) -> Table:
    """A table whose first column (ids a later command takes) is never cut or folded."""
    name, values = first
    table = Table()
    table.add_column(name, no_wrap=True, min_width=max(map(len, [name, *values])))
    for other in others:
        table.add_column(other)
    return table


def _ended(out: Any) -> tuple[str, str | None, list[Any]]:
    """How a run stopped: (status, reason, what it waits on). The status is ``waiting``, the
    graph's ``outcome`` status (``refunded``, ``rejected``, ``failed``, ...) or ``done``."""
    if not isinstance(out, dict):
        return "done", None, []
    waiting = [i.value for i in out.get("__interrupt__", [])]
    if waiting:
        return "waiting", None, waiting
    outcome = out.get("outcome")
    outcome = outcome if isinstance(outcome, dict) else {}
    reason = outcome.get("reason")
    return str(outcome.get("status", "done")), str(reason) if reason else None, []


def _when(ts: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts)) if ts else "-"


# -- run -----------------------------------------------------------------------------------------


def run(workflow: Annotated[str, typer.Argument(help="A workflow name (see --help).")],
        who: AsOption, input: Annotated[str | None, typer.Option(
            "--input", help="JSON input naming at least the workflow's required fields; "
            "without --input, the workflow's example input.", show_default=False)] = None,
        thread: Annotated[str | None, typer.Option("--thread", help="Thread id (new if "
                                                   "omitted).")] = None,
        db: DbOption = DEFAULT_DB, roles: RolesOption = DEFAULT_ROLES,
        model: Annotated[str | None, typer.Option(
            "--model", envvar="STEWARD_MODEL",
            help="Plan with a chat model: openai:<model> or bedrock:<model id>.")] = None,
        as_json: JsonOption = False) -> None:
    """Run a workflow on a new (or given) thread, as the principal; stops where it waits, and
    says how it ended (the outcome and its reason). Workflows and their required input:
    refund (order_id, amount), access (user_id), close (period), research (topic).
    Agent workflows (access, close) plan with ``--model`` when given, else offline."""
    from steward.graphs import WORKFLOWS

    if workflow not in WORKFLOWS:
        raise ConfigError(f"unknown workflow {workflow!r}; known: {', '.join(sorted(WORKFLOWS))}.")
    spec = WORKFLOWS[workflow]
    example = input is None
    if input is None:
        payload: Any = dict(spec.defaults)
    else:
        try:
            payload = json.loads(input)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"--input is not valid JSON: {exc.msg} at column {exc.colno}."
                              ) from exc
        if not isinstance(payload, dict):
            raise ConfigError("--input must be a JSON object, e.g. '{\"order_id\": \"98765\"}'.")
        missing = spec.missing(payload)
        if missing:
            sample = json.dumps({k: spec.defaults.get(k, "...") for k in spec.required})
            raise ConfigError(f"the {workflow} workflow needs {', '.join(spec.required)} in "
                              f"--input (missing: {', '.join(missing)}), e.g. --input '{sample}'.")
    principal = parse_principal(who)
    tid = thread or f"{workflow}-{uuid.uuid4().hex[:8]}"
    if model is not None and not spec.plans:
        raise ConfigError(f"the {workflow} workflow has a fixed flow; --model applies to the "
                          "agent workflows (access, close).")
    builder = spec.build(model=model) if model is not None else spec.build()
    with steward.open(db, thread_roles=parse_roles(roles), policy=spec.policy()) as rt:
        graph = builder.compile(checkpointer=rt.checkpointer, store=rt.store)
        config = rt.config(tid, principal)
        config["metadata"] = {"workflow": workflow}
        try:
            out = graph.invoke(spec.input(payload, workflow), config)
        except steward.PolicyDenied as exc:  # the policy forbade a step: the run ends there
            out = {"outcome": {"status": "denied", "reason": str(exc)}}
    status, reason, waiting = _ended(out)
    result = {"thread_id": tid, "workflow": workflow, "input": payload, "status": status,
              "reason": reason, "waiting_on": waiting,
              "values": {k: v for k, v in out.items() if k != "__interrupt__"}}
    if as_json:
        _print(result, True)
        return
    if example:
        console.print(f"input: {json.dumps(payload)} (the {workflow} workflow's example; "
                      "choose with --input)", soft_wrap=True)
    console.print(Text.assemble("thread ", (tid, "bold"), f" ({workflow}): {status}",
                                f" — {reason}" if reason else ""), soft_wrap=True)
    for request in waiting:
        console.print(f"  waits for {request.get('required_roles')}: {request.get('reasons')} "
                      f"(request {request.get('id')})", soft_wrap=True)


# -- threads -------------------------------------------------------------------------------------

threads_app = typer.Typer(no_args_is_help=True, help="Threads: list, show, history.")


@threads_app.command("list")
def threads_list(who: AsOption, status: Annotated[str | None, typer.Option(
        "--status", help="idle, running, interrupted or erased")] = None,
        limit: int = 50, db: DbOption = DEFAULT_DB, roles: RolesOption = DEFAULT_ROLES,
        as_json: JsonOption = False) -> None:
    """The threads the principal may read, newest first."""
    with _runtime(db, roles) as rt:
        rows = rt.checkpointer.list_threads(parse_principal(who), status=status, limit=limit)
    table = _table(("thread", [r["thread_id"] for r in rows]), "owner", "status", "waiting on",
                   "updated")
    for r in rows:
        table.add_row(r["thread_id"], str(r["owner"]), r["status"],
                      ", ".join(str(w.get("type")) for w in r["waiting_on"]) or "-",
                      _when(r["updated_at"]))
    _print(rows, as_json, table)


def _workflow(rt: steward.Runtime, thread: str, principal: Principal) -> Any:
    """The workflow a thread was started with by ``steward run``, or None."""
    from steward.graphs import WORKFLOWS

    latest = rt.checkpointer.get_tuple({"configurable": {"thread_id": thread,
                                                         "principal": principal}})
    if latest is None:
        raise ConfigError(f"thread {thread!r} has no checkpoints: check the id.")
    return WORKFLOWS.get(str((latest.metadata or {}).get("workflow")))


@threads_app.command("show")
def threads_show(thread: str, who: AsOption, db: DbOption = DEFAULT_DB,
                 roles: RolesOption = DEFAULT_ROLES, as_json: JsonOption = False) -> None:
    """A thread's identity, its latest values and what it waits on."""
    principal = parse_principal(who)
    with _runtime(db, roles) as rt:
        info = rt.checkpointer.thread_info(thread, principal)
        if info is None:
            raise ConfigError(f"no thread {thread!r}: check the id (threads list).")
        latest = rt.checkpointer.get_tuple({"configurable": {"thread_id": thread,
                                                             "principal": principal}})
        values = dict(latest.checkpoint["channel_values"]) if latest else {}
        waiting = rt.approvals.history(thread, principal)
    data = {**info, "values": values, "approvals": waiting}
    if as_json:
        _print(data, True)
        return
    console.print(Text.assemble((thread, "bold"), f" tenant={info['tenant']} owner="
                                f"{info['owner']} status={info['status']} "
                                f"updated={_when(info['updated_at'])}"))
    for key, value in values.items():
        console.print(f"  {key}: {value!r}"[:300])
    for record in waiting:
        console.print(f"  approval {record['id']} ({record['action']}): {record['status']}")


@threads_app.command("history")
def threads_history(thread: str, who: AsOption, db: DbOption = DEFAULT_DB,
                    roles: RolesOption = DEFAULT_ROLES, as_json: JsonOption = False) -> None:
    """A thread's checkpoints, newest first: step, source and who wrote each."""
    principal = parse_principal(who)
    with _runtime(db, roles) as rt:
        items = list(rt.checkpointer.list({"configurable": {"thread_id": thread,
                                                            "principal": principal}}))
    rows = [{"checkpoint_id": t.config["configurable"]["checkpoint_id"],
             "step": (t.metadata or {}).get("step"), "source": (t.metadata or {}).get("source"),
             "written_by": (t.metadata or {}).get("principal_id")} for t in items]
    table = Table("checkpoint", "step", "source", "written by")
    for r in rows:
        table.add_row(str(r["checkpoint_id"])[-12:], str(r["step"]), str(r["source"]),
                      str(r["written_by"] or "-"))
    _print(rows, as_json, table)


# -- approvals -----------------------------------------------------------------------------------

approvals_app = typer.Typer(no_args_is_help=True, help="Approvals: list, approve, reject.")


@approvals_app.command("list")
def approvals_list(who: AsOption, db: DbOption = DEFAULT_DB, roles: RolesOption = DEFAULT_ROLES,
                   as_json: JsonOption = False) -> None:
    """What the principal may approve now, oldest first; each request's id is printed whole
    (``approvals approve`` takes it, or any unique start of it)."""
    principal = parse_principal(who)
    with _runtime(db, roles) as rt:
        pending = rt.approvals.pending(principal)
    if as_json:
        _print(pending, True)
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
        raise ConfigError(f"{principal.id!r} asked for request {rid} and cannot {decision} "
                          "their own request: the four-eyes rule. Another person holding one of "
                          f"the roles {needs} must vote on it.")
    if not set(needs) & principal.roles:
        raise ConfigError(f"request {rid} needs one of the roles {needs}; {principal.id!r} "
                          f"holds {sorted(principal.roles)}: act as an approver holding one "
                          f"(--as TENANT/ID:{needs[0]}).")
    if any(v["voter"] == principal.id for v in request["votes"]):
        raise ConfigError(f"{principal.id!r} already voted on request {rid}; each approver "
                          f"votes once (it has {len(request['votes'])} of {request['quorum']} "
                          "votes).")
    if not any(p["id"] == rid for p in rt.approvals.pending(principal)):
        raise ConfigError(f"request {rid} expired at {request['expires_at']} and can no longer "
                          "be voted on; `steward sweep` closes it as its on_expire says.")
    return request


def _vote(request: str, decision: str, who: str, comment: str | None, db: str, roles: str,
          as_json: bool) -> None:
    principal = parse_principal(who)
    with _runtime(db, roles) as rt:
        found = _open_request(rt, request, principal, decision)
        request, thread = found["id"], found["thread_id"]
        spec = _workflow(rt, thread, principal)
        if spec is None:
            raise ConfigError(f"thread {thread!r} was not started by `steward run`: resume it "
                              "from the application that runs its graph.")
    with _runtime(db, roles, policy=spec.policy()) as rt:
        graph = spec.build().compile(checkpointer=rt.checkpointer, store=rt.store)
        payload: dict[str, Any] = {"decision": decision}
        if comment:
            payload["comment"] = comment
        try:
            out = graph.invoke(Command(resume=payload), rt.config(thread, principal))
        except steward.PolicyDenied as exc:  # a rejection ends the guarded action
            out = {"outcome": {"status": "denied", "reason": str(exc)}}
    status, reason, waiting = _ended(out)
    result = {"request": request, "thread_id": thread, "decision": decision, "status": status,
              "reason": reason, "waiting_on": waiting,
              "values": {k: v for k, v in out.items() if k != "__interrupt__"}}
    if as_json:
        _print(result, True)
    else:
        done = {"approve": "approved", "reject": "rejected"}[decision]
        console.print(f"{done} {request} on thread {thread}: {status}"
                      + (f" — {reason}" if reason else ""), soft_wrap=True)


@approvals_app.command("approve")
def approvals_approve(request: str, who: AsOption,
                      comment: Annotated[str | None, typer.Option("--comment")] = None,
                      db: DbOption = DEFAULT_DB, roles: RolesOption = DEFAULT_ROLES,
                      as_json: JsonOption = False) -> None:
    """Approve a pending request (resumes its thread as the principal)."""
    _vote(request, "approve", who, comment, db, roles, as_json)


@approvals_app.command("reject")
def approvals_reject(request: str, who: AsOption,
                     comment: Annotated[str | None, typer.Option("--comment")] = None,
                     db: DbOption = DEFAULT_DB, roles: RolesOption = DEFAULT_ROLES,
                     as_json: JsonOption = False) -> None:
    """Reject a pending request (resumes its thread as the principal)."""
    _vote(request, "reject", who, comment, db, roles, as_json)


# -- audit ---------------------------------------------------------------------------------------


def audit_tail(thread: str, who: AsOption, follow: Annotated[bool, typer.Option(
        "--follow", "-f", help="Keep printing events as they are written.")] = False,
        limit: int = 50, db: DbOption = DEFAULT_DB, roles: RolesOption = DEFAULT_ROLES,
        as_json: JsonOption = False) -> None:
    """A thread's latest audit events (``--follow``: and new ones as they come)."""
    principal = parse_principal(who)
    with _runtime(db, roles) as rt:
        events = rt.audit.events(thread, principal)[-limit:]
        stream = rt.audit.subscribe(thread, principal, after=events[-1].seq if events else 0,
                                    poll=0.5) if follow else iter(())
        for event in itertools.chain(events, stream):  # what is there first, then what comes
            if as_json:
                print(json.dumps(event.to_dict(), sort_keys=True, default=str))
            else:
                console.print(f"{event.seq:>5} {_when(event.at)} {event.kind:<16} "
                              f"{event.node or '-':<14} {event.principal_id or '-':<18} "
                              f"{json.dumps(event.payload, default=str)[:80]}", soft_wrap=True)
            sys.stdout.flush()  # a pipe (| grep, a log shipper) sees each event as it comes


def audit_export(who: AsOption, out: Annotated[str, typer.Option("--out", help="File to "
                                                                  "write (JSON Lines).")],
                 thread: Annotated[str | None, typer.Option("--thread")] = None,
                 db: DbOption = DEFAULT_DB, roles: RolesOption = DEFAULT_ROLES) -> None:
    """Export a thread's (or the tenant's) audit events with their chain, for offline checks.
    The file is written whole or not at all; an export of no events is refused."""
    with _runtime(db, roles) as rt:
        count = rt.audit.export(out, parse_principal(who), thread_id=thread)
    console.print(f"wrote {count} events to {out}; check it with `steward audit verify "
                  f"--file {out}`")


def sweep(db: DbOption = DEFAULT_DB, as_json: JsonOption = False) -> None:
    """Delete expired threads and memories, and close approval requests whose time is up."""
    with steward.open(db) as rt:
        deleted = rt.sweep()
    if as_json:
        _print({"deleted_threads": deleted}, True)
    else:
        console.print(f"deleted {len(deleted)} expired threads")


def erase(subject: Annotated[str, typer.Argument(help="Whom to forget (a principal id, or "
                                                 "the subject memories were written for).")],
          who: AsOption, db: DbOption = DEFAULT_DB, roles: RolesOption = DEFAULT_ROLES,
          as_json: JsonOption = False) -> None:
    """Forget a person: memories, the working context of the threads they own or are a
    subject of, their audit payloads (chains still verify); prints the erasure receipt.
    Needs a role that --thread-roles grants admin (e.g. ops=admin)."""
    with _runtime(db, roles) as rt:
        receipt = rt.erase(subject, by=parse_principal(who))
    if as_json:
        _print(receipt.to_dict(), True)
        return
    if receipt.outcome == "nothing_to_erase":
        console.print(f"nothing to erase: Steward holds no data of {subject!r} in tenant "
                      f"{receipt.tenant!r}; no receipt was stored", highlight=False)
    elif receipt.outcome == "already_erased":
        console.print(f"{subject!r} was already erased: nothing new to erase; the receipt "
                      f"stays {receipt.receipt_id} (digest {receipt.digest})", highlight=False)
    else:
        console.print(f"erased {subject!r} ({receipt.receipt_id}): {receipt.memories} "
                      f"memories, {len(receipt.threads)} threads ({receipt.checkpoints} "
                      f"checkpoints), {receipt.audit_events} audit payloads; receipt digest "
                      f"{receipt.digest}", highlight=False)


def token(who: AsOption, secret: Annotated[str | None, typer.Option(
        "--secret", envvar="STEWARD_JWT_SECRET", show_default=False,
        help="The server's HS256 secret (its STEWARD_JWT_SECRET).")] = None,
        expires_in: Annotated[int, typer.Option("--expires-in", help="Seconds the token is "
                                                "valid.")] = 3600) -> None:
    """Print a bearer token (an HS256 JWT) for the principal, for a LangGraph server run with
    Steward's auth and the same STEWARD_JWT_SECRET (e.g. `langgraph dev`): send it in the
    header "Authorization: Bearer <token>". Claim names, issuer and audience follow the server's
    STEWARD_JWT_* settings."""
    principal = parse_principal(who)
    if not secret:
        raise ConfigError("no secret to sign with: pass --secret TEXT or set STEWARD_JWT_SECRET "
                          "to the secret the server verifies tokens with.")
    if expires_in <= 0:
        raise ConfigError(f"--expires-in {expires_in}: give a positive number of seconds, "
                          "e.g. 3600.")
    try:
        import jwt
    except ImportError as exc:
        raise ConfigError("steward token needs PyJWT: pip install 'langgraph-steward[server]'."
                          ) from exc
    now = int(time.time())
    claims: dict[str, Any] = {
        "sub": principal.id, "iat": now, "exp": now + expires_in,
        os.environ.get("STEWARD_JWT_TENANT_CLAIM", "tenant"): principal.tenant,
        os.environ.get("STEWARD_JWT_ROLES_CLAIM", "roles"): sorted(principal.roles)}
    for claim, variable in (("iss", "STEWARD_JWT_ISSUER"), ("aud", "STEWARD_JWT_AUDIENCE")):
        if os.environ.get(variable):
            claims[claim] = os.environ[variable]
    with warnings.catch_warnings(record=True) as caught:  # PyJWT's, e.g. a short secret
        warnings.simplefilter("always")
        encoded = jwt.encode(claims, secret, algorithm="HS256")
    for warning in caught:
        print(f"warning: {warning.message}", file=sys.stderr)
    print(encoded)


def register(app: typer.Typer, audit_app: typer.Typer) -> None:
    app.command("run")(run)
    app.command("token")(token)
    app.command("sweep")(sweep)
    app.command("erase")(erase)
    app.add_typer(threads_app, name="threads")
    app.add_typer(approvals_app, name="approvals")
    audit_app.command("tail")(audit_tail)
    audit_app.command("export")(audit_export)

