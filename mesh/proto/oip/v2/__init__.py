"""Generated from protos/oip/v2 by scripts/gen_protos.py."""
