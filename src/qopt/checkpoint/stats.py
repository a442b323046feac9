"""Per-tensor error statistics of a quantized checkpoint: max abs error, RMS error, SQNR.

``SQNR = 10 log10(sum x^2 / sum (x - x')^2)`` in dB (``inf`` for an exact tensor). The
table is printed at the end of a run; ``--report FILE.json`` writes the same rows.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import asdict, dataclass

import numpy as np


@dataclass(frozen=True)
class TensorStats:
    name: str
    scheme: str
    shape: tuple[int, ...]
    max_abs: float
    rms: float
    sqnr_db: float


def tensor_stats(name: str, scheme: str, reference: np.ndarray, decoded: np.ndarray) -> TensorStats:
    """The error of ``decoded`` against ``reference`` (in float32; sums by BLAS dot
    products, so a large tensor costs one pass, not float64 copies)."""
    ref = np.asarray(reference).astype(np.float32, copy=False)
    err = np.array(decoded, dtype=np.float32, copy=True)
    np.subtract(err, ref, out=err)
    flat_ref, flat_err = ref.reshape(-1), err.reshape(-1)
    signal = float(np.dot(flat_ref, flat_ref))
    noise = float(np.dot(flat_err, flat_err))
    size = max(ref.size, 1)
    sqnr = math.inf if noise == 0 else (10 * math.log10(signal / noise) if signal else -math.inf)
    return TensorStats(
        name,
        scheme,
        tuple(ref.shape),
        float(max(err.max(), -err.min())) if err.size else 0.0,
        math.sqrt(noise / size),
        sqnr,
    )


def format_table(rows: Iterable[TensorStats]) -> str:
    rows = sorted(rows, key=lambda r: r.name)
    if not rows:
        return "no quantized tensors"
    width = max(len(r.name) for r in rows)
    lines = [f"{'tensor':<{width}}  {'scheme':<11} {'max abs':>10} {'rms':>10} {'SQNR dB':>8}"]
    for r in rows:
        lines.append(
            f"{r.name:<{width}}  {r.scheme:<11} {r.max_abs:>10.3e} {r.rms:>10.3e} {r.sqnr_db:>8.2f}"
        )
    worst = min(r.sqnr_db for r in rows)
    lines.append(f"{len(rows)} tensors, lowest SQNR {worst:.2f} dB")
    return "\n".join(lines)


def write_report(path: str, rows: Iterable[TensorStats], summary: dict) -> None:
    def clean(v: float) -> float | str:
        return v if math.isfinite(v) else str(v)

    data = {
        **summary,
        "tensors": [
            {k: clean(v) if isinstance(v, float) else v for k, v in asdict(r).items()}
            for r in sorted(rows, key=lambda r: r.name)
        ],
    }
    with open(path, "w") as f:
        json.dump(data, f, indent=2)
        f.write("\n")
