"""Bearer tokens for the LangGraph server, mapped to Steward principals.

A request carries a principal's token as ``Authorization: Bearer <token>`` or as
``X-Api-Key: <token>`` (the "API key" of LangChain's Agent Chat UI and of ``langgraph-sdk``
clients given ``api_key=``); both at once must be the same token. A token is a JWT whose
claims name the principal, verified as ``steward.tokens`` says (``STEWARD_JWT_SECRET``,
``STEWARD_JWT_PUBLIC_KEY`` or ``STEWARD_JWT_JWKS_URL``; issuer, audience and claim names).

Every thread, run, assistant and cron the server creates is stamped with the caller's tenant,
and every read, update, search and run is filtered to it: another tenant's thread is "not
found" (404), a missing or bad token is 401. Steward's saver applies the thread access rule to
the principal of each run as well.
"""

from __future__ import annotations

from typing import Any

from langgraph_sdk import Auth

import steward
from steward.errors import ConfigError, StewardError, TokenInvalid
from steward.identity import Access, Principal, principal_from_user
from steward.server.status import http_message, http_status
from steward.tokens import bearer_token, verify_token

auth = Auth()


def principal_claims(token: str) -> dict[str, Any]:
    """The principal a bearer token names, as the server's user dict; HTTP 401 if invalid
    (``steward.tokens`` verifies it), 500 if the server has no key to verify it with."""
    try:
        p = verify_token(token)
    except TokenInvalid as exc:
        raise Auth.exceptions.HTTPException(status_code=401, detail=str(exc)) from None
    except ConfigError as exc:
        raise Auth.exceptions.HTTPException(status_code=500, detail=str(exc)) from None
    return {"identity": p.id, "tenant": p.tenant, "roles": sorted(p.roles),
            "permissions": sorted(p.roles)}


def request_token(headers: dict[bytes, bytes]) -> str:
    """The token a request carries (``steward.tokens.bearer_token``); HTTP 401 if none."""
    try:
        return bearer_token(headers.get(b"authorization", b"").decode("latin-1"),
                            headers.get(b"x-api-key", b"").decode("latin-1"))
    except TokenInvalid as exc:
        raise Auth.exceptions.HTTPException(status_code=401, detail=str(exc)) from None


@auth.authenticate
async def authenticate(headers: dict[bytes, bytes]) -> dict[str, Any]:
    return principal_claims(request_token(headers))


@auth.on
async def same_tenant(ctx: Auth.types.AuthContext, value: Any) -> dict[str, Any]:
    """Stamp what is created with the caller's tenant; see only the caller's tenant."""
    tenant = ctx.user["tenant"]
    if isinstance(value, dict):
        metadata = value.get("metadata")
        if isinstance(metadata, dict):
            metadata["tenant"] = tenant
        elif "metadata" in value or ctx.action == "create":
            value["metadata"] = {"tenant": tenant}
    return {"tenant": tenant}


@auth.on.threads.create_run
async def vote_first(ctx: Auth.types.AuthContext, value: Any) -> dict[str, Any]:
    """A run on an existing thread is checked before it is created: the server turns a run's
    exception into a thread in ``error`` (gone from the approvers' ``interrupted`` list), so a
    vote the node would refuse (four eyes, role, a second vote, a malformed payload), a
    principal who may not write the thread, or an approver who may only vote but sends new
    input or another command (Agent Chat UI's chat box or "Mark as Resolved" on the thread
    they were asked to approve) is answered here, as HTTP 403 / 422 / 409, and the thread
    keeps waiting on the same request. A refused vote is audited as the node audits it."""
    filters = await same_tenant(ctx, value)
    kwargs = value.get("kwargs") if isinstance(value, dict) else None
    thread_id = value.get("thread_id") if isinstance(value, dict) else None
    if thread_id is None or not isinstance(kwargs, dict):
        return filters
    command = kwargs.get("command")
    from steward.server.runtime import runtime

    principal = principal_from_user(ctx.user)
    if principal is None:  # authenticate() gives every user a tenant: not reached
        return filters
    rt = await runtime()
    found = await rt.checkpointer.athread_info(str(thread_id), None)  # the server's own read
    if found is None or found["tenant"] != principal.tenant:
        return filters  # new, or another tenant's thread: the server's filter answers
    try:
        if isinstance(command, dict) and "resume" in command:
            await rt.approvals.acheck_resume(str(thread_id), principal, command["resume"])
        else:
            await _may_write(rt, str(thread_id), principal)
    except (steward.ApprovalInvalid, steward.ThreadAccessDenied, steward.ThreadBusy) as exc:
        raise _refused(exc) from None
    return filters


def _refused(exc: StewardError) -> Exception:
    """The server's answer to a refusal: the status and message ``steward.server.status``
    gives it, as the AgentCore entrypoint answers it."""
    return Auth.exceptions.HTTPException(status_code=http_status(exc), detail=http_message(exc))


async def _may_write(rt: steward.Runtime, thread_id: str, principal: Principal) -> None:
    """Raise ThreadAccessDenied unless ``principal`` may write the thread (more than vote):
    the access rule the saver applies to the run's first write. A busy thread is left to the
    server's own multitask strategy."""
    await rt.checkpointer.acheck_access(thread_id, principal, Access.WRITE)


async def _may(ctx: Auth.types.AuthContext, value: Any, need: Access) -> dict[str, Any]:
    """The tenant's filter, and the access rule for ``need`` on an existing thread (the
    server writes and deletes with its own configs, which the saver trusts)."""
    filters = await same_tenant(ctx, value)
    thread_id = value.get("thread_id") if isinstance(value, dict) else None
    principal = principal_from_user(ctx.user)
    if thread_id is None or principal is None:
        return filters
    from steward.server.runtime import runtime

    rt = await runtime()
    found = await rt.checkpointer.athread_info(str(thread_id), None)
    if found is None or found["tenant"] != principal.tenant:
        return filters  # new, or another tenant's thread: the server's filter answers
    try:
        await rt.checkpointer.acheck_access(str(thread_id), principal, need)
    except steward.ThreadAccessDenied as exc:
        raise _refused(exc) from None
    return filters


@auth.on.threads.update
async def may_update(ctx: Auth.types.AuthContext, value: Any) -> dict[str, Any]:
    """Updating a thread (its state: ``update_state``; its metadata; cancelling its run) needs
    write access: the owner, or a role ``STEWARD_THREAD_ROLES`` grants write. An approver who
    may only vote is refused (403), and so is any other member of the tenant."""
    return await _may(ctx, value, Access.WRITE)


@auth.on.threads.delete
async def may_delete(ctx: Auth.types.AuthContext, value: Any) -> dict[str, Any]:
    """Deleting a thread needs admin access: its owner, or a role granted admin."""
    return await _may(ctx, value, Access.ADMIN)
