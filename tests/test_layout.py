"""The tests mirror steward/: a test of ``steward/<package>/<module>.py`` lives in
``tests/<package>/test_<module>.py``, of a top-level ``steward/<module>.py`` in
``tests/test_<module>.py``; shared helpers and worker scripts stay in tests/ itself."""

from __future__ import annotations

from collections import Counter

from _support import ROOT, SUPPORT

STEWARD = ROOT / "steward"
PACKAGES = {p.parent.name for p in STEWARD.glob("*/*.py")}  # storage/ is a namespace package
MODULES = {p.stem for p in STEWARD.glob("*.py")} - {"__init__"}
# Top-level tests of no single module: the whole of Steward, or what surrounds it.
ACROSS = {
    "test_layout.py",      # this file
    "test_public_api.py",  # `steward`'s exported names and the demo, end to end
    "test_readme.py",      # README.md's examples
    "test_notebooks.py",   # notebooks/
    "test_bench_smoke.py",  # bench/
    "test_pg_harness.py",  # tests/_pg.py, the throwaway PostgreSQL server
    "test_layers.py",      # every module's imports against the README's layers
    "test_twins.py",       # every public sync method's async twin, across the parts
    "test_deploy.py",      # deploy/aws/: templates, IAM policy, container definition
}


def _dirs() -> list[str]:
    return sorted(p.name for p in SUPPORT.iterdir()
                  if p.is_dir() and not p.name.startswith((".", "_")))


def test_each_test_directory_mirrors_a_steward_package() -> None:
    assert PACKAGES >= {"storage", "checkpointers", "guardrails", "audit", "memory"}  # found
    strays = [d for d in _dirs() if d not in PACKAGES]
    assert not strays, f"tests/{strays[0]}/ names no package steward/{strays[0]}/"


def test_top_level_tests_are_of_top_level_modules_or_across_steward() -> None:
    assert {"runtime", "identity", "options"} <= MODULES  # found
    for path in sorted(SUPPORT.glob("test_*.py")):
        name = path.name.removeprefix("test_").removesuffix(".py")
        assert name not in PACKAGES, (
            f"tests/{path.name} tests steward/{name}/: move it to tests/{name}/")
        assert name in MODULES or path.name in ACROSS, (
            f"tests/{path.name}: put it in tests/<package>/ beside what it tests, or name it "
            "after a top-level module of steward/, or list it in ACROSS with a reason")
    assert all((SUPPORT / name).is_file() for name in ACROSS)  # no stale entries


def test_test_module_names_are_unique_and_there_are_no_init_files() -> None:
    # Without __init__.py files pytest imports each test module by its base name (the default
    # "prepend" import mode), so two test_x.py in different directories would collide.
    found = [p for d in _dirs() for p in (SUPPORT / d).rglob("*.py")]
    assert not [p for p in found if p.name == "__init__.py"]
    names = Counter(p.name for p in [*found, *SUPPORT.glob("*.py")])
    assert [n for n, count in names.items() if count > 1] == []
    assert all(p.name.startswith("test_") or p.name == "conftest.py" for p in found), (
        "helpers shared by tests belong in tests/_support.py (or another tests/_*.py)")
