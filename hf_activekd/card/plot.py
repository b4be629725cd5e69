"""The plot of a run: validation metrics and samples requested / accepted by round."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any


def plot_rounds(rounds: Sequence[Mapping[str, Any]], path: str | os.PathLike, best_round: int | None = None) -> Path:
    """Save a PNG of accuracy and macro-F1 by round (top) and samples requested / accepted per round (bottom)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    x = [r["round"] for r in rounds]
    fig = Figure(figsize=(7, 5.5), dpi=100)  # no pyplot: the user's backend and figures are left alone
    FigureCanvasAgg(fig)
    top, bottom = fig.subplots(2, 1, sharex=True)
    top.plot(x, [r["accuracy"] for r in rounds], marker="o", label="accuracy")
    top.plot(x, [r["macro_f1"] for r in rounds], marker="s", label="macro-F1")
    if best_round is not None and any(r["round"] == best_round for r in rounds):
        top.axvline(best_round, color="goldenrod", linestyle="--", label=f"best round ({best_round})")
    top.set_ylabel("validation")
    top.set_title("Active distillation rounds")
    top.grid(alpha=0.3)
    top.legend(loc="lower right")
    width = 0.4
    bottom.bar([i - width / 2 for i in x], [r.get("requested", 0) for r in rounds], width, label="requested")
    bottom.bar([i + width / 2 for i in x], [r.get("accepted", 0) for r in rounds], width, label="accepted")
    bottom.set_xlabel("round (evaluation)")
    bottom.set_ylabel("samples")
    bottom.grid(alpha=0.3, axis="y")
    bottom.legend(loc="upper right")
    bottom.set_xticks(x)
    fig.tight_layout()
    fig.savefig(path, format="png")
    return path
