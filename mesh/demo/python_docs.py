"""python-docs: answers about the Python language from Python's own documentation.

Data: ``pydoc_data.topics``, the reference and library topics CPython ships for ``help()``
(79 topics, PSF licence), so the expert's knowledge matches the running interpreter and needs
no download. Topics are cut into passages at section headings and paragraph ends (about a
paragraph each, small enough that MiniLM's 128-token window sees most of every passage),
embedded with mesh.embedding, and stored as an ONNX index model (see
mesh.experts.onnx.retrieval for why the index is a model).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np

from mesh.demo.common import IR_VERSION, finish_model, write_sidecar
from mesh.embedding import BUNDLED, Embedder
from mesh.experts.onnx.retrieval import K_INPUT, META_EMBEDDER, META_PASSAGES, QUERY_INPUT
from mesh.experts.onnx.sidecar import DataInfo, Passage, RetrievalSidecar

MODEL = "python_docs.onnx"
SIDECAR = "python_docs.json"

TARGET_CHARS = 350
"""Paragraphs are merged until a passage reaches this size..."""
MAX_CHARS = 800
"""...but never beyond this one (unless a single paragraph is longer; it is then split)."""

_UNDERLINE = re.compile(r"^([*=\-~^])\1+$")


def _sections(text: str, key: str) -> list[tuple[str, str]]:
    """(title, body) per section; a heading is a line underlined by a run of * = - ~ ^.

    The first heading is the topic's title ('The "for" statement'); later ones are shown
    under it ('Data model: Special method names') so a passage names where it comes from.
    """
    lines = text.splitlines()
    topic_title: str | None = None
    title = key
    sections: list[tuple[str, str]] = []
    body: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i].strip()
        underline = lines[i + 1].strip() if i + 1 < len(lines) else ""
        if line and _UNDERLINE.match(underline) and len(underline) >= len(line):
            sections.append((title, "\n".join(body)))
            if topic_title is None:
                topic_title = title = line
            else:
                title = f"{topic_title}: {line}"
            body = []
            i += 2
            continue
        body.append(lines[i])
        i += 1
    sections.append((title, "\n".join(body)))
    return [(t, b) for t, b in sections if b.strip()]


def _split_long(text: str) -> list[str]:
    """Cut text longer than MAX_CHARS at line ends, and over-long lines at sentence ends."""
    units: list[tuple[str, str]] = []  # (piece, separator before it)
    for line in text.splitlines():
        sentences = re.split(r"(?<=[.!?:])\s+", line) if len(line) > MAX_CHARS else [line]
        units.extend((s, "\n" if i == 0 else " ") for i, s in enumerate(sentences))
    pieces, current = [], ""
    for piece, sep in units:
        if current and len(current) + len(piece) + 1 > MAX_CHARS:
            pieces.append(current)
            current = ""
        current = f"{current}{sep}{piece}" if current else piece
    return [p.strip("\n") for p in [*pieces, current] if p.strip()]


def _preformatted(paragraph: str) -> bool:
    """Code, grammar rules and tables keep their line breaks; prose is unwrapped."""
    return paragraph.startswith((" ", "\t")) or any(
        line.startswith(("+-", "|", "==")) for line in paragraph.splitlines()
    )


def _passages(title: str, key: str, text: str) -> list[Passage]:
    return [Passage(title=title, text=c, topic=key) for c in _split_long(text)]


def chunk_topic(key: str, text: str) -> list[Passage]:
    """Passages of one topic: paragraphs merged up to TARGET_CHARS within a section.

    An indented paragraph (a code example or grammar rule) stays with the text before it,
    since the example alone rarely answers a question.
    """
    passages: list[Passage] = []
    for title, body in _sections(text, key):
        paragraphs = [p for p in re.split(r"\n\s*\n", body) if p.strip()]
        current = ""
        for para in paragraphs:
            para = para.rstrip().strip("\n")
            indented = _preformatted(para)
            if not indented:  # unwrap prose (pydoc wraps at 72 columns); keep code as it is
                para = " ".join(line.strip() for line in para.splitlines())
            fits = len(current) + len(para) + 2 <= MAX_CHARS
            if current and ((len(current) >= TARGET_CHARS and not indented) or not fits):
                passages.extend(_passages(title, key, current))
                current = ""
            current = f"{current}\n\n{para}" if current else para
        if current.strip():
            passages.extend(_passages(title, key, current))
    return passages


def dedupe(passages: list[Passage]) -> list[Passage]:
    """Drop repeated passages, keeping the one under the most specific title.

    pydoc repeats text: the "compound" topic contains the whole "for" topic. Repeats would fill
    the top k with one passage twice; the shortest title ('The "for" statement', not
    'Compound statements: The "for" statement') is the one a reader recognises.
    """
    best: dict[str, Passage] = {}
    for p in passages:
        key = " ".join(p.text.split())
        if key not in best or len(p.title) < len(best[key].title):
            best[key] = p
    keep = {id(p) for p in best.values()}
    return [p for p in passages if id(p) in keep]


def _index_model(embeddings: np.ndarray) -> object:
    """ONNX graph: scores = query @ passagesᵀ (cosine, as rows are unit length), then TopK."""
    from onnx import TensorProto, helper, numpy_helper

    dim = embeddings.shape[1]
    weights = numpy_helper.from_array(np.ascontiguousarray(embeddings.T), "passages_t")
    graph = helper.make_graph(
        [
            helper.make_node("MatMul", [QUERY_INPUT, "passages_t"], ["all_scores"]),
            helper.make_node("TopK", ["all_scores", K_INPUT], ["scores", "indices"],
                             axis=-1, largest=1, sorted=1),
        ],
        "passage_index",
        [
            helper.make_tensor_value_info(QUERY_INPUT, TensorProto.FLOAT, ["n", dim]),
            helper.make_tensor_value_info(K_INPUT, TensorProto.INT64, [1]),
        ],
        [
            helper.make_tensor_value_info("scores", TensorProto.FLOAT, ["n", "k"]),
            helper.make_tensor_value_info("indices", TensorProto.INT64, ["n", "k"]),
        ],
        initializer=[weights],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = IR_VERSION
    return model


def build(out: Path) -> list[Path]:
    """Chunk, embed and index the pydoc topics; returns the files written."""
    import sys
    from pydoc_data.topics import topics

    passages = dedupe([p for key in sorted(topics) for p in chunk_topic(key, topics[key])])
    # A build-time embedder on every core (the shared one uses one thread, as serving wants);
    # same model and weights, so the vectors match what the expert embeds questions with.
    embedder = Embedder(BUNDLED, threads=os.cpu_count() or 1)
    # The title goes into the embedded text: "The for statement" is what a question matches.
    embeddings = embedder.embed_batched([f"{p.title}: {p.text}" for p in passages])
    sidecar = RetrievalSidecar(
        title="the Python documentation",
        embedder=BUNDLED,
        dim=embedder.dim,
        passages=passages,
        data=DataInfo(
            name=f"Python {sys.version_info.major}.{sys.version_info.minor} documentation topics",
            source="pydoc_data.topics, shipped with CPython (the topics behind help())",
            licence="PSF License (Python documentation)",
            row_noun="passages",
            n_train=len(passages),
        ),
    )
    finish_model(
        _index_model(embeddings), out / MODEL,
        f"Cosine top-k over {len(passages)} Python documentation passages",
        {META_EMBEDDER: BUNDLED, META_PASSAGES: str(len(passages)), "mesh.sidecar": SIDECAR},
    )
    write_sidecar(out / SIDECAR, sidecar)
    return [out / MODEL, out / SIDECAR]
