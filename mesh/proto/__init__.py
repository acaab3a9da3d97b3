"""Code generated from protos/mesh/v1 (see scripts/gen_protos.py)."""
