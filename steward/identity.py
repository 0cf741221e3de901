"""Who is acting, and the thread access rule.

A :class:`Principal` travels in ``config["configurable"]["principal"]`` as the object itself or
as a plain dict (``{"id", "tenant", "roles"}``), so it crosses HTTP unchanged. The rule that
decides whether a principal may touch a thread lives here, once, as a pure function: the savers
call it on every path and do the I/O around it. So do the text forms the command line, the
environment and the server's tokens use: ``parse_principal`` (``TENANT/ID[:ROLE,...]`` or JSON),
``parse_thread_roles`` (``ROLE=read|write|admin,...``) and ``principal_from_user`` (the LangGraph
server's authenticated user).
"""

from __future__ import annotations

import enum
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from steward.errors import ConfigError, ThreadAccessDenied

__all__ = [
    "Access",
    "AccessRule",
    "Principal",
    "ThreadIdentity",
    "parse_principal",
    "parse_thread_roles",
    "principal_from_config",
    "principal_from_user",
]


class _PrincipalIn(BaseModel):
    """The wire shape of a principal; validated once at the boundary."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    id: str = Field(min_length=1, max_length=512)
    tenant: str = Field(min_length=1, max_length=512)
    roles: list[str] | tuple[str, ...] | set[str] | frozenset[str] = ()
    kind: Literal["user", "service"] = "user"


@dataclass(frozen=True, slots=True)
class Principal:
    """An acting identity: a person or a service, inside one tenant, holding some roles."""

    id: str
    tenant: str
    roles: frozenset[str] = field(default_factory=frozenset)
    kind: Literal["user", "service"] = "user"

    def __post_init__(self) -> None:
        roles: object = self.roles
        if isinstance(roles, str) or not isinstance(roles, Iterable):
            raise ConfigError(
                f"Principal roles must be a collection of strings, got {roles!r}: "
                'pass e.g. roles={"support"}.'
            )
        checked = _validate(
            {"id": self.id, "tenant": self.tenant, "roles": list(roles), "kind": self.kind}
        )
        object.__setattr__(self, "roles", frozenset(checked.roles))

    @classmethod
    def parse(cls, value: Principal | Mapping[str, Any]) -> Principal:
        """Accept a Principal or its dict form (as sent over HTTP)."""
        if isinstance(value, Principal):
            return value
        if not isinstance(value, Mapping):
            raise ConfigError(
                f"principal must be a steward.Principal or a dict with 'id', 'tenant' and "
                f"'roles', got {type(value).__name__}."
            )
        checked = _validate(dict(value))
        return cls(id=checked.id, tenant=checked.tenant, roles=frozenset(checked.roles),
                   kind=checked.kind)

    def to_dict(self) -> dict[str, Any]:
        """The JSON form, which :meth:`parse` reads back."""
        return {"id": self.id, "tenant": self.tenant, "roles": sorted(self.roles),
                "kind": self.kind}


def _validate(data: dict[str, Any]) -> _PrincipalIn:
    try:
        return _PrincipalIn.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'principal'}: {err['msg']}"
            for err in exc.errors()
        )
        raise ConfigError(
            f"invalid principal ({problems}): a principal needs a non-empty string 'id' and "
            "'tenant', and 'roles' as a list of strings."
        ) from exc


def principal_from_config(config: Mapping[str, Any] | None) -> Principal | None:
    """The principal a RunnableConfig carries, or None when it carries none."""
    if not config:
        return None
    configurable = config.get("configurable") or {}
    raw = configurable.get("principal")
    if raw is None:
        return principal_from_user(configurable.get("langgraph_auth_user"))
    return Principal.parse(raw)


def principal_from_user(user: Any) -> Principal | None:
    """The LangGraph server's authenticated user as a Principal (``steward.server.auth`` puts
    the tenant, the roles and the kind next to the identity); None when it names no identity
    or no tenant."""
    if user is None or not hasattr(user, "get"):
        return None
    identity = getattr(user, "identity", None) or user.get("identity")
    tenant = user.get("tenant")
    if not identity or not tenant:
        return None
    return Principal.parse({"id": str(identity), "tenant": str(tenant),
                            "roles": list(user.get("roles") or []),
                            "kind": user.get("kind") or "user"})


def parse_principal(spec: str, *, source: str = "principal") -> Principal:
    """A principal written ``TENANT/ID[:ROLE,...]`` (e.g. ``acme/bob@acme.test:manager``) or as
    a JSON object (``{"id": ..., "tenant": ..., "roles": [...]}``). ``source`` names where the
    text came from (``--as``, a dev token) in the ConfigError that refuses it."""
    text = spec.strip()
    if text.startswith("{"):
        try:
            return Principal.parse(json.loads(text))
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{source} {spec!r} is not valid JSON: {exc.msg}.") from exc
    who, _, roles = text.partition(":")
    tenant, slash, ident = who.partition("/")
    if not slash or not tenant or not ident:
        raise ConfigError(f"{source} {spec!r} names no tenant: write TENANT/ID[:ROLE,...], e.g. "
                          "acme/bob@acme.test:manager.")
    return Principal.parse({"id": ident, "tenant": tenant,
                            "roles": [r for r in roles.split(",") if r]})


def parse_thread_roles(spec: str, *, source: str = "thread roles") -> dict[str, str]:
    """``ROLE=read|write|admin,...`` as the ``thread_roles`` mapping of ``steward.open``;
    ``source`` (``--thread-roles``, ``$STEWARD_THREAD_ROLES``) names the text in the
    ConfigError that refuses it."""
    out = {}
    for part in filter(None, (p.strip() for p in spec.split(","))):
        role, eq, level = part.partition("=")
        if not eq or not role or level not in ("read", "write", "admin"):
            raise ConfigError(f"{source} {spec!r}: write ROLE=read|write|admin, ...")
        out[role] = level
    return out


AGENT_KEY = "steward_agent"  # configurable: the agent a team member's nodes run as


def agent_from_config(config: Mapping[str, Any] | None,
                      principal: Principal | None) -> Principal | None:
    """The agent a node runs as (``steward.graphs.team``), on behalf of ``principal``: a
    service of the principal's own tenant; None outside a team."""
    raw = ((config or {}).get("configurable") or {}).get(AGENT_KEY)
    if raw is None:
        return None
    agent = Principal.parse(raw)
    if principal is None or agent.tenant != principal.tenant:
        raise ConfigError(
            f"agent {agent.id!r} (tenant {agent.tenant!r}) can only act on behalf of a "
            "principal of its own tenant: run the team with rt.config(thread_id, principal).")
    return agent


class Access(enum.IntEnum):
    """What a request needs of a thread; each level includes the ones below it."""

    READ = 1  # get_tuple, list, get_state, audit reads
    WRITE = 2  # put, put_writes, invoke, resume, update_state
    ADMIN = 3  # delete_thread, delete_for_runs, prune, copy_thread's source removal

    @classmethod
    def parse(cls, value: str | Access) -> Access:
        if isinstance(value, Access):
            return value
        try:
            return cls[value.upper()]
        except (KeyError, AttributeError):
            raise ConfigError(
                f"unknown access level {value!r}: use 'read', 'write' or 'admin'."
            ) from None


@dataclass(frozen=True, slots=True)
class ThreadIdentity:
    """What the saver knows of a thread's identity; ``tenant is None`` means unbound.

    ``voters``: the roles that may vote on the approvals the thread waits on; ``resumed_by``:
    who resumed it last by a vote alone (the approver's reach, see :class:`AccessRule`)."""

    thread_id: str
    tenant: str | None
    owner: str | None
    voters: frozenset[str] = frozenset()
    resumed_by: str | None = None


# What a write does, for the approver's reach: answer an interrupt (a resume, or a lease taken
# for one), run on from it (a task's writes, the checkpoints the run makes), or anything else
# (new input, update_state, a command's update or goto: None).
Vote = Literal["resume", "run"]


@dataclass(frozen=True)
class AccessRule:
    """The thread access rule of DESIGN.md.

    The first write by a principal binds a thread to its tenant and makes it the owner. A bound
    thread is closed to requests without a principal and to every other tenant. Inside the
    tenant the owner may do anything; other members need a role that ``roles`` grants at the
    level the request needs (e.g. ``{"manager": "write", "auditor": "read"}``).
    """

    roles: Mapping[str, Access] = field(default_factory=dict)
    # Requests with no principal are the host's own (the LangGraph server, which confines
    # every request to the caller's tenant with its auth handlers before reading): let them.
    trust_unidentified: bool = False

    @classmethod
    def from_roles(cls, roles: Mapping[str, str | Access] | None, *,
                   trust_unidentified: bool = False) -> AccessRule:
        if roles is None:
            return cls(trust_unidentified=trust_unidentified)
        if not isinstance(roles, Mapping):
            raise ConfigError(
                f"thread_roles must map role names to 'read', 'write' or 'admin', got {roles!r}."
            )
        return cls({str(role): Access.parse(level) for role, level in roles.items()},
                   trust_unidentified)

    def level(self, principal: Principal) -> Access | None:
        """The highest access the principal's roles grant on other members' threads."""
        granted = [self.roles[r] for r in principal.roles if r in self.roles]
        return max(granted) if granted else None

    def check_tenant_read(self, principal: Principal, doing: str) -> None:
        """Raise ThreadAccessDenied unless ``principal`` may read every thread of its tenant
        (a role granted read or more on others' threads): what ``doing`` (e.g. "a report",
        "verifying every chain") needs, since it reads, or names, all of them."""
        level = self.level(principal)
        if level is not None and level >= Access.READ:
            return
        refused = (f"principal {principal.id!r} may not read every thread of tenant "
                   f"{principal.tenant!r}, which {doing} does: none of its roles "
                   f"{sorted(principal.roles)} is granted read access to others' threads")
        raise ThreadAccessDenied(
            f"{refused}. Act as a principal holding such a role (an auditor), granted with "
            "steward.open(..., thread_roles={'auditor': 'read'}).",
            cli=f"{refused}. Act as one that is (--as TENANT/ID:auditor), or grant a role "
                "with --thread-roles ROLE=read (the flag replaces the default grants; or set "
                "$STEWARD_THREAD_ROLES).")

    def check(self, principal: Principal | None, thread: ThreadIdentity | None,
              need: Access, *, vote: Vote | None = None) -> bool:
        """Raise ThreadAccessDenied unless ``principal`` may do ``need`` on ``thread``; returns
        True when only the approver's reach allows it.

        The approver's reach: a member of the thread's tenant holding a role that may vote on
        an approval the thread waits on may read the thread and resume it (``vote="resume"``),
        and the run its vote resumed may go on (``vote="run"``, allowed to whoever resumed it
        until that run ends): nothing more without a role ``roles`` grants."""
        if thread is None or thread.tenant is None:
            return False  # unbound threads behave exactly like stock LangGraph threads
        tid = thread.thread_id
        if principal is None and self.trust_unidentified:
            return False
        if principal is None:
            raise ThreadAccessDenied(
                f"thread {tid!r} belongs to a tenant and this request carries no principal: "
                "pass one, e.g. rt.config(thread_id, principal) or "
                "config['configurable']['principal'] = {'id': ..., 'tenant': ..., 'roles': [...]}.",
                thread_id=tid,
            )
        if principal.tenant != thread.tenant:
            raise ThreadAccessDenied(
                f"principal {principal.id!r} of tenant {principal.tenant!r} may not "
                f"{need.name.lower()} thread {tid!r}: it belongs to another tenant. Use a "
                "principal of the thread's tenant.",
                thread_id=tid, tenant=thread.tenant, principal_id=principal.id,
                principal_tenant=principal.tenant, need=need.name.lower(),
            )
        if principal.id == thread.owner:
            return False
        level = self.level(principal)
        if level is not None and level >= need:
            return False
        votes = bool(thread.voters & principal.roles)
        resumed = thread.resumed_by == principal.id
        if need == Access.READ and (votes or resumed):
            return True
        if need == Access.WRITE and ((vote == "resume" and votes) or (vote == "run" and resumed)):
            return True
        what = need.name.lower()
        refused = (f"principal {principal.id!r} may not {what} thread {tid!r} owned by "
                   f"{thread.owner!r}: none of its roles {sorted(principal.roles)} is granted "
                   f"{what} access")
        if votes or resumed:
            refused += (" (as an approver it may read the thread and resume it with a vote on "
                        "its pending approval, nothing more: no new input, update_state or "
                        "deletion)")
        raise ThreadAccessDenied(
            f"{refused}. Grant one with steward.open(..., thread_roles={{'<role>': "
            f"'{what}'}}).",
            thread_id=tid,
            cli=f"{refused}. Act as a principal whose role is granted {what} access "
                f"(--as TENANT/ID:ROLE), or grant one with --thread-roles ROLE={what} "
                "(the flag replaces the default grants; or set $STEWARD_THREAD_ROLES).",
        )
