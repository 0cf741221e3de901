"""What an approver's resume says, in each format the frontends send.

Three shapes answer one approval request (``Command(resume=...)``):

- Steward's own: ``{"decision": "approve" | "reject", "comment": "...", "standing": {...}}``;
- LangChain's human-in-the-loop middleware (Agent Chat UI sends it):
  ``{"decisions": [{"type": "approve"} | {"type": "reject", "message": "..."} |
  {"type": "edit", "edited_action": {"name": ..., "args": {...}}}]}``, one per action request;
- Agent Inbox's legacy list: ``[{"type": "accept" | "ignore" | "response" | "edit",
  "args": ...}]``, whose edited arguments arrive as text.

They are pydantic models at the boundary (``RESPONSE`` is also the interrupt's
``response_schema``, so LangGraph refuses a malformed answer before anything is saved), and one
plain :class:`Answer` inside. The rules that need the request (roles, four eyes, the policy on
edited arguments) are ``request.check_vote``'s.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from steward.errors import ApprovalInvalid

__all__ = ["RESPONSE", "Answer", "Response", "Standing", "parse_answer", "refused"]

MAX_COMMENT = 2000
MAX_STANDING_USES = 1000
MAX_STANDING_SECONDS = 90 * 86400.0
_WAITS = "The thread still waits."


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class StandingIn(_Strict):
    """``"standing": {"uses": N, "expires_in": seconds}``: later calls need not ask again."""

    uses: int = Field(ge=1, le=MAX_STANDING_USES)
    expires_in: float = Field(gt=0, le=MAX_STANDING_SECONDS)


class StewardVote(_Strict):
    decision: Literal["approve", "reject"]
    comment: str | None = Field(default=None, max_length=MAX_COMMENT)
    standing: StandingIn | None = None


class _EditedAction(_Strict):
    name: str = Field(min_length=1)
    args: dict[str, Any]


class ApproveDecision(_Strict):
    type: Literal["approve"]
    standing: StandingIn | None = None


class RejectDecision(_Strict):
    type: Literal["reject"]
    message: str | None = Field(default=None, max_length=MAX_COMMENT)


class EditDecision(_Strict):
    type: Literal["edit"]
    edited_action: _EditedAction


HitlDecision = Annotated[ApproveDecision | RejectDecision | EditDecision,
                         Field(discriminator="type")]


class HitlResponse(_Strict):
    decisions: list[HitlDecision] = Field(min_length=1)


class _InboxAction(_Strict):
    action: str = Field(min_length=1)
    args: dict[str, Any]


class InboxResponse(_Strict):
    """One item of Agent Inbox's legacy resume list (its ``HumanResponse``)."""

    type: Literal["accept", "ignore", "response", "edit"]
    args: Annotated[str, Field(max_length=MAX_COMMENT)] | _InboxAction | None = None


Response = StewardVote | HitlResponse | Annotated[list[InboxResponse], Field(min_length=1)]
RESPONSE: TypeAdapter[Response] = TypeAdapter(Response)


@dataclass(frozen=True)
class Standing:
    uses: int
    expires_in: float

    def to_dict(self) -> dict[str, Any]:
        return {"uses": self.uses, "expires_in": self.expires_in}


@dataclass(frozen=True)
class Answer:
    """One approver's answer: approve (maybe with ``edited`` arguments, maybe ``standing``)
    or reject, with a comment."""

    decision: Literal["approve", "reject"]
    comment: str | None = None
    edited: dict[str, Any] | None = None
    standing: Standing | None = None


def _expected(action: str) -> str:
    return (f"resume with Command(resume={{'decision': 'approve' | 'reject', 'comment': "
            f"'...'}}), LangChain's {{'decisions': [{{'type': 'approve'}} | {{'type': 'reject', "
            f"'message': '...'}} | {{'type': 'edit', 'edited_action': {{'name': {action!r}, "
            "'args': {...}}}]}, or Agent Inbox's [{'type': 'accept' | 'ignore' | 'response' | "
            "'edit', 'args': ...}]")


def _shape(value: Any) -> str:
    """Which of the answer models a value was meant to be, by its outline."""
    if isinstance(value, list):
        return "list[InboxResponse]"
    if isinstance(value, Mapping) and "decisions" in value:
        return "HitlResponse"
    return "StewardVote"


def _problem(exc: ValidationError, value: Any) -> str:
    errors = exc.errors(include_url=False)
    if value is _UNKNOWN:  # refused by LangGraph: the whole value is a top-level error's input
        whole = [e["input"] for e in errors if len(e["loc"]) == 1]
        value = whole[0] if whole else _UNKNOWN
    meant = [e for e in errors if e["loc"][:1] == (_shape(value),)] or errors
    first = meant[0]
    where = ".".join(str(p) for p in first["loc"][1:])
    got = type(value).__name__ if value is not _UNKNOWN else "the answer"
    return f"{got}: {where + ': ' if where else ''}{first['msg']}"


_UNKNOWN: Any = object()


def refused(exc: ValidationError, action: str, value: Any = _UNKNOWN) -> ApprovalInvalid:
    """The error for a resume the answer models refused."""
    return ApprovalInvalid(f"malformed answer to the approval of {action!r} "
                           f"({_problem(exc, value)}): {_expected(action)}. {_WAITS}",
                           malformed=True)


def validated(value: Any, action: str) -> Response:
    """The resume as one of the accepted models, or ApprovalInvalid (``malformed``)."""
    if isinstance(value, (StewardVote, HitlResponse)) or (
            isinstance(value, list) and value and all(isinstance(v, InboxResponse)
                                                      for v in value)):
        return value  # validated already, by LangGraph's interrupt(response_schema=...)
    try:
        return RESPONSE.validate_python(value)
    except ValidationError as exc:
        raise refused(exc, action, value) from None


def parse_answer(value: Any, action: str, args: Mapping[str, Any]) -> Answer:
    """The :class:`Answer` a resume value gives, for a request of ``action`` with ``args``
    (Agent Inbox's edited text is turned back into the types ``args`` have)."""
    parsed = validated(value, action)
    if isinstance(parsed, StewardVote):
        return Answer(parsed.decision, parsed.comment, None, _standing(parsed.standing))
    items: list[Any] = parsed.decisions if isinstance(parsed, HitlResponse) else list(parsed)
    if len(items) != 1:
        raise ApprovalInvalid(f"the approval of {action!r} shows one action request; send one "
                              f"decision for it, not {len(items)}. {_WAITS}", malformed=True)
    [item] = items
    if isinstance(item, ApproveDecision):
        return Answer("approve", None, None, _standing(item.standing))
    if isinstance(item, RejectDecision):
        return Answer("reject", item.message)
    if isinstance(item, EditDecision):
        return Answer("approve", None, _edited(action, item.edited_action.name,
                                               item.edited_action.args))
    return _inbox(item, action, args)


def _standing(standing: StandingIn | None) -> Standing | None:
    return Standing(standing.uses, standing.expires_in) if standing is not None else None


def _edited(action: str, name: str, edited: dict[str, Any]) -> dict[str, Any]:
    if name != action:
        raise ApprovalInvalid(f"an edit may change the arguments of {action!r}, not the action "
                              f"(got {name!r}). {_WAITS}", malformed=True)
    return dict(edited)


def _inbox(item: InboxResponse, action: str, args: Mapping[str, Any]) -> Answer:
    if item.type == "accept":
        return Answer("approve")
    if item.type == "ignore":
        return Answer("reject", "ignored in Agent Inbox")
    if item.type == "response":
        if not isinstance(item.args, str):
            raise ApprovalInvalid(f"a 'response' to the approval of {action!r} carries its text "
                                  f"in 'args'. {_WAITS}", malformed=True)
        return Answer("reject", item.args)
    if not isinstance(item.args, _InboxAction):
        raise ApprovalInvalid(f"an 'edit' of {action!r} carries {{'action': {action!r}, "
                              f"'args': {{...}}}} in 'args'. {_WAITS}", malformed=True)
    edited = _edited(action, item.args.action, item.args.args)
    return Answer("approve", None, {k: typed_like(args.get(k), v, k) for k, v in edited.items()})


def typed_like(original: Any, text: Any, name: str) -> Any:
    """Agent Inbox edits arguments in text fields: ``text`` back in the type of ``original``
    (numbers, booleans, JSON for lists and objects); anything else stays as sent."""
    if not isinstance(text, str) or isinstance(original, str):
        return text
    value = text.strip()
    try:
        if isinstance(original, bool):
            if value.lower() not in ("true", "false"):
                raise ValueError(value)
            return value.lower() == "true"
        if isinstance(original, int):
            return int(value)
        if isinstance(original, float):
            return float(value)
        if isinstance(original, Decimal):
            return Decimal(value)
        if isinstance(original, (list, dict)) or original is None:
            return json.loads(value) if original is not None or value[:1] in "[{" else text
    except (ValueError, InvalidOperation, json.JSONDecodeError):
        raise ApprovalInvalid(f"the edited {name!r} must be a {type(original).__name__} like "
                              f"{original!r}, got {text!r}. {_WAITS}", malformed=True) from None
    return text
