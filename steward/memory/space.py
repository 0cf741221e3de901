"""Where a memory lives decides who may reach it.

A namespace is ``(tenant, scope, ...)``: the tenant first, then the scope --
``"user:<id>"`` (a person's own memories), ``"agent:<id>"`` (a service's or a team agent's), or
``"team:<name>"`` (a space shared inside the tenant, where the runtime's policy decides, with
the actions ``memory_read`` and ``memory_write`` on the resource ``MemorySpace::"<name>"``).
Nobody reaches another tenant's memories.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from steward.errors import ConfigError, MemoryAccessDenied
from steward.identity import Principal

__all__ = ["SCOPES", "Space", "Who", "agent_space", "space_of", "team_space", "user_space"]

SCOPES = ("user", "agent", "team")


@dataclass(frozen=True)
class Space:
    tenant: str
    scope: str  # "user:alice"
    kind: str  # "user", "agent", "team"
    name: str


@dataclass(frozen=True)
class Who:
    """Who reaches for memories: the principal, and the team agent acting for them, if any."""

    person: Principal
    agent: Principal | None = None

    @property
    def actor(self) -> Principal:
        return self.agent or self.person

    def owns(self, space: Space) -> bool:
        """A person's own space, or the acting service's (the person's agent reaches both)."""
        if space.tenant != self.person.tenant:
            return False
        if space.kind == "user":
            return space.name == self.person.id
        if space.kind == "agent":
            return space.name in {p.id for p in (self.agent, self.person)
                                  if p is not None and p.kind == "service"}
        return False


def space_of(namespace: tuple[str, ...]) -> Space:
    """The space of a namespace, or ConfigError for one that is not ``(tenant, scope, ...)``."""
    if not isinstance(namespace, tuple) or not all(isinstance(n, str) for n in namespace):
        raise ConfigError(f"a memory namespace is a tuple of strings, got {namespace!r}.")
    if len(namespace) < 2:
        raise ConfigError(f"memory namespace {namespace!r} must start with the tenant and a "
                          "scope: (tenant, 'user:<id>' | 'agent:<id>' | 'team:<name>', ...); "
                          "steward.memory.user_space(principal) builds one.")
    kind, sep, name = namespace[1].partition(":")
    if not sep or kind not in SCOPES or not name:
        raise ConfigError(f"memory scope {namespace[1]!r} must be 'user:<id>', 'agent:<id>' or "
                          "'team:<name>'.")
    return Space(namespace[0], namespace[1], kind, name)


def user_space(principal: Principal | Any, *rest: str) -> tuple[str, ...]:
    """``(tenant, "user:<id>", *rest)``: the principal's own memories."""
    who = Principal.parse(principal)
    return (who.tenant, f"user:{who.id}", *rest)


def agent_space(principal: Principal | Any, *rest: str) -> tuple[str, ...]:
    who = Principal.parse(principal)
    return (who.tenant, f"agent:{who.id}", *rest)


def team_space(tenant: str, team: str, *rest: str) -> tuple[str, ...]:
    return (tenant, f"team:{team}", *rest)


def denied(who: Who, space: Space, need: str, why: str = "") -> MemoryAccessDenied:
    if space.tenant != who.person.tenant:
        return MemoryAccessDenied(
            f"{who.actor.id!r} of tenant {who.person.tenant!r} cannot {need} memories of "
            f"tenant {space.tenant!r}: use a namespace that starts with {who.person.tenant!r}.")
    if not why:
        why = (f"the runtime's policy does not allow memory_{need} on "
               f"MemorySpace::\"{space.name}\"" if space.kind == "team" else
               "a user's space is theirs alone, an agent's its own; share through a "
               "'team:<name>' space the policy opens")
    return MemoryAccessDenied(f"{who.actor.id!r} may not {need} memories in {space.scope!r}: "
                              f"{why}.")
