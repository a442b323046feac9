"""fold-quant's memory of proofs, for one run of the pass.

The rewrite walker sweeps the module until a sweep changes nothing, so every chain whose
proof failed is met again on each later sweep, and an enumeration is redone each time
(it more than doubled the time of the pass). A proof's answer depends only on its
question: the steps (storage types, parameters as attributes or SSA values, granularities,
rounding, ranges) and the data shape, all hashable and unchanged by the rewrites of other
ops. The cache keys answers by that question; it holds the SSA values it keys on, so an
erased value's identity cannot be reused for another while the cache lives.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import TypeVar

T = TypeVar("T")


class ProofCache:
    """Answers of proofs by their question (one instance per application of the pass)."""

    def __init__(self) -> None:
        self._answers: dict[Hashable, object] = {}
        self.hits = 0
        self.misses = 0

    def answer(self, question: Hashable, prove: Callable[[], T]) -> T:
        """The cached answer to ``question``, else ``prove()`` (then remembered)."""
        if question in self._answers:
            self.hits += 1
            return self._answers[question]  # type: ignore[return-value]
        self.misses += 1
        result = prove()
        self._answers[question] = result
        return result
