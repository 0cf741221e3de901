"""``steward run``: start an example workflow on a thread, and say how the run stopped."""

from __future__ import annotations

import json
import uuid
from typing import Annotated, Any

import typer
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
from steward.errors import ConfigError
from steward.examples import WORKFLOWS, Workflow
from steward.identity import Principal

__all__ = ["ended", "resume", "run", "run_result", "workflow_of"]


def ended(out: Any) -> tuple[str, str | None, list[Any]]:
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


def run_result(out: Any, **head: Any) -> dict[str, Any]:
    """What ``run`` and a vote print with ``--json``: ``head``, then how the run stopped and
    the graph's values."""
    status, reason, waiting = ended(out)
    return {**head, "status": status, "reason": reason, "waiting_on": waiting,
            "values": {k: v for k, v in out.items() if k != "__interrupt__"}}


def invoke(graph: Any, payload: Any, config: Any) -> Any:
    """``graph.invoke``; a policy that forbids a step ends the run there, as ``denied``."""
    try:
        return graph.invoke(payload, config)
    except steward.PolicyDenied as exc:
        return {"outcome": {"status": "denied", "reason": str(exc)}}


def workflow_of(rt: steward.Runtime, thread: str, principal: Principal) -> Workflow | None:
    """The workflow a thread was started with by ``steward run``, or None."""
    latest = rt.checkpointer.get_tuple({"configurable": {"thread_id": thread,
                                                         "principal": principal}})
    if latest is None:
        raise ConfigError(f"thread {thread!r} has no checkpoints: check the id.")
    return WORKFLOWS.get(str((latest.metadata or {}).get("workflow")))


def _payload(workflow: str, spec: Workflow, given: str | None) -> Any:
    """The input ``--input`` gives, checked against what the workflow needs; without
    ``--input``, the workflow's example."""
    if given is None:
        return dict(spec.defaults)
    try:
        payload = json.loads(given)
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
    return payload


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
    if workflow not in WORKFLOWS:
        raise ConfigError(f"unknown workflow {workflow!r}; known: {', '.join(sorted(WORKFLOWS))}.")
    spec = WORKFLOWS[workflow]
    payload = _payload(workflow, spec, input)
    principal = acting_as(who)
    tid = thread or f"{workflow}-{uuid.uuid4().hex[:8]}"
    if model is not None and not spec.plans:
        raise ConfigError(f"the {workflow} workflow has a fixed flow; --model applies to the "
                          "agent workflows (access, close).")
    builder = spec.build(model=model) if model is not None else spec.build()
    with open_runtime(db, roles, policy=spec.policy(), create=True) as rt:
        graph = builder.compile(checkpointer=rt.checkpointer, store=rt.store)
        config = rt.config(tid, principal)
        config["metadata"] = {"workflow": workflow}
        out = invoke(graph, spec.input(payload, workflow), config)
    result = run_result(out, thread_id=tid, workflow=workflow, input=payload)
    if as_json:
        print_data(result, True)
        return
    if input is None:
        console.print(f"input: {json.dumps(payload)} (the {workflow} workflow's example; "
                      "choose with --input)", soft_wrap=True)
    status, reason = result["status"], result["reason"]
    console.print(Text.assemble("thread ", (tid, "bold"), f" ({workflow}): {status}",
                                f" — {reason}" if reason else ""), soft_wrap=True)
    for request in result["waiting_on"]:
        console.print(f"  waits for {request.get('required_roles')}: {request.get('reasons')} "
                      f"(request {request.get('id')})", soft_wrap=True)


def resume(thread: Annotated[str, typer.Argument(help="The thread to continue.")],
           who: AsOption, db: DbOption = DEFAULT_DB, roles: RolesOption = DEFAULT_ROLES,
           as_json: JsonOption = False) -> None:
    """Continue a thread ``steward run`` started whose run stopped mid-way (``threads list
    --status stalled``: its process died) from its last checkpoint, as the principal: the
    steps that finished are not run again, effects are not repeated. Says how it ended, as
    ``run`` does."""
    principal = acting_as(who)
    with open_runtime(db, roles) as rt:
        spec = workflow_of(rt, thread, principal)
        if spec is None:
            raise ConfigError(f"thread {thread!r} was not started by `steward run`: resume it "
                              "from the application that runs its graph (rt.resume).")
        name = next(n for n, w in WORKFLOWS.items() if w is spec)
    with open_runtime(db, roles, policy=spec.policy()) as rt:
        graph = spec.build().compile(checkpointer=rt.checkpointer, store=rt.store)
        try:
            out = rt.resume(thread, principal, graph=graph)
        except steward.PolicyDenied as exc:
            out = {"outcome": {"status": "denied", "reason": str(exc)}}
    result = run_result(out, thread_id=thread, workflow=name)
    if as_json:
        print_data(result, True)
        return
    status, reason = result["status"], result["reason"]
    console.print(Text.assemble("thread ", (thread, "bold"), f" ({name}): {status}",
                                f" — {reason}" if reason else ""), soft_wrap=True)
