"""Generated from protos/mesh/v1 by scripts/gen_protos.py."""
