"""Generate mesh/proto from protos/ (run after editing a .proto file).

Two families of protos, each generated into its own folder under mesh/proto:

    protos/mesh/v1/*.proto  ->  mesh/proto/v1/      the mesh's own wire contract
    protos/oip/v2/*.proto   ->  mesh/proto/oip/v2/  Open Inference Protocol v2 (the oip runtime)

protoc writes imports as the proto folder path (``from mesh.v1 import x_pb2``); the generated
files live under ``mesh/proto`` so those imports, and the module names that pickling (Ray,
Serve's proxy) imports, are rewritten to the real package. tests/unit/test_proto_in_sync.py and
tests/unit/test_runtime_oip_proto.py regenerate into a temporary folder and fail on any
difference.

Usage: python scripts/gen_protos.py [OUT_DIR]   (default: mesh/proto/v1; OIP always in place)
"""

from __future__ import annotations

import re
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROTO_ROOT = ROOT / "protos"


@dataclass(frozen=True)
class Family:
    """One folder of .proto files and the package its generated modules live in."""

    source: str  # folder under protos/, also the import path protoc writes ("mesh/v1")
    package: str  # Python package of the generated modules ("mesh.proto.v1")

    @property
    def out(self) -> Path:
        return ROOT.joinpath(*self.package.split("."))


MESH = Family("mesh/v1", "mesh.proto.v1")
OIP = Family("oip/v2", "mesh.proto.oip.v2")
FAMILIES = (MESH, OIP)
DEFAULT_OUT = MESH.out


def generate(out_dir: Path, family: Family = MESH) -> list[Path]:
    """Run protoc on every .proto file of ``family`` and write the rewritten modules."""
    from grpc_tools import protoc  # dev dependency: only needed to regenerate

    sources = (PROTO_ROOT / family.source).glob("*.proto")
    protos = sorted(str(p.relative_to(PROTO_ROOT)) for p in sources)
    dotted = re.escape(family.source.replace("/", "."))
    imports = re.compile(rf"^from {dotted} import ", re.MULTILINE)
    module = re.compile(rf"'{dotted}\.(\w+_pb2)'")
    with tempfile.TemporaryDirectory() as tmp:
        include = str(Path(protoc.__file__).parent / "_proto")
        args = ["protoc", f"-I{PROTO_ROOT}", f"-I{include}", f"--python_out={tmp}",
                f"--pyi_out={tmp}", f"--grpc_python_out={tmp}", *protos]
        if protoc.main(args) != 0:
            raise SystemExit(f"protoc failed on {protos}")
        out_dir.mkdir(parents=True, exist_ok=True)
        written = []
        for src in sorted((Path(tmp) / family.source).iterdir()):
            text = imports.sub(f"from {family.package} import ", src.read_text())
            text = module.sub(rf"'{family.package}.\1'", text)
            dst = out_dir / src.name
            dst.write_text(text)
            written.append(dst)
        init = out_dir / "__init__.py"
        init.write_text(f'"""Generated from protos/{family.source} by scripts/gen_protos.py."""\n')
        written.append(init)
    return written


def main() -> None:
    if len(sys.argv) > 1:
        out = Path(sys.argv[1])
        for path in generate(out):
            print(path)
        return
    for family in FAMILIES:
        if family.out.exists():
            shutil.rmtree(family.out)
        for path in generate(family.out, family):
            print(path.relative_to(ROOT))
    parent_init = OIP.out.parent / "__init__.py"
    parent_init.write_text('"""Generated Open Inference Protocol code (see v2/)."""\n')


if __name__ == "__main__":
    main()
