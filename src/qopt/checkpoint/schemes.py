"""Weight quantization schemes by name: what is quantized how, independent of the file format.

The names are compressed-tensors' preset names (what llm-compressor and vLLM users type);
each format (:mod:`qopt.checkpoint.formats`) says which of them it writes and how. A
:class:`Scheme` is plain data, so it travels in the plan to every worker.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass


@dataclass(frozen=True)
class Scheme:
    """One weight quantization scheme.

    ``kind``: ``"int"`` (``bits``-bit integers), ``"fp8"`` (e4m3), ``"nvfp4"`` (e2m1
    data, e4m3 block scales of ``group_size`` and a global f32 scale), ``"mxfp8"`` /
    ``"mxfp4"`` (E8M0 scales per ``group_size``). Granularity: ``group_size`` (per group
    along the input dimension), ``block`` (2-D tiles, e.g. ``(128, 128)``), or neither
    (per output channel). ``symmetric=False`` adds zero points (integers only).
    """

    name: str
    kind: str
    bits: int
    group_size: int | None = None
    block: tuple[int, int] | None = None
    symmetric: bool = True

    @property
    def needs_global_scale(self) -> bool:
        """Whether the scheme has a per-tensor global scale (shared by a fused group)."""
        return self.kind == "nvfp4"


SCHEMES: dict[str, Scheme] = {
    s.name: s
    for s in (
        Scheme("W8A16", "int", 8, group_size=128),
        Scheme("W4A16", "int", 4, group_size=128),
        Scheme("W4A16_ASYM", "int", 4, group_size=128, symmetric=False),
        Scheme("FP8_DYNAMIC", "fp8", 8),
        Scheme("FP8_BLOCK", "fp8", 8, block=(128, 128)),
        Scheme("NVFP4A16", "nvfp4", 4, group_size=16),
        Scheme("MXFP8A16", "mxfp8", 8, group_size=32),
        Scheme("MXFP4A16", "mxfp4", 4, group_size=32),
    )
}
"""The schemes by their compressed-tensors preset name."""

ALIASES = {"NVFP4": "NVFP4A16", "MXFP8": "MXFP8A16", "MXFP4": "MXFP4A16", "FP8": "FP8_DYNAMIC"}
"""Shorter names users type; weights are quantized the same way (activations are not
this tool's business: the A16 presets are the weight-only ones)."""


def scheme_named(name: str, group_size: int | None = None) -> Scheme:
    """The scheme ``name`` (case-insensitive; aliases allowed), with ``group_size``
    overriding the group size of a per-group scheme. Raises ValueError naming the choices."""
    key = ALIASES.get(name.upper(), name.upper())
    scheme = SCHEMES.get(key)
    if scheme is None:
        choices = ", ".join([*SCHEMES, *ALIASES])
        raise ValueError(f"unknown scheme {name!r} (choose from {choices})")
    if group_size is None:
        return scheme
    if scheme.group_size is None:
        raise ValueError(f"--group-size applies to per-group schemes; {key} has no groups")
    if scheme.kind in ("nvfp4", "mxfp8", "mxfp4") and group_size != scheme.group_size:
        raise ValueError(f"{key} has a fixed group size of {scheme.group_size}")
    if group_size <= 0:
        raise ValueError(f"--group-size must be positive, got {group_size}")
    return dataclasses.replace(scheme, group_size=group_size)
