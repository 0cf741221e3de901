"""deploy/aws/: the templates render into a request AgentCore's control API accepts (checked
against botocore's model of it, offline), a least-privilege IAM policy, and a container
definition whose settings are the ones Steward reads."""

from __future__ import annotations

import ast
import importlib.util
import json
import re
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from _support import ROOT

AWS = ROOT / "deploy" / "aws"
EXAMPLE = AWS / "values.example.env"


def _render_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("render", AWS / "render.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


render = _render_module()


@pytest.fixture(scope="module")
def rendered() -> dict[str, Any]:
    return render.render(render.read_env(EXAMPLE))  # type: ignore[no-any-return]


def test_the_runtime_request_is_what_agentcore_takes(rendered: dict[str, Any],
                                                     tmp_path: Path) -> None:
    runtime = rendered["agent-runtime.json"]
    assert "${" not in json.dumps(rendered)
    assert runtime["protocolConfiguration"]["serverProtocol"] == "HTTP"
    # The bearer token reaches the container, which names the principal by it.
    assert runtime["requestHeaderConfiguration"]["requestHeaderAllowlist"] == ["Authorization"]
    assert runtime["authorizerConfiguration"]["customJWTAuthorizer"]["discoveryUrl"].startswith(
        "https://cognito-idp.eu-west-1.amazonaws.com/")
    env = runtime["environmentVariables"]
    assert env["STEWARD_DB"].startswith("postgresql://steward_app@steward.cluster-")
    assert "sslmode=verify-full" in env["STEWARD_DB"] and env["STEWARD_DB_IAM_AUTH"] == "1"
    render.main([str(EXAMPLE), str(tmp_path)])
    assert json.loads((tmp_path / "agent-runtime.json").read_text()) == runtime


def test_a_malformed_request_or_a_missing_value_fails_before_aws(rendered: dict[str, Any],
                                                                 tmp_path: Path) -> None:
    bad = json.loads(json.dumps(rendered["agent-runtime.json"]))
    bad["protocolConfiguration"] = {"serverProtocol": "HTTP", "prot": 8080}
    with pytest.raises(SystemExit, match="prot"):
        render.check_runtime(bad)
    bad = json.loads(json.dumps(rendered["agent-runtime.json"]))
    bad["lifecycleConfiguration"]["maxLifetime"] = "8h"
    with pytest.raises(SystemExit, match="maxLifetime"):
        render.check_runtime(bad)
    partial = tmp_path / "values.env"
    partial.write_text("\n".join(line for line in EXAMPLE.read_text().splitlines()
                                 if not line.startswith(("UserPoolId=", "Region="))))
    with pytest.raises(SystemExit, match="Region, UserPoolId"):
        render.render(render.read_env(partial))


# Actions that take no resource-level permission (AWS's service authorization reference).
UNSCOPED = {"xray:PutTraceSegments", "xray:PutTelemetryRecords", "ecr:GetAuthorizationToken",
            "cloudwatch:PutMetricData"}


def test_the_iam_policy_grants_kms_rds_cloudwatch_and_the_image_nothing_else(
        rendered: dict[str, Any]) -> None:
    statements = rendered["iam-policy.json"]["Statement"]
    actions: set[str] = set()
    for statement in statements:
        assert statement["Effect"] == "Allow"
        acts = statement["Action"] if isinstance(statement["Action"], list) \
            else [statement["Action"]]
        actions |= set(acts)
        resources = statement["Resource"] if isinstance(statement["Resource"], list) \
            else [statement["Resource"]]
        assert all("*" not in a for a in acts)
        if "*" in resources:
            assert set(acts) <= UNSCOPED, f"{statement['Sid']} grants {acts} on every resource"
        else:
            assert all(r.startswith("arn:aws:") and ":123456789012:" in r for r in resources)
    assert {a.split(":")[0] for a in actions} == {"kms", "rds-db", "logs", "xray", "cloudwatch",
                                                   "ecr"}
    assert {a for a in actions if a.startswith("kms:")} == {"kms:GenerateDataKey",
                                                            "kms:Decrypt"}
    [metrics] = [s for s in statements if s["Action"] == "cloudwatch:PutMetricData"]
    assert metrics["Condition"]["StringEquals"]["cloudwatch:namespace"] == "bedrock-agentcore"
    trust = rendered["trust-policy.json"]["Statement"][0]
    assert trust["Principal"] == {"Service": "bedrock-agentcore.amazonaws.com"}
    assert trust["Condition"]["StringEquals"]["aws:SourceAccount"] == "123456789012"


def _literals(source: str) -> set[str]:
    """The STEWARD_* names a module spells as whole string literals (what os.environ is read
    with), not those its docstrings only mention."""
    tree = ast.parse(source)
    docs = {id(body[0].value) for node in ast.walk(tree)
            if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef,
                                 ast.AsyncFunctionDef))
            and (body := node.body) and isinstance(body[0], ast.Expr)
            and isinstance(body[0].value, ast.Constant)}
    return {node.value for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str)
            and id(node) not in docs and re.fullmatch(r"STEWARD_[A-Z_]+", node.value)}


def _steward_reads() -> set[str]:
    return set().union(*(_literals(p.read_text()) for p in (ROOT / "steward").rglob("*.py")))


def test_steward_reads_sees_literals_not_docstrings() -> None:
    source = ('"""Set STEWARD_MODULE_DOC."""\n'
              'import os\n'
              'def f():\n'
              '    """Reads STEWARD_FUNC_DOC (no: only says so)."""\n'
              '    # STEWARD_COMMENT\n'
              '    return os.environ.get("STEWARD_READ"), "set STEWARD_IN_A_MESSAGE"\n')
    assert _literals(source) == {"STEWARD_READ"}
    assert {"STEWARD_DB", "STEWARD_GRAPH", "STEWARD_JWT_JWKS_URL",
            "STEWARD_DB_IAM_AUTH"} <= _steward_reads()


def test_the_container_sets_only_what_steward_reads_and_runs_its_entrypoint() -> None:
    dockerfile = (AWS / "Dockerfile").read_text()
    assert "FROM --platform=linux/arm64 " in dockerfile  # AgentCore runs arm64 images
    assert "EXPOSE 8080" in dockerfile
    [cmd] = re.findall(r"^CMD (\[.*\])$", dockerfile, flags=re.M)
    assert json.loads(cmd)[-3:] == ["python", "-m", "steward.aws.agentcore"]
    [extras] = re.findall(r"pip install '\.\[([\w,]+)\]'", dockerfile)
    pyproject = (ROOT / "pyproject.toml").read_text()
    section = pyproject.split("[project.optional-dependencies]")[1].split("\n[")[0]
    declared = set(re.findall(r"^(\w+) = \[", section, flags=re.M))
    assert set(extras.split(",")) <= set(declared) and "aws" in extras.split(",")
    runtime_env = render.read_env(AWS / "runtime.env")
    set_in_image = set(re.findall(r"\b(STEWARD_[A-Z_]+)=", dockerfile))
    assert set(runtime_env) | set_in_image >= {"STEWARD_DB", "STEWARD_GRAPH",
                                               "STEWARD_JWT_JWKS_URL"}
    unread = {n for n in set(runtime_env) | set_in_image if n.startswith("STEWARD_")} \
        - _steward_reads()
    assert not unread, f"deploy/aws sets variables Steward never reads: {sorted(unread)}"
