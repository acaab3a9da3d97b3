"""Concurrent requests share one embedding run: batching that adds no wait at low load.

The orchestrator routes each request in a worker thread. Under load several threads want the
embedder at once; one model run over all their texts costs far less than one run each (a batch
of 8 short requests runs in about twice the time of one). There is no timer: the first caller
runs the model at once with whatever is queued; callers arriving while it runs are queued and
served together by the next run. A lone request never waits for company.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

import numpy as np

from mesh.router.index import TextEmbedder

MAX_BATCH_TEXTS = 64
"""Most texts one model run takes (bounds the latency of the request that leads it)."""


@dataclass
class _Pending:
    texts: list[str]
    done: threading.Event = field(default_factory=threading.Event)
    result: np.ndarray | None = None
    error: BaseException | None = None


class CoalescingEmbedder:
    """Wraps an embedder so that concurrent ``embed`` calls share model runs.

    Nearly the same results as the wrapped embedder: the fast int8 model quantizes activations
    per batch, so a request batched with others gets a vector within cosine ~0.99 of its own
    run (routing decisions can differ only for requests within a hair of a threshold or tie).
    ``embed_batched`` (index builds) passes straight through.
    """

    def __init__(self, inner: TextEmbedder, max_batch_texts: int = MAX_BATCH_TEXTS) -> None:
        self.inner = inner
        self.name = inner.name
        self.max_batch_texts = max_batch_texts
        self._cond = threading.Condition()
        self._queue: list[_Pending] = []
        self._running = False
        self.runs = 0
        """Model runs so far (each may serve several calls)."""
        self.calls = 0
        """``embed`` calls so far."""

    def embed_batched(self, texts: list[str], batch_size: int = 64) -> np.ndarray:
        return self.inner.embed_batched(texts, batch_size)

    def embed(self, texts: list[str]) -> np.ndarray:
        """Vectors for ``texts``, computed in a model run shared with concurrent callers.

        The caller that finds the model idle leads: it runs batches from the front of the
        queue until its own texts are done, then hands the lead to a waiting caller, so no
        caller serves others indefinitely.
        """
        mine = _Pending(list(texts))
        with self._cond:
            self.calls += 1
            self._queue.append(mine)
            while self._running and not mine.done.is_set():
                self._cond.wait()
            if not mine.done.is_set():
                self._running = True
        if not mine.done.is_set():
            try:
                while not mine.done.is_set():
                    self._run_one_batch()
            finally:
                with self._cond:
                    self._running = False
                    self._cond.notify_all()
        if mine.error is not None:
            raise mine.error
        assert mine.result is not None
        return mine.result

    def _take(self) -> list[_Pending]:
        """The next batch from the queue (at least one call, at most ``max_batch_texts``)."""
        batch: list[_Pending] = []
        size = 0
        while self._queue and (
            not batch or size + len(self._queue[0].texts) <= self.max_batch_texts
        ):
            item = self._queue.pop(0)
            batch.append(item)
            size += len(item.texts)
        return batch

    def _run_one_batch(self) -> None:
        """One model run for the front of the queue; results (or the error) to each caller."""
        with self._cond:
            batch = self._take()
            self.runs += 1
        flat = [t for item in batch for t in item.texts]
        try:
            vectors = self.inner.embed(flat)
        except BaseException as e:  # every caller in the batch gets the failure, none hangs
            for item in batch:
                item.error = e
                item.done.set()
        else:
            start = 0
            for item in batch:
                item.result = vectors[start : start + len(item.texts)]
                start += len(item.texts)
                item.done.set()
        with self._cond:
            self._cond.notify_all()
