"""LangChain's Agent Chat UI under ``next dev``, and headless Chromium, for browser tests.

The UI is the unmodified snapshot in ``../shared/agent-chat-ui`` (``$STEWARD_CHAT_UI`` to use
another copy). :class:`ChatUI` copies it into a temporary directory, installs its npm
dependencies there with the pnpm its ``package.json`` names (from the npm registry, through
``npx``), and runs ``next dev`` on a free loopback port with ``NEXT_PUBLIC_API_URL`` and
``NEXT_PUBLIC_ASSISTANT_ID`` pointing at a LangGraph server.

- **Cache.** pnpm's content-addressed store lives outside the repository, in
  ``~/.cache/steward-chat-ui/<sha256 of pnpm-lock.yaml>/store`` (``$STEWARD_CHAT_UI_CACHE``
  for another root), so only the first run downloads; later runs link from it, offline.
- **Fonts.** The UI's layout loads Inter with ``next/font/google``, which ``next dev`` fetches
  from Google Fonts while compiling. Offline, it retries three times, logs the failure and
  falls back to a local font (with a 3 s timeout per try where the host name resolves but no
  connection is made). ``NEXT_FONT_GOOGLE_MOCKED_RESPONSES`` (next's own switch for its
  tests: a module mapping each Google Fonts URL to its CSS) makes that deterministic: every
  family is answered with an ``@font-face`` of local fonts, and nothing is fetched.
- **Chromium** is Debian's (``/usr/bin/chromium``, ``$STEWARD_CHROMIUM``): Playwright
  launches it by path (``executable_path``) and never downloads a browser; the flags keep it
  from calling home, which this machine's closed network refuses many times a second.

Everything (the copy, ``.next``, the logs) stays in the given work directory; the timings of
the install and of the first compile are kept in ``timings`` and written to ``timings.json``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

from _langgraph_server import free_port
from _support import ROOT

SNAPSHOT = Path(os.environ.get("STEWARD_CHAT_UI", ROOT.parent / "shared" / "agent-chat-ui"))
CHROMIUM = Path(os.environ.get("STEWARD_CHROMIUM", "/usr/bin/chromium"))
CACHE = Path(os.environ.get("STEWARD_CHAT_UI_CACHE",
                            Path.home() / ".cache" / "steward-chat-ui"))
CHROMIUM_ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage"]
MIN_NODE = (18, 18)  # next 15's engines field

# next/font/google's mocked responses: whatever family or URL, local fonts and no fetch.
FONTS_MOCK = """// NEXT_FONT_GOOGLE_MOCKED_RESPONSES for an offline `next dev` (tests/_chat_ui.py)
const css = `@font-face {
  font-family: 'Inter';
  font-style: normal;
  font-weight: 100 900;
  font-display: swap;
  src: local('Inter'), local('DejaVu Sans'), local('Liberation Sans'), local('Arial');
}
`;
module.exports = new Proxy({}, { get: () => css });
"""


def _node_version() -> tuple[int, ...] | None:
    node = shutil.which("node")
    if node is None:
        return None
    out = subprocess.run([node, "--version"], capture_output=True, text=True, check=False)
    try:
        return tuple(int(p) for p in out.stdout.strip().lstrip("v").split(".")[:2])
    except ValueError:
        return None


def missing() -> str | None:
    """Why the browser test cannot run here (the fix in the message), or None."""
    if not (SNAPSHOT / "package.json").is_file() or not (SNAPSHOT / "pnpm-lock.yaml").is_file():
        return (f"no Agent Chat UI snapshot at {SNAPSHOT} (expected ../shared/agent-chat-ui "
                "beside the repository, or set STEWARD_CHAT_UI)")
    if not os.access(CHROMIUM, os.X_OK):
        return f"no Chromium at {CHROMIUM}: apt-get install chromium (or set STEWARD_CHROMIUM)"
    version = _node_version()
    if version is None or shutil.which("npx") is None:
        return "no Node.js (node and npx on PATH): apt-get install nodejs npm"
    if version < MIN_NODE:
        return f"Node.js {'.'.join(map(str, version))} is older than next 15 needs (18.18)"
    try:
        import playwright  # noqa: F401
    except ImportError:
        return "Python playwright is not installed: pip install -e '.[dev]'"
    return None


class ChatUI:
    """Agent Chat UI's ``next dev`` in ``workdir`` (see the module docstring)."""

    def __init__(self, workdir: Path, api_url: str, assistant_id: str) -> None:
        self.workdir, self.api_url, self.assistant_id = workdir, api_url, assistant_id
        self.app = workdir / "agent-chat-ui"
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None
        self.timings: dict[str, float] = {}
        self._started = 0.0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log(self) -> Path:
        return self.workdir / "next.log"

    def _time(self, what: str, since: float) -> None:
        self.timings[what] = round(time.monotonic() - since, 2)
        (self.workdir / "timings.json").write_text(json.dumps(self.timings, indent=2))

    def install(self) -> None:
        """Copy the snapshot and install its dependencies from the lockfile, with the cache."""
        started = time.monotonic()
        shutil.copytree(SNAPSHOT, self.app, ignore=shutil.ignore_patterns(
            "node_modules", ".next"), copy_function=shutil.copyfile)
        for folder, _, _ in os.walk(self.app):  # shared/ may be read-only: the copy is not
            os.chmod(folder, 0o755)
        lock = (self.app / "pnpm-lock.yaml").read_bytes()
        store = CACHE / hashlib.sha256(lock).hexdigest()[:16] / "store"
        warm = store.is_dir()
        manager = json.loads((self.app / "package.json").read_text()).get("packageManager",
                                                                            "pnpm@10")
        command = ["npx", "--yes", manager.split("+")[0], "install", "--frozen-lockfile",
                   "--prefer-offline", "--store-dir", str(store), "--reporter", "append-only"]
        env = {**os.environ, "CI": "1", "npm_config_update_notifier": "false",
               "npm_config_fund": "false", "npm_config_audit": "false"}
        with (self.workdir / "install.log").open("ab") as log:
            done = subprocess.run(command, cwd=self.app, env=env, stdout=log,
                                  stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                  timeout=600, check=False)
        if done.returncode != 0:
            tail = (self.workdir / "install.log").read_text()[-3000:]
            raise RuntimeError(f"{' '.join(command)} failed ({done.returncode}):\n{tail}")
        self._time("npm_install_warm" if warm else "npm_install_cold", started)

    def start(self) -> None:
        """Start ``next dev``; :meth:`ready` waits for it and its first compile."""
        mock = self.workdir / "next-font-google-mocked-responses.cjs"
        mock.write_text(FONTS_MOCK)
        self.port = free_port()
        env = {**os.environ, "NEXT_PUBLIC_API_URL": self.api_url,
               "NEXT_PUBLIC_ASSISTANT_ID": self.assistant_id,
               "NEXT_FONT_GOOGLE_MOCKED_RESPONSES": str(mock),
               "NEXT_TELEMETRY_DISABLED": "1"}
        self._started = time.monotonic()
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                ["node", str(self.app / "node_modules" / "next" / "dist" / "bin" / "next"),
                 "dev", "--hostname", "127.0.0.1", "--port", str(self.port)],
                cwd=self.app, env=env, stdout=log, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, start_new_session=True)  # its workers: one group

    def ready(self, timeout: float = 300) -> None:
        """Wait until ``next dev`` listens, then for the page's first compile (the first
        request to ``/`` compiles it, server and client bundles)."""
        assert self.proc is not None, "start() first"
        deadline = time.monotonic() + timeout
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                break
            except OSError:
                assert self.proc.poll() is None, self.log.read_text()[-3000:]
                assert time.monotonic() < deadline, "next dev did not listen"
                time.sleep(0.2)
        self._time("next_dev_listening", self._started)
        compiling = time.monotonic()
        try:
            with urllib.request.urlopen(self.url + "/",
                                        timeout=deadline - time.monotonic()) as response:
                assert response.status == 200
        except urllib.error.HTTPError as exc:
            exc.close()
            raise AssertionError(f"next dev answered {exc.code}:\n"
                                 f"{self.log.read_text()[-3000:]}") from exc
        self._time("next_dev_first_compile", compiling)

    def stop(self) -> None:
        """Stop ``next dev`` and every process it started (its own process group)."""
        if self.proc is None:
            return
        group = self.proc.pid
        try:
            os.killpg(group, signal.SIGTERM)
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(group, signal.SIGKILL)
            self.proc.wait(timeout=10)
        except ProcessLookupError:
            pass
        with contextlib.suppress(ProcessLookupError):  # a worker that outlived its parent
            os.killpg(group, signal.SIGKILL)
        self.proc = None
