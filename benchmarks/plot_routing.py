"""Bar chart of `mesh bench routing` results: accuracy per data set per system, targets marked.

    python benchmarks/plot_routing.py /tmp/bench/*.json --out docs/img/routing.png

Reads one or more JSON files written by ``mesh bench routing --json`` (one per data set) and
draws, per data set, the router's and each baseline's in-scope accuracy side by side, with the
issue's target for the router as a dashed line where the data set has one. A chart rather than a
table because the question it answers is visual: does the router clear its line, and by how
much does it beat or trail each baseline.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

TARGETS = {"clinc150-domains": 0.98, "hinglish-top": 0.96, "snips-hindi": 0.95}
"""The router's accuracy targets from the issue (on held-out test parts)."""
SYSTEMS = (("router", "router", "#1f77b4"), ("tfidf_lr", "TF-IDF + LR", "#ff7f0e"),
           ("minilm_lr", "MiniLM + LR", "#2ca02c"))
"""Key in the JSON, legend label, colour."""


def load(paths: Sequence[Path]) -> list[dict[str, Any]]:
    """The JSON documents, in the order given; each must name its data set."""
    docs = []
    for path in paths:
        doc = json.loads(path.read_text(encoding="utf-8"))
        doc.setdefault("dataset", path.stem)
        docs.append(doc)
    return docs


def accuracy(doc: dict[str, Any], system: str) -> float:
    """One system's in-scope accuracy from a document."""
    res = doc["router"] if system == "router" else doc["baselines"][system]
    return float(res["accuracy"])


def plot(docs: Sequence[dict[str, Any]], out: Path) -> None:
    """Write the grouped bar chart to ``out`` (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    width = 0.8 / len(SYSTEMS)
    fig, ax = plt.subplots(figsize=(max(6.0, 1.9 * len(docs) + 2), 4.2), dpi=120)
    for j, (key, label, colour) in enumerate(SYSTEMS):
        xs = [i - 0.4 + width * (j + 0.5) for i in range(len(docs))]
        values = [100 * accuracy(d, key) for d in docs]
        bars = ax.bar(xs, values, width, label=label, color=colour)
        ax.bar_label(bars, fmt="%.1f", fontsize=7, padding=1)
    for i, doc in enumerate(docs):
        target = TARGETS.get(doc["dataset"])
        if target is not None:
            first = "router target" not in ax.get_legend_handles_labels()[1]
            ax.hlines(100 * target, i - 0.45, i + 0.45, colors="black", linestyles="dashed",
                      linewidth=1.2, label="router target" if first else "_nolegend_")
    ax.set_xticks(range(len(docs)), [_label(d) for d in docs], fontsize=8)
    low = min(100 * accuracy(d, k) for d in docs for k, _, _ in SYSTEMS)
    ax.set_ylim(max(0.0, low - 10), 100)
    ax.set_ylabel("in-scope accuracy (%)")
    ax.set_title("Routing accuracy: router vs baselines on the same training rows",
                 fontsize=10)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    plt.close(fig)


def _label(doc: dict[str, Any]) -> str:
    """Data set name and how it was split, for the x axis."""
    mode = str(doc.get("setup", {}).get("mode", ""))
    how = "CV" if "cross-validation" in mode else "train→eval"
    return f"{doc['dataset']}\n({how}, n={doc['router']['n']})"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("results", nargs="+", type=Path, help="JSON files of mesh bench routing")
    parser.add_argument("--out", type=Path, default=Path("docs/img/routing.png"))
    args = parser.parse_args(argv)
    plot(load(args.results), args.out)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
