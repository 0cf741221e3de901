"""A local HTTP stub that speaks the OpenAI chat-completions and the Bedrock Converse wire
formats, so that tests drive the real ``langchain-openai`` and ``langchain-aws`` clients
without a request leaving the machine.

The stub answers every structured-output request with ``reply`` (a dict): as JSON content when
the request asks for a JSON schema, or as a call of the first tool it offers. Given ``answer``,
a conversation that ends with a tool's result gets it as plain text instead: the end of an
agent's turn (an agent loop calls the model again after each tool). It keeps every request
body it received in ``requests`` for the test to inspect.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class ModelStub:
    def __init__(self, reply: dict[str, Any], answer: str | None = None) -> None:
        self.reply = reply
        self.answer = answer
        self.requests: list[tuple[str, dict[str, Any]]] = []
        self.url = ""

    # -- OpenAI chat completions -----------------------------------------------------------------

    def openai(self, body: dict[str, Any]) -> dict[str, Any]:
        message: dict[str, Any] = {"role": "assistant", "content": None}
        finish = "stop"
        fmt = body.get("response_format") or {}
        last = (body.get("messages") or [{}])[-1]
        if self.answer is not None and last.get("role") == "tool":
            message["content"] = self.answer
        elif fmt.get("type") in ("json_schema", "json_object"):
            message["content"] = json.dumps(self.reply)
        elif body.get("tools"):
            name = body["tools"][0]["function"]["name"]
            message["tool_calls"] = [{"id": "call_1", "type": "function", "function": {
                "name": name, "arguments": json.dumps(self.reply)}}]
            finish = "tool_calls"
        else:
            message["content"] = json.dumps(self.reply)
        return {"id": "chatcmpl-stub", "object": "chat.completion", "created": int(time.time()),
                "model": body.get("model", "stub"),
                "choices": [{"index": 0, "message": message, "finish_reason": finish,
                             "logprobs": None}],
                "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}}

    # -- Bedrock Converse ------------------------------------------------------------------------

    def converse(self, body: dict[str, Any]) -> dict[str, Any]:
        tools = (body.get("toolConfig") or {}).get("tools") or []
        last = (body.get("messages") or [{}])[-1]
        content: list[dict[str, Any]]
        if self.answer is not None and any("toolResult" in c for c in last.get("content", [])):
            content, stop = [{"text": self.answer}], "end_turn"
        elif tools:
            name = tools[0]["toolSpec"]["name"]
            content = [{"toolUse": {"toolUseId": "tooluse_1", "name": name, "input": self.reply}}]
            stop = "tool_use"
        else:
            content, stop = [{"text": json.dumps(self.reply)}], "end_turn"
        return {"output": {"message": {"role": "assistant", "content": content}},
                "stopReason": stop,
                "usage": {"inputTokens": 10, "outputTokens": 5, "totalTokens": 15},
                "metrics": {"latencyMs": 1}}


@contextmanager
def serve(reply: dict[str, Any], answer: str | None = None) -> Iterator[ModelStub]:
    stub = ModelStub(reply, answer)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length) or b"{}")
            stub.requests.append((self.path, body))
            if self.path.endswith("/chat/completions"):
                answer = stub.openai(body)
            elif self.path.endswith("/converse"):
                answer = stub.converse(body)
            else:
                self.send_error(404, f"the stub does not speak {self.path}")
                return
            data = json.dumps(answer).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    stub.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield stub
    finally:
        server.shutdown()
        server.server_close()
