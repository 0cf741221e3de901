"""The real LangGraph server (``langgraph dev``) serving the repository's ``langgraph.json``
with Steward's checkpointer and auth, started in a directory of its own, and the principals'
tokens it accepts. Shared by tests/server/test_server.py and tests/server/test_chat_ui.py."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import jwt
from _support import ROOT

SECRET = "steward-test-secret-of-32-bytes-at-least"
LANGGRAPH = Path(sys.executable).with_name("langgraph")


def token(sub: str, tenant: str, roles: list[str], secret: str = SECRET) -> str:
    """An HS256 JWT naming a principal, as ``steward token`` mints them."""
    return jwt.encode({"sub": sub, "tenant": tenant, "roles": roles, "exp": time.time() + 3600},
                      secret, algorithm="HS256")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def repo_config(workdir: Path) -> Path:
    """The repository's ``langgraph.json`` with absolute paths, written into ``workdir`` (the
    in-memory server keeps its runs in the directory it runs from: never the repository)."""
    config = json.loads((ROOT / "langgraph.json").read_text())
    config["dependencies"] = [str(ROOT)]
    config["graphs"] = {k: str(ROOT / v.lstrip("./")) for k, v in config["graphs"].items()}
    for key in ("checkpointer", "auth"):
        config[key]["path"] = str(ROOT / config[key]["path"].lstrip("./"))
    config["http"]["app"] = str(ROOT / config["http"]["app"].lstrip("./"))
    path = workdir / "langgraph.json"
    path.write_text(json.dumps(config))
    return path


class Server:
    """``langgraph dev`` on a free loopback port, its log in ``workdir/server.log``."""

    def __init__(self, workdir: Path, db: str, env: dict[str, str] | None = None) -> None:
        self.workdir, self.db, self.env = workdir, db, env or {}
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log(self) -> Path:
        return self.workdir / "server.log"

    def start(self, port: int | None = None) -> None:
        self.port = port or free_port()
        env = {**os.environ, "LANGGRAPH_CLI_NO_ANALYTICS": "1", "STEWARD_DB": self.db,
               "STEWARD_JWT_SECRET": SECRET, "PYTHONPATH": os.pathsep.join(sys.path),
               **self.env}
        with self.log.open("ab") as log:  # logs outside the repository
            self.proc = subprocess.Popen(
                [str(LANGGRAPH), "dev", "--no-browser", "--no-reload", "--host", "127.0.0.1",
                 "--port", str(self.port), "--config", str(self.workdir / "langgraph.json")],
                cwd=self.workdir, env=env, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 90
        while True:
            try:
                with urllib.request.urlopen(f"{self.url}/ok", timeout=2) as r:
                    if r.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            assert self.proc.poll() is None, self.log.read_text()[-3000:]
            assert time.monotonic() < deadline, "langgraph dev did not start"
            time.sleep(0.3)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
            self.proc = None

    def audit(self, thread_id: str, tok: str, *, until: Any,
              api_key: bool = False) -> list[dict[str, Any]]:
        """The thread's audit events from the server's SSE route, read until ``until(events)``
        is true (the route streams on, as events are written); the token goes as a bearer
        token, or with ``api_key`` as ``X-Api-Key``."""
        headers = {"X-Api-Key": tok} if api_key else {"Authorization": f"Bearer {tok}"}
        request = urllib.request.Request(f"{self.url}/steward/threads/{thread_id}/audit",
                                         headers=headers)
        events: list[dict[str, Any]] = []
        with urllib.request.urlopen(request, timeout=20) as response:
            for raw in response:
                line = raw.decode().strip()
                if line.startswith("data: "):
                    events.append(json.loads(line[6:]))
                    if until(events):
                        break
        return events
