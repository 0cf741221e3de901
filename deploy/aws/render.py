"""Fill in this directory's templates for one deployment, and check them before AWS sees them.

    python deploy/aws/render.py values.env build/

``values.env`` holds ``Name=value`` lines for every ``${Name}`` the templates use (``Region``,
``Account``, ``Repository``, ``KmsKeyArn``, ...; the command names any that are missing).
Writes to ``build/``: ``agent-runtime.json`` (the input of ``aws bedrock-agentcore-control
create-agent-runtime --cli-input-json file://build/agent-runtime.json``, with
``runtime.env`` as its environment variables), ``iam-policy.json`` and ``trust-policy.json``.
The runtime's request is checked against botocore's own model of the AgentCore control API,
offline, so a misspelt field fails here rather than in the console.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
PLACEHOLDER = re.compile(r"\$\{(\w+)\}")


def read_env(path: Path) -> dict[str, str]:
    """``Name=value`` lines; blank lines and ``#`` comments skipped; values taken as written."""
    out: dict[str, str] = {}
    for number, line in enumerate(path.read_text().splitlines(), 1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        name, sep, value = text.partition("=")
        if not sep or not name.strip():
            raise SystemExit(f"{path}:{number}: expected Name=value, got {line!r}")
        out[name.strip()] = value.strip()
    return out


def fill(text: str, values: dict[str, str], where: str) -> str:
    missing = sorted({m for m in PLACEHOLDER.findall(text) if m not in values})
    if missing:
        raise SystemExit(f"{where} needs values for: {', '.join(missing)} (add Name=value "
                         "lines to the values file)")
    return PLACEHOLDER.sub(lambda m: values[m.group(1)], text)


def check_runtime(request: dict[str, Any]) -> None:
    """The request as botocore validates it before sending (the service's published model)."""
    import botocore.session
    from botocore.validate import ParamValidator

    model = botocore.session.get_session().get_service_model("bedrock-agentcore-control")
    shape = model.operation_model("CreateAgentRuntime").input_shape
    report = ParamValidator().validate(request, shape)
    if report.has_errors():
        raise SystemExit(f"agent-runtime.json is not a valid CreateAgentRuntime request:\n"
                         f"{report.generate_report()}")


def render(values: dict[str, str]) -> dict[str, Any]:
    env = {name: fill(value, values, "runtime.env")
           for name, value in read_env(HERE / "runtime.env").items()}
    runtime = json.loads(fill((HERE / "agent-runtime.json").read_text(), values,
                              "agent-runtime.json"))
    runtime["environmentVariables"] = env
    check_runtime(runtime)
    return {"agent-runtime.json": runtime,
            **{name: json.loads(fill((HERE / name).read_text(), values, name))
               for name in ("iam-policy.json", "trust-policy.json")}}


def main(argv: list[str]) -> None:
    if len(argv) != 2:
        raise SystemExit(__doc__)
    out = Path(argv[1])
    out.mkdir(parents=True, exist_ok=True)
    for name, document in render(read_env(Path(argv[0]))).items():
        (out / name).write_text(json.dumps(document, indent=2) + "\n")
        print(f"wrote {out / name}")


if __name__ == "__main__":
    main(sys.argv[1:])
