"""``--bits-file precision.json``: ModelOpt's per-tensor mixed precision for quantize-checkpoint.

ModelOpt's ``precision_info`` gives each weight tensor a bit width (``{"name": 8}``), its
newer ``layer_info`` an entry ``{"precision": 4, "block_size": 64}``. Here a name is a
weight tensor (``model.layers.0.mlp.down_proj.weight``) or its module; the value is

* the bit width of the requested ``--scheme``: that scheme;
* another bit width: 8 -> ``W8A16`` (int8 per channel, ModelOpt's 8-bit layers), 4 ->
  ``W4A16`` (int4 groups of ``block_size``, default 128); 16 -> left unquantized;
* or a scheme name (``"FP8_DYNAMIC"``), for the formats that write it.

Every name must be a Linear weight the plan quantizes; a name that matches none is an error
(a typo would otherwise silently keep the default). With ``--format modelopt`` a mix
becomes ``quant_algo: MIXED_PRECISION`` with ``quantized_layers``.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from pathlib import Path

from qopt.checkpoint.formats import CheckpointFormat
from qopt.checkpoint.io import CheckpointError
from qopt.checkpoint.plan import TensorEntry
from qopt.checkpoint.schemes import Scheme, scheme_named


def _entry_scheme(
    value: object, default: Scheme, fmt: CheckpointFormat, where: str
) -> Scheme | None:
    block = None
    if isinstance(value, dict):
        block, value = value.get("block_size"), value.get("precision")
    if isinstance(value, str):
        try:
            return fmt.scheme(scheme_named(value).name)
        except ValueError:
            try:  # a scheme of the format's own (extra_schemes)
                return fmt.scheme(value)
            except ValueError as exc:
                raise CheckpointError(f"{where}: {exc}") from None
    if isinstance(value, bool) or value not in (4, 8, 16):
        raise CheckpointError(f"{where}: bits must be 4, 8 or 16 (or a scheme name), got {value!r}")
    if value == 16:
        return None
    if value == default.bits and block is None:
        return default
    if value == 8:
        if block not in (None, -1):
            raise CheckpointError(f"{where}: 8-bit weights are per channel, got block_size {block}")
        return scheme_named("W8A16")
    if block is not None and (not isinstance(block, int) or isinstance(block, bool) or block < 1):
        raise CheckpointError(f"{where}: block_size must be a positive integer, got {block!r}")
    return dataclasses.replace(scheme_named("W4A16"), group_size=block or 128)


def load_bits_file(
    path: str | Path, default: Scheme, fmt: CheckpointFormat
) -> tuple[list[Scheme], Callable[[TensorEntry], str | None], Callable[[], None]]:
    """The plan's schemes, its ``scheme_for`` and a check to call after planning (every
    name matched a planned weight); a scheme ``fmt`` does not write is an error."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"{path}: cannot read a JSON object ({exc})") from None
    if not isinstance(data, dict):
        raise CheckpointError(f"{path}: expected a JSON object of tensor name -> bits")
    chosen: dict[str, Scheme | None] = {}
    for name, value in data.items():
        scheme = _entry_scheme(value, default, fmt, f"{path}: {name!r}")
        if scheme is not None:
            fmt.scheme(scheme.name)
        chosen[name.removesuffix(".weight")] = scheme
    names: dict[str, Scheme] = {default.name: default}
    for scheme in filter(None, chosen.values()):
        if names.setdefault(scheme.name, scheme) != scheme:
            raise CheckpointError(
                f"{path}: {scheme.name} with two group sizes ({names[scheme.name].group_size} "
                f"and {scheme.group_size}) in one conversion"
            )
    seen: set[str] = set()

    def scheme_for(entry: TensorEntry) -> str | None:
        if entry.module not in chosen:
            return default.name
        seen.add(entry.module)
        scheme = chosen[entry.module]
        return None if scheme is None else scheme.name

    def check() -> None:
        missing = sorted(set(chosen) - seen)
        if missing:
            raise CheckpointError(
                f"{path}: {missing[0]!r} is not a Linear weight this conversion quantizes "
                f"(ignored, absent or not 2-D)"
            )

    return list(names.values()), scheme_for, check
