#!/bin/sh
# Stop the node (and its Ray cluster), then the hub (and its Ray cluster).
set -u
cd "$(dirname "$0")"
MESH="${MESH:-../../.venv/bin/mesh}"
"$MESH" down -c node.yaml
"$MESH" down -c hub.yaml
