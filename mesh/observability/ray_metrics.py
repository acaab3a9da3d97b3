"""Ray Serve's own ``ray_serve_*`` series, passed through the orchestrator's /metrics.

Ray exports its metrics on a per-node port it picks itself (``MetricsExportPort`` in
``ray.nodes()``); passing Serve's series through the orchestrator gives operators one scrape
target that shows both sides of the handle hop (the mesh's view of an expert's latency next to
Serve's queue lengths and replica counts) without learning Ray's ports. Ray's page is large
(~0.5 MB: every core worker series), so only ``ray_serve_`` lines are kept and parsed, and the
node list is cached. A node that does not answer is skipped: a scrape never fails because of Ray.
"""

from __future__ import annotations

import logging
import time
import urllib.request
from collections.abc import Callable, Iterator

from prometheus_client.core import Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector

log = logging.getLogger(__name__)

PREFIX = "ray_serve_"


def ray_metrics_urls() -> list[str]:
    """The metrics export URL of every live node of the cluster this process joined."""
    import ray

    urls = []
    for node in ray.nodes():
        port = node.get("MetricsExportPort")
        if node.get("Alive") and port:
            urls.append(f"http://{node['NodeManagerAddress']}:{port}/metrics")
    return urls


def keep_serve_lines(text: str, prefix: str = PREFIX) -> str:
    """Only the samples and HELP/TYPE lines of families named ``prefix...``."""
    out = []
    for line in text.splitlines():
        meta = line.startswith(("# HELP ", "# TYPE "))
        name = line.split(" ", 3)[2] if meta else line
        if name.startswith(prefix):
            out.append(line)
    return "\n".join(out) + "\n"


class RayServeCollector(Collector):
    """Fetches Ray's metrics pages at scrape time and yields their ``ray_serve_*`` families."""

    def __init__(self, urls: Callable[[], list[str]] = ray_metrics_urls,
                 timeout_s: float = 2.0, refresh_s: float = 30.0) -> None:
        self._urls = urls
        self._timeout_s = timeout_s
        self._refresh_s = refresh_s
        self._cached: list[str] = []
        self._cached_at = float("-inf")

    def describe(self) -> list[Metric]:
        # Nothing fixed to describe: keeps registration from calling collect (and Ray).
        return []

    def _targets(self) -> list[str]:
        if time.monotonic() - self._cached_at > self._refresh_s:
            try:
                self._cached = self._urls()
                self._cached_at = time.monotonic()
            except Exception as e:  # Ray unreachable: none from it
                log.warning("cannot list Ray's metrics ports: %s", e)
        return self._cached

    def collect(self) -> Iterator[Metric]:
        families: dict[str, Metric] = {}
        for url in self._targets():
            try:
                with urllib.request.urlopen(url, timeout=self._timeout_s) as resp:
                    text = resp.read().decode("utf-8", errors="replace")
            except OSError as e:
                log.warning("Ray metrics at %s did not answer: %s", url, e)
                continue
            for family in text_string_to_metric_families(keep_serve_lines(text)):
                # Every node exports the same names: one family per name, samples merged.
                if family.name in families:
                    families[family.name].samples.extend(family.samples)
                else:
                    families[family.name] = family
        yield from families.values()
