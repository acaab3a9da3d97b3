"""The plot of `mesh bench autoscale`: load and replicas over time, one panel per expert.

matplotlib is a dev dependency (benchmark plots), imported only here and only when asked for.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any


def plot(result: Mapping[str, Any], out: Path) -> None:
    """Draw ``result["series"]`` (written by mesh.bench.autoscale) into ``out`` (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    series = result["series"]
    experts = sorted(series["replicas"])
    fig, axes = plt.subplots(len(experts), 1, figsize=(9, 2.3 * len(experts) + 0.6),
                             sharex=True)
    for ax, expert in zip(axes, experts, strict=True):
        t = series["t"]
        ax.step(t, series["load"][expert], where="post", color="tab:gray", lw=1,
                label="load (requests in flight)")
        ax.step(t, series["ideal"][expert], where="post", color="tab:green", ls="--", lw=1.2,
                label="ideal replicas")
        ax.step(t, series["replicas"][expert], where="post", color="tab:blue", lw=1.8,
                label="replicas running")
        ax.set_ylabel(expert, fontsize=9)
        ax.set_ylim(-0.2, max(max(series["load"][expert], default=0), 3) + 0.5)
        ax.grid(alpha=0.3)
    start = 0.0
    for phase in result["phases"]:
        for ax in axes:
            ax.axvline(start, color="k", lw=0.5, alpha=0.4)
        axes[0].text(start + 0.5, axes[0].get_ylim()[1] * 0.92, phase["name"], fontsize=8)
        start += phase["seconds"]
    axes[0].legend(loc="upper right", fontsize=8)
    axes[-1].set_xlabel("seconds since the load started")
    rs = result["replica_seconds"]
    fig.suptitle(f"mesh bench autoscale: replica-seconds mesh {rs['mesh']}, ideal {rs['ideal']}, "
                 f"fixed peak fleet {rs['peak_fleet']}", fontsize=10)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
