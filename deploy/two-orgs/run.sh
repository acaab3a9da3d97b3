#!/bin/sh
# A hub and a partner node on one machine, each with its own Ray cluster.
# Usage: deploy/two-orgs/run.sh   (then deploy/two-orgs/stop.sh)
# Every step is a real `mesh` command; in production each party runs its own steps on its own
# machine and only public keys, certificate requests and certificates travel.
set -eu
cd "$(dirname "$0")"
MESH="${MESH:-../../.venv/bin/mesh}"
ORG=prairie-agri-institute
export MESH_DEMO_ARTIFACTS="${MESH_DEMO_ARTIFACTS:-$HOME/.mesh/artifacts}"
mkdir -p work
../../.venv/bin/python -m mesh.demo.build "$MESH_DEMO_ARTIFACTS"

if [ ! -f work/ca/ca.crt ]; then
  echo "== hub operator: the mesh CA and the hub's own certificate"
  "$MESH" ca init --dir work/ca --name two-orgs
  "$MESH" keys init --organization hub-org --dir work/hub-keys
  "$MESH" ca issue --dir work/ca --csr work/hub-keys/tls.csr --role hub --out work/hub-keys/tls.crt
  echo "== institute: its identity (signing key + TLS request); sends org.pub and tls.csr"
  "$MESH" keys init --organization "$ORG" --dir work/agri-keys
  echo "== hub operator: certifies the institute and trusts its signing key"
  "$MESH" ca issue --dir work/ca --csr work/agri-keys/tls.csr --role node \
    --organization "$ORG" --out work/agri-keys/tls.crt
  cp work/ca/ca.crt work/agri-keys/ca.crt
  "$MESH" trust add "$ORG" --public-key work/agri-keys/org.pub -c hub.yaml
fi

echo "== hub: Ray, its experts, the orchestrator and the registry"
"$MESH" up -c hub.yaml

echo "== institute: its node (own Ray cluster), publishing crop-yield to the hub"
nohup "$MESH" node -c node.yaml --hub 127.0.0.1:50062 --organization "$ORG" \
  --advertise 127.0.0.1:50071 --signing-key work/agri-keys/org.key \
  --tls-cert work/agri-keys/tls.crt --tls-key work/agri-keys/tls.key \
  --tls-ca work/agri-keys/ca.crt > work/node.log 2>&1 &

echo "== waiting for the hub to route to the institute's expert (log: work/node.log)"
i=0
until "$MESH" ask --address 127.0.0.1:50061 "Which barley variety yields best at Morris?" \
    2>/dev/null | grep -q "answered by: crop-yield"; do
  i=$((i + 1)); [ "$i" -le 120 ] || { echo "no answer; see work/node.log"; exit 1; }
  sleep 1
done
"$MESH" ask --address 127.0.0.1:50061 "Which barley variety yields best at Morris?"
"$MESH" experts --address 127.0.0.1:50061
