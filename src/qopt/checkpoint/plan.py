"""The plan of a checkpoint conversion: plain data, made once, shipped to every worker.

A :class:`Plan` says, for a Hugging Face style directory (``config.json``, one or many
``*.safetensors`` shards, ``model.safetensors.index.json`` when sharded), which tensor of
which shard is quantized with which scheme and which is copied, which weights form a fused
group (q/k/v, gate/up: serving engines fuse them into one matrix, so formats with a global
scale share it across the group), and which other files are copied through. Everything is
frozen dataclasses of strings, ints and tuples: it pickles for a process pool, Ray or Dask,
and ``to_json`` writes it for a look.

:func:`make_plan` reads only the safetensors headers and the index, and checks them
against each other: a shard that is truncated, a tensor the index names but its shard
lacks, a tensor of a shard the index does not name, or a weight chosen for quantization
whose dtype is not F32 / F16 / BF16 raise :class:`~qopt.checkpoint.io.CheckpointError`
naming the file and the tensor, before anything is written.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from qopt.checkpoint.io import CheckpointError, read_header
from qopt.checkpoint.schemes import Scheme

INDEX_NAME = "model.safetensors.index.json"
SINGLE_NAME = "model.safetensors"
FLOAT_DTYPES = ("F32", "F16", "BF16")

DEFAULT_IGNORE = (r".*embed_tokens$", r".*lm_head$", r".*norm$", r".*\.bias$")
"""Modules never quantized unless ``--ignore`` replaces this list: embeddings, the output
head, norms and biases. (llm-compressor's ``model_free_ptq`` ignores nothing by default;
compare the two under the same list.)"""

FUSED_PATTERNS = (
    (
        r"^(?P<prefix>.+)\.(?P<part>attn|attention|self_attn|self_attention)\.",
        ("q_proj", "k_proj", "v_proj"),
    ),
    (r"^(?P<prefix>.+)\.(?P<part>mlp|feed_forward)\.", ("gate_proj", "up_proj")),
    (r"^(?P<prefix>.+)\.", ("w1", "w3")),
)
"""Fused weight sets, as vLLM fuses them (and llm-compressor's ``DEFAULT_FUSED_MAPPINGS``):
a group is every member present under one prefix."""


@dataclass(frozen=True)
class TensorEntry:
    """One tensor of an input shard. ``scheme`` is the quantization scheme's name, or
    ``None`` for a tensor copied unchanged; ``group`` names its fused group, if any.
    A slice of a 3-D expert stack has ``source`` (the stack's name), ``expert`` and
    ``rows`` (the rows of that expert's matrix it takes)."""

    name: str
    dtype: str
    shape: tuple[int, ...]
    scheme: str | None = None
    group: str | None = None
    source: str | None = None
    expert: int = 0
    rows: tuple[int, int] | None = None

    @property
    def module(self) -> str:
        """The module name (``model.layers.0.mlp.up_proj`` for ``...up_proj.weight``)."""
        return self.name.rsplit(".", 1)[0]


@dataclass(frozen=True)
class ShardPlan:
    """One input shard and the output shard it becomes (file names relative to the
    input and output directories)."""

    input: str
    output: str
    tensors: tuple[TensorEntry, ...]

    @property
    def quantized(self) -> tuple[TensorEntry, ...]:
        return tuple(t for t in self.tensors if t.scheme is not None)


@dataclass(frozen=True)
class FusedGroup:
    """Weights that share one global scale; ``shards`` are the input shards holding them
    (more than one: the global amax is computed in a first pass)."""

    key: str
    members: tuple[str, ...]
    shards: tuple[str, ...]


@dataclass(frozen=True)
class Plan:
    """The whole conversion. ``schemes``: the schemes that entries name; ``ignore``: the
    patterns of modules left unquantized (written into the format's config);
    ``files``: other files copied through (the input's config.json is rewritten by the
    format)."""

    input_dir: str
    format: str
    schemes: tuple[Scheme, ...]
    ignore: tuple[str, ...]
    shards: tuple[ShardPlan, ...]
    groups: tuple[FusedGroup, ...] = ()
    files: tuple[str, ...] = ()
    indexed: bool = True
    options: tuple[tuple[str, str], ...] = field(default=())

    def scheme(self, name: str) -> Scheme:
        for s in self.schemes:
            if s.name == name:
                return s
        raise KeyError(name)

    def tensor(self, name: str) -> TensorEntry:
        for shard in self.shards:
            for entry in shard.tensors:
                if entry.name == name:
                    return entry
        raise KeyError(name)

    def group(self, key: str) -> FusedGroup:
        for g in self.groups:
            if g.key == key:
                return g
        raise KeyError(key)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1)


def is_linear_weight(name: str, shape: Sequence[int]) -> bool:
    """A Linear weight: a 2-D ``*.weight`` tensor (3-D expert stacks are split into 2-D
    slices first, :func:`split_experts`)."""
    return name.endswith(".weight") and len(shape) == 2


EXPERT_STACKS = {"gate_up_proj": ("gate_proj", "up_proj"), "down_proj": ("down_proj",)}
"""3-D expert stacks (``E x rows x K``) and the per-expert Linear weights they hold, as
llm-compressor's ``model_free_ptq`` splits them (``...experts.gate_up_proj`` ->
``...experts.{e}.gate_proj.weight`` and ``...experts.{e}.up_proj.weight``)."""


def split_experts(entry: TensorEntry) -> list[TensorEntry]:
    """A 3-D expert stack as its per-expert 2-D slices; any other tensor as itself."""
    keys = [k for k in EXPERT_STACKS if k in entry.name]
    if len(entry.shape) != 3 or len(keys) != 1:
        return [entry]
    key = keys[0]
    parts = EXPERT_STACKS[key]
    experts, rows, columns = entry.shape
    if rows % len(parts):
        raise CheckpointError(
            f"tensor {entry.name}: {rows} rows do not split into {len(parts)} equal parts"
        )
    size = rows // len(parts)
    out = []
    for e in range(experts):
        for i, part in enumerate(parts):
            name = entry.name.replace(key, f"{e}.{part}")
            if not name.endswith(".weight"):
                name += ".weight"
            out.append(
                TensorEntry(
                    name,
                    entry.dtype,
                    (size, columns),
                    source=entry.name,
                    expert=e,
                    rows=(i * size, (i + 1) * size),
                )
            )
    return out


def fused_groups(names: Sequence[str]) -> dict[str, str]:
    """Tensor name -> fused group key for every weight in a complete fused set."""
    weights = set(names)
    found: dict[str, str] = {}
    for pattern, parts in FUSED_PATTERNS:
        regex = re.compile(pattern + "(?P<member>" + "|".join(parts) + r")\.weight$")
        prefixes: dict[str, list[str]] = {}
        for name in sorted(weights):
            m = regex.match(name)
            if m and name not in found:
                key = name[: m.start("member")] + "+".join(parts)
                prefixes.setdefault(key, []).append(name)
        for key, members in prefixes.items():
            if len(members) == len(parts):
                for member in members:
                    found[member] = key
    return found


def shard_files(input_dir: Path) -> tuple[dict[str, list[str]] | None, list[str]]:
    """``(index weight map inverted: shard -> names, or None without an index, shards)``."""
    index_path = input_dir / INDEX_NAME
    if index_path.exists():
        try:
            index = json.loads(index_path.read_text())
            weight_map = index["weight_map"]
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise CheckpointError(f"{index_path}: not a safetensors index ({e})") from None
        by_shard: dict[str, list[str]] = {}
        for name, shard in weight_map.items():
            by_shard.setdefault(shard, []).append(name)
        for shard in by_shard:
            if "/" in shard or shard.startswith("."):
                raise CheckpointError(f"{index_path}: shard name {shard!r} is not a file name")
            if not (input_dir / shard).is_file():
                names = by_shard[shard]
                raise CheckpointError(
                    f"{index_path}: shard {shard} (holding tensor {names[0]}) does not exist"
                )
        return by_shard, sorted(by_shard)
    shards = sorted(p.name for p in input_dir.glob("*.safetensors"))
    if not shards:
        raise CheckpointError(f"{input_dir}: no *.safetensors file and no {INDEX_NAME}")
    if len(shards) > 1:
        raise CheckpointError(f"{input_dir}: {len(shards)} shards but no {INDEX_NAME}")
    return None, shards


def make_plan(
    input_dir: str | Path,
    *,
    format: str,
    schemes: Sequence[Scheme],
    scheme_for: Callable[[TensorEntry], str | None],
    ignore: Sequence[str] = DEFAULT_IGNORE,
    share_global_scale: Callable[[Scheme], bool] = lambda s: s.needs_global_scale,
    options: Sequence[tuple[str, str]] = (),
) -> Plan:
    """Reads the headers and the index of ``input_dir`` and plans the conversion.

    ``scheme_for(entry)`` gives the name of one of ``schemes`` for a Linear weight that no ``ignore``
    pattern matches (``re.match`` on its module name), or ``None`` to copy it; this is
    where a per-tensor bits file plugs in. ``share_global_scale(scheme)``: whether fused
    sets of weights quantized with ``scheme`` share one global scale (the format decides).
    """
    input_dir = Path(input_dir)
    if not input_dir.is_dir():
        raise CheckpointError(f"{input_dir}: not a directory")
    try:
        patterns = [re.compile(p) for p in ignore]
    except re.error as e:
        raise CheckpointError(f"--ignore {e.pattern!r}: not a regular expression ({e})") from None
    index, shard_names = shard_files(input_dir)
    headers = {}
    for shard in shard_names:
        tensors, _, _ = read_header(input_dir / shard)
        headers[shard] = tensors
        if index is not None:
            listed = set(index[shard])
            for name in sorted(listed - set(tensors)):
                raise CheckpointError(
                    f"{input_dir / shard}: tensor {name} is named in {INDEX_NAME} but absent "
                    "from the shard"
                )
            for name in sorted(set(tensors) - listed):
                raise CheckpointError(
                    f"{input_dir / shard}: tensor {name} is not in {INDEX_NAME} (missing "
                    "index entry)"
                )
    entries: dict[str, list[TensorEntry]] = {}
    for shard in shard_names:
        planned = []
        for name, info in sorted(headers[shard].items()):
            for entry in split_experts(TensorEntry(name, info.dtype, info.shape)):
                module = entry.module
                if is_linear_weight(entry.name, entry.shape) and not any(
                    p.match(module) for p in patterns
                ):
                    scheme = scheme_for(entry)
                    if scheme is not None and info.dtype not in FLOAT_DTYPES:
                        raise CheckpointError(
                            f"{input_dir / shard}: tensor {name}: dtype {info.dtype} cannot be "
                            f"quantized (a Linear weight must be {', '.join(FLOAT_DTYPES)})"
                        )
                    entry = dataclasses.replace(entry, scheme=scheme)
                planned.append(entry)
        entries[shard] = planned
    groups: list[FusedGroup] = []
    known = {s.name: s for s in schemes}
    used = {e.scheme for es in entries.values() for e in es if e.scheme}
    for name in sorted(used - set(known)):
        raise CheckpointError(f"scheme {name!r} is not among the plan's schemes {sorted(known)}")
    sharing = {n for n in used if share_global_scale(known[n])}
    if sharing:
        quantized = {e.name: s for s, es in entries.items() for e in es if e.scheme in sharing}
        membership = fused_groups(list(quantized))
        by_key: dict[str, list[str]] = {}
        for name, key in membership.items():
            by_key.setdefault(key, []).append(name)
        for key, members in sorted(by_key.items()):
            members.sort()
            shards = tuple(sorted({quantized[m] for m in members}))
            groups.append(FusedGroup(key, tuple(members), shards))
        entries = {
            s: [dataclasses.replace(e, group=membership.get(e.name)) for e in es]
            for s, es in entries.items()
        }
    files = tuple(
        sorted(
            str(p.relative_to(input_dir))
            for p in input_dir.rglob("*")
            if p.is_file()
            and p.suffix != ".safetensors"
            and p.name != INDEX_NAME
            and not any(part.startswith(".") for part in p.relative_to(input_dir).parts)
        )
    )
    return Plan(
        input_dir=str(input_dir),
        format=format,
        schemes=tuple(known[n] for n in sorted(used)),
        ignore=tuple(ignore),
        shards=tuple(ShardPlan(s, s, tuple(entries[s])) for s in shard_names),
        groups=tuple(groups),
        files=files,
        indexed=index is not None,
        options=tuple(options),
    )
