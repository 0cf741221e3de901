"""The layers of the README's layout hold in the imports: each part of steward/ imports only
what its layer may (type-only imports included), so nothing below reaches into what is above."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

STEWARD = Path(__file__).resolve().parent.parent / "steward"
BOTTOM = {"steward.errors", "steward.identity"}
STORAGE = {"steward.storage"}
PARTS = {"steward.checkpointers", "steward.audit", "steward.guardrails.records",
         "steward.guardrails.resumes", "steward.guardrails.schema", "steward.guardrails.redact",
         "steward.nodes.schema", "steward.memory.schema", "steward.memory.pgvector"}
NODES = {"steward.context", "steward.guardrails", "steward.nodes", "steward.memory",
         "steward.state"}
# What each group may import, besides itself; a module belongs to the longest prefix here.
MAY = {
    "steward.errors": set(),
    "steward.identity": {"steward.errors"},
    "steward.storage": BOTTOM,
    "steward.checkpointers": BOTTOM | STORAGE,
    "steward.guardrails.redact": BOTTOM,
    "steward.guardrails.schema": STORAGE,
    "steward.nodes.schema": STORAGE,
    "steward.memory.schema": STORAGE | {"steward.memory.pgvector"},
    "steward.memory.pgvector": STORAGE,
    "steward.audit": BOTTOM | STORAGE | {"steward.checkpointers", "steward.guardrails.redact"},
    "steward.guardrails.records": BOTTOM | STORAGE | {"steward.checkpointers", "steward.audit",
                                                      "steward.guardrails.policy"},
    "steward.guardrails.resumes": BOTTOM | {"steward.checkpointers"},
    "steward.context": BOTTOM | STORAGE | PARTS | {"steward.guardrails.guard"},  # its type
    "steward.guardrails": BOTTOM | STORAGE | PARTS | NODES,
    "steward.nodes": BOTTOM | STORAGE | PARTS | NODES,
    "steward.memory": BOTTOM | STORAGE | PARTS | NODES,
    # Middleware for LangChain agents: it runs inside their tool node, as the nodes do.
    "steward.agents": BOTTOM | STORAGE | PARTS | NODES,
    "steward.state": BOTTOM,
    "steward.tokens": BOTTOM,
    "steward.options": BOTTOM | STORAGE | PARTS | NODES,
    # Submitted runs: the job queue (procrastinate's tables) and the langgraph.json loader.
    "steward.jobs": BOTTOM | STORAGE,
    # The scorecard (steward.report): it reads the parts' tables, and renders what it read.
    "steward.report": BOTTOM | STORAGE | PARTS,
    "steward.runtime": BOTTOM | STORAGE | PARTS | NODES | {"steward.options", "steward.jobs",
                                                            "steward.report"},
    "steward.telemetry": BOTTOM,  # an exporter for the audit handler's spans (the otel extra)
}
ABOVE = {"steward.graphs", "steward.examples", "steward.cli", "steward.server", "steward.workers",
         "steward.aws", "steward.evaluation", "steward"}


def _modules() -> list[tuple[str, Path]]:
    out = []
    for path in sorted(STEWARD.rglob("*.py")):
        parts = path.relative_to(STEWARD.parent).with_suffix("").parts
        out.append((".".join(p for p in parts if p != "__init__"), path))
    return out


def _group(module: str, groups: set[str]) -> str | None:
    found = [g for g in groups if module == g or module.startswith(g + ".")]
    return max(found, key=len) if found else None


def _imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names |= {f"{node.module}.{a.name}" for a in node.names}
        elif isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
    return {n for n in names if n == "steward" or n.startswith("steward.")}


@pytest.mark.parametrize(("module", "path"), _modules(), ids=[m for m, _ in _modules()])
def test_a_module_imports_only_its_layer_and_below(module: str, path: Path) -> None:
    group = _group(module, set(MAY))
    if group is None:
        assert _group(module, ABOVE) is not None, f"{module} is in no layer: place it"
        return
    allowed = MAY[group] | {group}
    for name in _imports(path):
        target = _group(name, set(MAY) | ABOVE)
        if target is None or name == "steward":
            continue  # e.g. "steward.x.y" where only "steward.x.y.z" is named
        ok = any(name == a or name.startswith(a + ".") or a.startswith(name + ".")
                 for a in allowed)
        assert ok, f"{module} ({group}) imports {name}, above its layer"


def test_the_checker_sees_a_violation(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("from steward.runtime import Runtime\nimport steward.audit.log\n")
    assert _imports(bad) == {"steward.runtime", "steward.runtime.Runtime", "steward.audit.log"}
    assert _group("steward.checkpointers.saver", set(MAY)) == "steward.checkpointers"
    assert _group("steward.guardrails.records", set(MAY)) == "steward.guardrails.records"
    assert "steward.runtime" not in MAY["steward.checkpointers"]
