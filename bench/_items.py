"""The memory benchmarks' items, queries and fake embeddings (``bench/memory.py``)."""

from __future__ import annotations

import hashlib
import math
from typing import Any

import numpy as np
from langchain_core.embeddings import Embeddings

import steward

DIMS = 384
RANK = 16  # LowRankEmbeddings' latent dimensions
TENANT = "acme"
ALICE = steward.Principal(id="alice", tenant=TENANT, roles=frozenset({"support"}))
BOB = steward.Principal(id="bob", tenant=TENANT, roles=frozenset({"support"}))
REACH = (TENANT, "user:alice")  # what alice searches


def _seed(text: str) -> int:
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big")


class HashEmbeddings(Embeddings):
    """Deterministic fake embeddings: a standard normal vector seeded by a hash of the text."""

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return [self.embed_query(text) for text in texts]

    def embed_query(self, text: str) -> list[float]:
        vector: list[float] = np.random.default_rng(_seed(text)).standard_normal(DIMS).tolist()
        return vector


class LowRankEmbeddings(Embeddings):
    """Deterministic fake embeddings shaped like real ones: a point of a 16-dimension latent
    space (seeded by a hash of the text) mapped into 384 dimensions by a fixed random matrix,
    plus noise a tenth of its size."""

    basis = np.random.default_rng(17).standard_normal((RANK, DIMS)) / math.sqrt(RANK)

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return [self.embed_query(text) for text in texts]

    def embed_query(self, text: str) -> list[float]:
        rng = np.random.default_rng(_seed(text))
        vector: list[float] = (rng.standard_normal(RANK) @ self.basis
                               + 0.1 * rng.standard_normal(DIMS)).tolist()
        return vector


def namespace(owner: steward.Principal) -> tuple[str, ...]:
    return (TENANT, f"user:{owner.id}", "notes")


def note(owner: steward.Principal, i: int) -> tuple[str, dict[str, Any]]:
    """Item ``i`` of ``owner``: its key and value."""
    text = (f"note {i} of {owner.id}: the customer mentioned topic {i % 97} "
            f"and order {i * 7919 % 100_000}")
    return f"{owner.id}-{i:06d}", {"text": text}


def query(j: int) -> str:
    return f"what did the customer say about topic {j} and their last order"
