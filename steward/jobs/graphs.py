"""The graphs of a ``langgraph.json``, by name, as the LangGraph server loads them.

An entry ``"refund": "./steward/server/runtime.py:refund_graph"`` names a file (relative to
the ``langgraph.json``) and an attribute of it: a compiled graph, a builder (a
``StateGraph``), or a factory, sync or async, taking the run's config (or nothing) and
returning either. Whatever it is, :meth:`Graphs.abuild` returns a compiled graph bound to the
checkpointer and store it is given, so that a worker runs each graph on its own runtime; a
factory finds that runtime in the config (``steward.context.RUNTIME_KEY``), where
``rt.config`` puts it.

Which file: the path given, else ``$STEWARD_GRAPHS``, else ``./langgraph.json``.
"""

from __future__ import annotations

import importlib.util
import inspect
import json
import os
import sys
import threading
from pathlib import Path
from types import ModuleType
from typing import Any

from langchain_core.runnables import RunnableBinding
from langgraph.graph import StateGraph
from langgraph.pregel import Pregel

from steward.errors import ConfigError

__all__ = ["ENV", "Graphs"]

ENV = "STEWARD_GRAPHS"
_modules: dict[Path, ModuleType] = {}
_lock = threading.Lock()


class Graphs:
    """The graph entries of one ``langgraph.json``."""

    def __init__(self, source: Path, entries: dict[str, str]) -> None:
        self.source = source
        self.entries = entries

    @classmethod
    def locate(cls, path: str | os.PathLike[str] | None = None) -> Graphs:
        """Read ``path`` (else ``$STEWARD_GRAPHS``, else ``./langgraph.json``); ConfigError if
        it is missing or has no ``graphs`` object of ``"name": "file.py:attr"`` entries."""
        given = path if path is not None else os.environ.get(ENV) or "langgraph.json"
        source = Path(given).resolve()
        try:
            data = json.loads(source.read_text())
        except OSError as exc:
            raise ConfigError(f"no graphs file {str(source)!r} ({exc.strerror}): name a "
                              f"langgraph.json with --config or ${ENV}.") from exc
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{str(source)!r} is not valid JSON ({exc.msg}, line "
                              f"{exc.lineno}): fix it.") from exc
        graphs = data.get("graphs") if isinstance(data, dict) else None
        if not isinstance(graphs, dict) or not graphs:
            raise ConfigError(f"{str(source)!r} has no \"graphs\" object: add one, e.g. "
                              "{\"graphs\": {\"refund\": \"./graphs.py:refund\"}}.")
        entries = {}
        for name, spec in graphs.items():
            spec = spec.get("path") if isinstance(spec, dict) else spec
            if not isinstance(spec, str) or ":" not in spec:
                raise ConfigError(f"graph {name!r} in {str(source)!r} is {spec!r}: write "
                                  "\"./file.py:attribute\".")
            entries[str(name)] = spec
        return cls(source, entries)

    def names(self) -> list[str]:
        return sorted(self.entries)

    def check(self, name: str) -> None:
        """ConfigError unless ``name`` is one of the graphs."""
        if name not in self.entries:
            raise ConfigError(f"unknown graph {name!r}: {str(self.source)!r} names "
                              f"{', '.join(self.names())}.")

    def target(self, name: str) -> Any:
        """The attribute an entry names (its file imported once per process)."""
        self.check(name)
        file, _, attr = self.entries[name].rpartition(":")
        path = (self.source.parent / file).resolve()
        module = _import(path, name)
        try:
            return getattr(module, attr)
        except AttributeError:
            raise ConfigError(f"graph {name!r}: {str(path)!r} has no {attr!r}: fix its entry "
                              f"in {str(self.source)!r}.") from None

    async def abuild(self, name: str, checkpointer: Any, store: Any, config: Any) -> Any:
        """The graph ``name``, compiled and bound to ``checkpointer`` and ``store``; a factory
        is called with ``config`` (a run's config, carrying the runtime)."""
        found = self.target(name)
        if inspect.isroutine(found):
            takes = len(inspect.signature(found).parameters)
            found = found(config) if takes else found()
            if inspect.isawaitable(found):
                found = await found
        return bind(found, checkpointer, store, name)


def bind(graph: Any, checkpointer: Any, store: Any, name: str = "graph") -> Any:
    """A compiled graph on ``checkpointer`` and ``store``, from a builder, a compiled graph
    or a compiled graph with a config bound (``with_config``)."""
    if isinstance(graph, StateGraph):
        return graph.compile(checkpointer=checkpointer, store=store)
    if isinstance(graph, Pregel):
        return graph.copy(update={"checkpointer": checkpointer, "store": store})
    if isinstance(graph, RunnableBinding) and isinstance(graph.bound, Pregel):
        return graph.model_copy(update={"bound": bind(graph.bound, checkpointer, store)})
    raise ConfigError(f"graph {name!r} is a {type(graph).__name__}: its langgraph.json entry "
                      "must name a compiled graph, a StateGraph or a factory returning one.")


def _import(path: Path, name: str) -> ModuleType:
    with _lock:
        if path in _modules:
            return _modules[path]
        spec = importlib.util.spec_from_file_location(
            f"steward_graphs_{abs(hash(str(path)))}", path)
        if spec is None or spec.loader is None or not path.is_file():
            raise ConfigError(f"graph {name!r}: no Python file {str(path)!r}: fix its entry.")
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        try:
            spec.loader.exec_module(module)
        except BaseException:
            del sys.modules[spec.name]
            raise
        _modules[path] = module
        return module
