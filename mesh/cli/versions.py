"""`mesh canary`, `mesh promote`, `mesh rollback`: which version of an expert answers.

They write the hub's traffic split (``<state_dir>/traffic.sqlite3``); every orchestrator of the
hub applies it within a fraction of a second, without a restart and without cancelling calls
already sent to a version. The versions are the ones the mesh config lists (two manifests with
one name and two versions); `mesh up` deploys them.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from mesh.cli.common import config_path

if TYPE_CHECKING:
    from mesh.orchestrator.traffic import Split, TrafficStore


def register(sub: argparse._SubParsersAction) -> None:
    canary = sub.add_parser(
        "canary", help="send a share of an expert's sessions to another of its versions")
    canary.add_argument("expert", help="expert name")
    canary.add_argument("version", help="the version to try (its manifest is in the config)")
    canary.add_argument("--share", required=True, type=_percent,
                        help="percent of sessions it answers, 0-100 (e.g. 5); sticky per session")
    _config(canary)
    canary.set_defaults(func=cmd_canary)

    promote = sub.add_parser("promote", help="make an expert's canary its stable version")
    promote.add_argument("expert")
    _config(promote)
    promote.set_defaults(func=cmd_promote)

    rollback = sub.add_parser("rollback", help="send all of an expert's sessions back to its "
                              "stable version")
    rollback.add_argument("expert")
    _config(rollback)
    rollback.set_defaults(func=cmd_rollback)


def _config(p: argparse.ArgumentParser) -> None:
    p.add_argument("-c", "--config", help="mesh config YAML (default: the embedded demo mesh)")


def _percent(text: str) -> float:
    try:
        value = float(text.rstrip("%"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a number; give a percent such as 5"
                                         ) from None
    if not 0 <= value <= 100:
        raise argparse.ArgumentTypeError(f"{value} is outside 0-100; give a percent such as 5")
    return value / 100


def _open(args: argparse.Namespace) -> tuple[TrafficStore, list[str]]:
    """The hub's traffic store and the versions the config lists for the expert."""
    from mesh.config import load_config, load_manifests
    from mesh.errors import ExpertNotFound
    from mesh.orchestrator.traffic import TRAFFIC_DB, TrafficStore

    config = load_config(config_path(args.config))
    manifests = load_manifests(config)
    versions = [m.version for m in manifests if m.name == args.expert]
    if not versions:
        raise ExpertNotFound(args.expert, sorted({m.name for m in manifests}))
    return TrafficStore(config.state_path() / TRAFFIC_DB), versions


def _show(split: Split) -> None:
    shares = ", ".join(f"{v} {s:.0%}" for v, s in split.shares().items())
    print(f"{split.expert}: {shares} (running orchestrators apply it within a second)")


def cmd_canary(args: argparse.Namespace) -> int:
    from mesh.orchestrator.traffic import start_canary

    store, versions = _open(args)
    _show(start_canary(store, args.expert, versions, args.version, args.share))
    return 0


def cmd_promote(args: argparse.Namespace) -> int:
    from mesh.orchestrator.traffic import promote

    store, versions = _open(args)
    _show(promote(store, args.expert, versions))
    return 0


def cmd_rollback(args: argparse.Namespace) -> int:
    from mesh.orchestrator.traffic import rollback

    store, versions = _open(args)
    _show(rollback(store, args.expert, versions))
    return 0
