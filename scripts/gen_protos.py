"""Generate mesh/proto/v1 from protos/mesh/v1 (run after editing a .proto file).

protoc writes imports as ``from mesh.v1 import x_pb2`` (the proto package path); the generated
files live in ``mesh/proto/v1`` so those imports are rewritten to ``mesh.proto.v1``. The test
tests/unit/test_proto_in_sync.py runs this into a temporary folder and fails on any difference.

Usage: python scripts/gen_protos.py [OUT_DIR]   (default: mesh/proto/v1)
"""

from __future__ import annotations

import re
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROTO_ROOT = ROOT / "protos"
DEFAULT_OUT = ROOT / "mesh" / "proto" / "v1"
_IMPORT = re.compile(r"^from mesh\.v1 import ", re.MULTILINE)
# The module name protoc gives each message class: pickling (Ray, Serve's proxy) imports it.
_MODULE = re.compile(r"'mesh\.v1\.(\w+_pb2)'")


def generate(out_dir: Path) -> list[Path]:
    """Run protoc on every .proto file and write the rewritten modules to ``out_dir``."""
    from grpc_tools import protoc  # dev dependency: only needed to regenerate

    sources = (PROTO_ROOT / "mesh" / "v1").glob("*.proto")
    protos = sorted(str(p.relative_to(PROTO_ROOT)) for p in sources)
    with tempfile.TemporaryDirectory() as tmp:
        include = str(Path(protoc.__file__).parent / "_proto")
        args = ["protoc", f"-I{PROTO_ROOT}", f"-I{include}", f"--python_out={tmp}",
                f"--pyi_out={tmp}", f"--grpc_python_out={tmp}", *protos]
        if protoc.main(args) != 0:
            raise SystemExit(f"protoc failed on {protos}")
        out_dir.mkdir(parents=True, exist_ok=True)
        written = []
        for src in sorted((Path(tmp) / "mesh" / "v1").iterdir()):
            text = _IMPORT.sub("from mesh.proto.v1 import ", src.read_text())
            text = _MODULE.sub(r"'mesh.proto.v1.\1'", text)
            dst = out_dir / src.name
            dst.write_text(text)
            written.append(dst)
        init = out_dir / "__init__.py"
        init.write_text('"""Generated from protos/mesh/v1 by scripts/gen_protos.py."""\n')
        written.append(init)
    return written


def main() -> None:
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_OUT
    if out == DEFAULT_OUT and out.exists():
        shutil.rmtree(out)
    for path in generate(out):
        print(path.relative_to(out.parent) if out.is_relative_to(out.parent) else path)


if __name__ == "__main__":
    main()
