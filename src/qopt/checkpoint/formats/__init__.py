"""Checkpoint formats: how one quantized Linear weight is written, and the config that says so.

A format is a subclass of :class:`CheckpointFormat` registered in :data:`FORMATS` under its
``--format`` name (a lazy ``module:Class`` string, so ``qopt --help`` imports none of
them). The driver (:mod:`qopt.checkpoint.convert`) does everything else: planning, reading,
streaming, writing shards atomically, the index, copying other files, statistics, executors.

The interface a format implements (every method a pure function of its arguments, so it
runs in any worker process):

``schemes``
    The scheme names (:data:`qopt.checkpoint.schemes.SCHEMES` keys, or the format's own
    :class:`~qopt.checkpoint.schemes.Scheme` objects from ``extra_schemes``) it writes.
``shares_global_scale(scheme)``
    Whether the fused sets (q/k/v, gate/up) quantized with ``scheme`` share one global
    scale. The driver then computes, per fused group, the amax over all its members (a
    first pass when they lie in different shards) and passes it to ``quantize`` as
    ``group_amax`` (``None`` for a weight outside any group: the format uses its own amax).
``output_specs(entry, scheme)``
    The :class:`~qopt.checkpoint.io.OutputSpec` list (name, dtype, shape) one input weight
    (:class:`~qopt.checkpoint.plan.TensorEntry`) becomes, known before any data is read:
    the shard header is written first and the tensors streamed into it.
``quantize(entry, weight, scheme, group_amax)``
    ``weight`` is the input tensor (a read-only numpy / ml_dtypes view of the mapped
    file, dtype float32 / float16 / bfloat16); returns ``{output name: array}`` matching
    ``output_specs`` exactly. The numerics run through qopt's kernels (IR the passes and
    the JIT compile), bit for bit as the format's producer writes them.
``dequantize(module, tensors, scheme)``
    The inverse for verification and error statistics: ``tensors`` holds the output
    tensors of one module by their local names (``weight_packed``...); returns the
    float32 weight.
``write_config(plan, input_config, out_dir)``
    Writes the format's config (compressed-tensors: ``config.json``'s
    ``quantization_config``; ModelOpt: ``hf_quant_config.json``) into ``out_dir``
    (``input_config``: the input's ``config.json`` as a dict, or None).
``read_config(out_dir)``
    Reads it back for ``verify-checkpoint`` (which has no plan): any object, passed on to
    ``scheme_of``; CheckpointError when absent or malformed.
``scheme_of(config, module, local_names)``
    The scheme a loader applies to ``module`` given the config and the local names of its
    tensors in the checkpoint (``weight_packed``, ``weight_scale``...), ``None`` for a
    module left unquantized; CheckpointError when the names and the config disagree.

Errors: raise :class:`~qopt.checkpoint.io.CheckpointError` naming the file and tensor.
"""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import ClassVar

import numpy as np

from qopt.checkpoint.io import CheckpointError, OutputSpec
from qopt.checkpoint.plan import Plan, TensorEntry
from qopt.checkpoint.schemes import SCHEMES, Scheme


class CheckpointFormat(ABC):
    """A checkpoint format (see the module docstring for the contract)."""

    name: ClassVar[str]
    schemes: ClassVar[tuple[str, ...]]
    extra_schemes: ClassVar[tuple[Scheme, ...]] = ()

    def scheme(self, name: str) -> Scheme:
        """The Scheme object for one of this format's scheme names."""
        for s in self.extra_schemes:
            if s.name == name:
                return s
        if name in self.schemes and name in SCHEMES:
            return SCHEMES[name]
        raise CheckpointError(
            f"format {self.name} does not write scheme {name} (it writes {', '.join(self.schemes)})"
        )

    def shares_global_scale(self, scheme: Scheme) -> bool:
        return scheme.needs_global_scale

    def weight_shape(
        self, tensors: Mapping[str, np.ndarray], scheme: Scheme
    ) -> tuple[int, ...] | None:
        """The unquantized weight's shape from one module's output tensors (local names),
        for ``verify-checkpoint``; None (the default) leaves it to the generic rule
        (``weight_shape``, ``weight``, the original, ``weight_packed``). ModelOpt's packed
        ``weight`` has the packed shape, so that format says it here."""
        return None

    @abstractmethod
    def output_specs(self, entry: TensorEntry, scheme: Scheme) -> list[OutputSpec]: ...

    @abstractmethod
    def quantize(
        self,
        entry: TensorEntry,
        weight: np.ndarray,
        scheme: Scheme,
        group_amax: float | None,
    ) -> dict[str, np.ndarray]: ...

    @abstractmethod
    def dequantize(
        self, module: str, tensors: Mapping[str, np.ndarray], scheme: Scheme
    ) -> np.ndarray: ...

    @abstractmethod
    def write_config(self, plan: Plan, input_config: dict | None, out_dir: Path) -> None: ...

    @abstractmethod
    def read_config(self, out_dir: Path) -> object: ...

    @abstractmethod
    def scheme_of(
        self, config: object, module: str, local_names: Sequence[str]
    ) -> Scheme | None: ...


FORMATS: dict[str, str] = {
    "compressed-tensors": "qopt.checkpoint.formats.compressed_tensors:CompressedTensors",
    "modelopt": "qopt.checkpoint.formats.modelopt:ModelOpt",
}
"""``--format`` name -> ``module:Class`` of its :class:`CheckpointFormat`."""


def get_format(name: str) -> CheckpointFormat:
    """An instance of the format called ``name``; ValueError naming the choices."""
    entry = FORMATS.get(name)
    if entry is None:
        raise ValueError(f"unknown format {name!r} (choose from {', '.join(FORMATS)})")
    module_name, class_name = entry.split(":")
    return getattr(importlib.import_module(module_name), class_name)()
