"""The `mesh` command: one module per noun, registered here, each thin over the library.

Heavy modules (Ray, ONNX Runtime) are imported inside the commands, so `mesh --help` is instant.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from mesh.cli import ask, bench, federation, lifecycle, tenants, versions
from mesh.errors import ConfigError, MeshError

COMMANDS = [lifecycle, ask, bench, federation, versions, tenants]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mesh", description="A serving mesh for constellations of small, specialized models."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in COMMANDS:
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code: int = args.func(args)
    except ConfigError as e:
        print(f"mesh: configuration error\n{e}", file=sys.stderr)
        return 2
    except MeshError as e:
        print(f"mesh: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return code


if __name__ == "__main__":
    sys.exit(main())
