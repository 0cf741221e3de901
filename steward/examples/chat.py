"""The refund chat: a LangChain agent (``create_agent``) under Steward, for chat frontends.

A customer-support chat in which the model refunds orders with one tool, ``refund(order_id,
amount)``, that pays through the demo's payment provider (``$STEWARD_DEMO_LEDGER``, as the
refund workflow does). ``GuardedToolsMiddleware`` puts every call under the chat's Cedar
policy: refunds above 100.00 wait for a manager's approval (an interrupt Agent Chat UI shows
as an approval card), refunds on one thread add up to at most 500.00 (above that the model is
told why not), and each refund is paid once per call, whatever re-runs.

``RefundChatModel`` is a deterministic chat model that needs no network: it reads the user's
last message ("Please refund $120 for order 98765") and calls ``refund``; given the tool's
result it answers in words. Any LangChain chat model with tool calling can take its place
(``build_refund_chat_agent(model=...)``).

The LangGraph server serves it as the graph ``agent`` (``steward.server.runtime.agent_graph``);
it needs the ``agents`` extra (LangChain v1), imported only when the agent is built.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.runnables import Runnable
from langchain_core.tools import BaseTool, tool
from langgraph.prebuilt import ToolRuntime

from steward.examples.refund import pay_refund
from steward.guardrails.policy import Policy
from steward.identity import principal_from_config

if TYPE_CHECKING:
    from langgraph.graph.state import CompiledStateGraph

__all__ = ["CHAT_POLICY", "RefundChatModel", "build_refund_chat_agent", "chat_policy", "refund"]

CHAT_POLICY = """
@id("same-tenant")
permit (principal, action, resource)
when { principal.tenant == context.thread.tenant };

@id("chat-refund-needs-manager")
@approval("manager")
@reason("refunds above 100.00 need a manager's approval")
forbid (principal, action == Action::"refund", resource)
when { context.args.amount.greaterThan(decimal("100.00")) };

@id("chat-refund-cap")
@reason("refunds on one thread add up to at most 500.00")
forbid (principal, action == Action::"refund", resource)
when { context.cumulative.amount.greaterThan(decimal("500.00")) };
"""

SYSTEM_PROMPT = ("You are a customer-support agent. Refund orders with the refund tool "
                 "(amounts in dollars with two decimals, e.g. \"120.00\"), then tell the "
                 "customer what happened.")
HELP = ("I can refund an order: tell me the amount and the order number, e.g. \"Please "
        "refund $120 for order 98765\".")

_AMOUNT = re.compile(r"\$\s*(\d+(?:\.\d{1,2})?)")
_ORDER = re.compile(r"order\s*(?:#|no\.?|number)?\s*:?\s*(\d+)", re.IGNORECASE)


def chat_policy() -> Policy:
    return Policy.from_cedar(CHAT_POLICY)


@tool
def refund(order_id: str, amount: str, runtime: ToolRuntime) -> str:
    """Refund `amount` dollars (a string with two decimals, e.g. "120.00") on the order
    `order_id`, to the customer's original payment method."""
    # The payment is an effect of its own: the provider gets a key it can drop a repeat by.
    txn = pay_refund(order_id, amount)
    principal = principal_from_config(runtime.config)
    by = principal.id if principal else "nobody"
    return f"refunded ${amount} on order {order_id} as {txn} (issued by {by})"


def asked_refund(text: str) -> dict[str, str] | None:
    """The refund a message asks for, as the tool's arguments, or None."""
    amount, order = _AMOUNT.search(text), _ORDER.search(text)
    if amount is None or order is None:
        return None
    return {"order_id": order.group(1), "amount": f"{Decimal(amount.group(1)):.2f}"}


class RefundChatModel(BaseChatModel):
    """A deterministic, offline chat model for the refund chat (see the module docstring);
    ``tool_name`` is the tool it calls (default ``refund``)."""

    tool_name: str = "refund"

    @property
    def _llm_type(self) -> str:
        return "steward-refund-chat"

    def bind_tools(self, tools: Sequence[dict[str, Any] | type | Callable[..., Any] | BaseTool],
                   *, tool_choice: str | None = None,
                   **kwargs: Any) -> Runnable[LanguageModelInput, AIMessage]:
        """The tool is known: it calls ``tool_name`` (create_agent binds the agent's tools)."""
        return self

    def _generate(self, messages: list[BaseMessage], stop: list[str] | None = None,
                  run_manager: CallbackManagerForLLMRun | None = None,
                  **kwargs: Any) -> ChatResult:
        return ChatResult(generations=[ChatGeneration(message=self.reply(messages))])

    def reply(self, messages: Sequence[BaseMessage]) -> AIMessage:
        """The answer to a conversation: a call of the tool for a user's request, words
        about the tool's result, or how to ask."""
        last = messages[-1] if messages else None
        if isinstance(last, ToolMessage):
            if last.status == "error":
                return AIMessage(content=f"I could not issue that refund. {last.text}")
            return AIMessage(content=f"Done: {last.text}.")
        if isinstance(last, HumanMessage):
            args = asked_refund(last.text)
            if args is not None:
                # Deterministic, and unique in the thread: the message it answers, and where.
                seed = f"{last.id}:{len(messages)}:{sorted(args.items())}"
                call_id = "call_" + hashlib.sha256(seed.encode()).hexdigest()[:24]
                return AIMessage(content="", tool_calls=[
                    {"name": self.tool_name, "args": args, "id": call_id,
                     "type": "tool_call"}])
        return AIMessage(content=HELP)


def build_refund_chat_agent(*, model: BaseChatModel | None = None, checkpointer: Any = None,
                            middleware: Sequence[Any] = ()) -> CompiledStateGraph[Any]:
    """The refund chat agent: ``create_agent`` with the ``refund`` tool and
    ``GuardedToolsMiddleware`` (first, then ``middleware``). Run it under a Steward runtime:
    ``checkpointer=rt.checkpointer`` and ``rt.config(thread_id, principal)``."""
    from langchain.agents import create_agent

    from steward.agents import GuardedToolsMiddleware

    graph: CompiledStateGraph[Any] = create_agent(
        model or RefundChatModel(), [refund], system_prompt=SYSTEM_PROMPT,
        middleware=[GuardedToolsMiddleware(), *middleware], checkpointer=checkpointer)
    return graph
