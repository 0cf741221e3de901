"""Bearer tokens for the LangGraph server, mapped to Steward principals.

A request carries a principal's token as ``Authorization: Bearer <token>`` or as
``X-Api-Key: <token>`` (the "API key" of LangChain's Agent Chat UI and of ``langgraph-sdk``
clients given ``api_key=``); both at once must be the same token. A token is a JWT whose
claims name the principal: ``sub`` (its id), ``tenant`` and ``roles`` (claim names
configurable). It is verified with PyJWT against the environment:

- ``STEWARD_JWT_SECRET`` (HS256) or ``STEWARD_JWT_PUBLIC_KEY`` (RS256, PEM text or a path);
- ``STEWARD_JWT_ISSUER`` and ``STEWARD_JWT_AUDIENCE``, checked when set;
- ``STEWARD_DEV_TOKENS=1`` also accepts ``dev:TENANT/ID[:ROLE,...]`` tokens, for local
  development only (never set it in production).

Every thread, run, assistant and cron the server creates is stamped with the caller's tenant,
and every read, update, search and run is filtered to it: another tenant's thread is "not
found" (404), a missing or bad token is 401. Steward's saver applies the thread access rule to
the principal of each run as well.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from langgraph_sdk import Auth

import steward
from steward.identity import Access, Principal, parse_principal, principal_from_user

auth = Auth()


def _key() -> tuple[str, str]:
    secret = os.environ.get("STEWARD_JWT_SECRET")
    if secret:
        return secret, "HS256"
    public = os.environ.get("STEWARD_JWT_PUBLIC_KEY", "")
    if public and not public.lstrip().startswith("-----") and Path(public).is_file():
        public = Path(public).read_text()
    if public:
        return public, "RS256"
    raise Auth.exceptions.HTTPException(
        status_code=500, detail="the server has no STEWARD_JWT_SECRET or STEWARD_JWT_PUBLIC_KEY")


def principal_claims(token: str) -> dict[str, Any]:
    """The principal a bearer token names, as the server's user dict; HTTP 401 if invalid."""
    import jwt

    if token.startswith("dev:") and os.environ.get("STEWARD_DEV_TOKENS") == "1":
        p = parse_principal(token[4:], source="dev token")
        return {"identity": p.id, "tenant": p.tenant, "roles": sorted(p.roles),
                "permissions": sorted(p.roles)}
    key, algorithm = _key()
    try:
        claims = jwt.decode(token, key, algorithms=[algorithm],
                            issuer=os.environ.get("STEWARD_JWT_ISSUER") or None,
                            audience=os.environ.get("STEWARD_JWT_AUDIENCE") or None,
                            options={"require": ["sub"]})
    except jwt.PyJWTError as exc:
        raise Auth.exceptions.HTTPException(status_code=401,
                                            detail=f"invalid token: {exc}") from exc
    tenant = claims.get(os.environ.get("STEWARD_JWT_TENANT_CLAIM", "tenant"))
    roles = claims.get(os.environ.get("STEWARD_JWT_ROLES_CLAIM", "roles")) or []
    if not tenant or not isinstance(roles, list):
        raise Auth.exceptions.HTTPException(status_code=401,
                                            detail="the token names no tenant (or roles that "
                                                   "are not a list)")
    return {"identity": str(claims["sub"]), "tenant": str(tenant),
            "roles": [str(r) for r in roles], "permissions": [str(r) for r in roles]}


def request_token(headers: dict[bytes, bytes]) -> str:
    """The token a request carries, from ``Authorization: Bearer`` or ``X-Api-Key``; HTTP 401
    when there is none, the Authorization header is not a bearer token, or the two differ."""
    authorization = headers.get(b"authorization", b"").decode("latin-1").strip()
    api_key = headers.get(b"x-api-key", b"").decode("latin-1").strip()
    bearer = None
    if authorization:
        scheme, _, rest = authorization.partition(" ")
        if scheme.lower() != "bearer" or not rest.strip():
            raise Auth.exceptions.HTTPException(
                status_code=401, detail="the Authorization header must be 'Bearer <token>' "
                                        "(or send the token as X-Api-Key)")
        bearer = rest.strip()
    if bearer and api_key and bearer != api_key:
        raise Auth.exceptions.HTTPException(
            status_code=401, detail="Authorization and X-Api-Key carry different tokens: "
                                    "send one principal's token, in either header")
    token = bearer or api_key
    if not token:
        raise Auth.exceptions.HTTPException(
            status_code=401, detail="a token is needed: 'Authorization: Bearer <token>' or "
                                    "'X-Api-Key: <token>'")
    return token


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
    except steward.ApprovalInvalid as exc:
        raise Auth.exceptions.HTTPException(status_code=422 if exc.malformed else 403,
                                            detail=str(exc)) from None
    except steward.ThreadAccessDenied as exc:
        raise Auth.exceptions.HTTPException(status_code=403, detail=str(exc)) from None
    except steward.ThreadBusy as exc:
        raise Auth.exceptions.HTTPException(status_code=409, detail=str(exc)) from None
    return filters


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
        raise Auth.exceptions.HTTPException(status_code=403, detail=str(exc)) from None
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
