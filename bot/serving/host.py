"""The model host: owns the executor where every torch op runs, and the loaded models.

    host = ModelHost("data/models/default.pt", device="auto", queue_size=32, batch_size=8)
    await host.start()                  # loads the checkpoint in the executor
    done = await host.complete(GenerationRequest(seed="Hey,", max_chars=200, rng_seed=7))
    await host.close()                  # finishes queued requests, then stops the executor

``complete`` puts the request on a bounded queue and awaits its future; a full queue raises
``BusyError`` at once instead of piling up work. ``queue_size`` bounds every request that waits: queued,
held by the worker for a batch of its model, or held while its server's model loads (``use(...,
hold=True)``), so ten cold server models cannot let ten times the queue wait. The batching loop
(``bot.serving.batcher``) steps the requests in one single-thread executor, so the event loop never
runs a torch op and a model is never used by two threads at once; its torch ops run on ``threads``
intra-op threads (default: every core but one, the README's Performance section says why).

Besides the default model (always kept), ``use(model_id, path)`` loads a server's model on demand, in the
same executor, so a model is loaded between two batches and appears whole. At most ``max_models`` stay
loaded; the least recently used goes first, never while requests for it wait or run. A bad file raises
the checkpoint's ``CheckpointError`` and leaves every loaded model as it was.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from collections import Counter, OrderedDict, deque
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import torch

from bot.errors import BusyError, ShuttingDownError
from bot.ops import metrics
from bot.serving.batcher import DEFAULT_MODEL_ID, Batcher, GenerationRequest, RowField
from bot.settings import Settings
from model.checkpoint import LoadedModel, load_checkpoint
from model.device import resolve_device
from model.generate import Completion, Decoder, Generator
from model.sampling import SamplingDecoder
from model.vocab import Vocab

__all__ = ["DEFAULT_MODEL_ID", "GenerationRequest", "ModelHost", "default_threads"]

_log = logging.getLogger(__name__)


def default_threads() -> int:
    """Torch threads for generation: every core this process may use but one (for the event loop)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return max(1, cores - 1)


class ModelHost:
    """Loads models in its own executor and completes queued requests there, in batches."""

    def __init__(
        self,
        model_path: str | Path,
        device: str = "auto",
        *,
        queue_size: int = 32,
        batch_size: int = 8,
        batch_wait: float = 0.005,
        threads: int | None = None,
        max_models: int = 8,
    ):
        if queue_size < 1 or batch_size < 1 or max_models < 1:
            raise ValueError("queue_size, batch_size and max_models must be at least 1")
        if batch_wait < 0 or (threads is not None and threads < 0):
            raise ValueError("batch_wait and threads must not be negative")
        self.model_path = Path(model_path)
        self.device_name = device
        self.queue_size = queue_size
        self.batch_size = batch_size
        self.batch_wait = batch_wait  # seconds
        self.threads = threads or default_threads()
        # One thread: a model is never stepped by two threads at once, and batches run in order. Its
        # torch thread count is set inside it (OpenMP keeps the count per calling thread).
        self._executor = ThreadPoolExecutor(
            max_workers=1,
            thread_name_prefix="model-host",
            initializer=torch.set_num_threads,
            initargs=(self.threads,),
        )
        self._models: dict[str, LoadedModel] = {}
        self._generators: dict[str, Generator] = {}
        # Per-server models: least recently used first; where each came from (to load it again after
        # it was evicted); loads in progress (so many requests load a model once); requests per model.
        self.max_models = max_models
        self._recent: OrderedDict[str, None] = OrderedDict()
        self._paths: dict[str, Path] = {}
        self._loading: dict[str, asyncio.Future[None]] = {}
        self._pending: Counter[str] = Counter()
        self._held_for_load = 0  # requests waiting for their server's model to load (they count as waiting)
        self._batcher: Batcher | None = None  # made in start(), on the event loop
        self._worker: asyncio.Task[None] | None = None
        self._closing = False
        self._load_thread_ids: set[int] = set()
        self.executor_torch_threads = 0  # torch.get_num_threads() in the executor, once started

    @classmethod
    def from_settings(cls, settings: Settings) -> ModelHost:
        return cls(
            settings.model_path,
            settings.device,
            queue_size=settings.queue_size,
            batch_size=settings.batch_size,
            batch_wait=settings.batch_wait_ms / 1000,
            threads=settings.generation_threads or None,
            max_models=settings.max_loaded_models,
        )

    @property
    def started(self) -> bool:
        return self._worker is not None and not self._worker.done()

    def vocab(self, model_id: str = DEFAULT_MODEL_ID) -> Vocab:
        """The vocabulary of a loaded model (plain Python; safe on the event loop)."""
        return self._models[model_id].vocab

    def loaded(self, model_id: str = DEFAULT_MODEL_ID) -> LoadedModel:
        return self._models[model_id]

    async def start(self) -> None:
        """Load the default model in the executor and start the batching worker."""
        if self._worker is not None:
            raise RuntimeError("the model host is already started")
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._executor, self._load, DEFAULT_MODEL_ID, self.model_path)
        self._batcher = self._make_batcher()
        self._worker = asyncio.create_task(self._batcher.work(), name="model-host-worker")

    def _make_batcher(self) -> Batcher:
        return Batcher(
            self._executor,
            self._generators.__getitem__,
            self.row_decoder,
            queue_size=self.queue_size,
            batch_size=self.batch_size,
            batch_wait=self.batch_wait,
        )

    def _load(self, model_id: str, path: Path) -> None:
        """In the executor: load a checkpoint onto the configured device."""
        self._load_thread_ids.add(threading.get_ident())
        self.executor_torch_threads = torch.get_num_threads()
        started = time.perf_counter()
        loaded = load_checkpoint(path, device=resolve_device(self.device_name))
        # The generator first: the model id appears in _models only once everything is in place.
        self._generators[model_id] = Generator(loaded.model, loaded.vocab)
        self._models[model_id] = loaded
        _log.info(
            "loaded model %r from %s on %s in %.2fs",
            model_id,
            path,
            loaded.device,
            time.perf_counter() - started,
        )

    @property
    def batch_sizes(self) -> deque[int]:
        """Per recent batch, the most rows it ran at once."""
        return self._batcher.batch_sizes if self._batcher else deque()

    @property
    def batch_rows(self) -> deque[int]:
        """Per recent batch, the rows it served (those that joined it too)."""
        return self._batcher.batch_rows if self._batcher else deque()

    @property
    def batch_fill(self) -> deque[float]:
        """Per recent batch, characters generated / (its steps x the most rows it ran at once)."""
        return self._batcher.batch_fill if self._batcher else deque()

    @property
    def torch_thread_ids(self) -> set[int]:
        """The threads torch ran on: loads and batches (one, the executor's)."""
        return self._load_thread_ids | (self._batcher.torch_thread_ids if self._batcher else set())

    @property
    def waiting(self) -> int:
        """Requests waiting for the model: held while a server model loads, queued, or held by the
        worker for a batch of their model. ``queue_size`` bounds this number."""
        return self._held_for_load + (self._batcher.waiting if self._batcher else 0)

    def _admit_one(self) -> None:
        """Raise ``BusyError`` when one more waiting request would pass ``queue_size``."""
        if self.waiting >= self.queue_size:
            raise BusyError()

    @property
    def loaded_count(self) -> int:
        """Models loaded now, the bundled one included."""
        return len(self._models)

    @property
    def loaded_ids(self) -> list[str]:
        """The server models loaded now, least recently used first (the default model is not listed)."""
        return list(self._recent)

    async def use(self, model_id: str, path: str | Path, *, hold: bool = False) -> str:
        """Make sure the model ``model_id`` (the checkpoint at ``path``) is loaded; returns ``model_id``.

        Loads it in the executor if needed (between batches), then evicts the least recently used
        server models beyond ``max_models``. Raises the checkpoint's ``CheckpointError`` for a bad file.
        ``hold``: the caller is a quote request, which waits for the load as it would in the queue, so
        it counts against ``queue_size`` meanwhile (``BusyError`` when the queue is full).
        """
        if model_id == DEFAULT_MODEL_ID:
            return model_id
        if self._closing:
            raise ShuttingDownError()
        if model_id in self._models:
            self._recent.move_to_end(model_id)
            return model_id
        if hold:
            self._admit_one()
        loading = self._loading.get(model_id)
        if loading is None:
            loop = asyncio.get_running_loop()
            loading = loop.run_in_executor(self._executor, self._load, model_id, Path(path))
            self._loading[model_id] = loading
            loading.add_done_callback(lambda done: self._loaded(model_id, Path(path), done))
        self._held_for_load += hold
        try:
            await asyncio.shield(loading)  # one caller giving up does not cancel the others' load
        finally:
            self._held_for_load -= hold
        return model_id

    def _loaded(self, model_id: str, path: Path, done: asyncio.Future[None]) -> None:
        """On the event loop, once a load has ended (whoever still waits for it): count the model in."""
        self._loading.pop(model_id, None)
        if done.cancelled() or done.exception() is not None or model_id not in self._models:
            return
        self._paths[model_id] = path
        self._recent[model_id] = None
        self._recent.move_to_end(model_id)
        self._evict()

    def _evict(self) -> None:
        """Drop least recently used server models beyond ``max_models``, skipping any still in use."""
        for model_id in list(self._recent)[:-1]:  # never the one just used
            if len(self._recent) <= self.max_models:
                return
            if self._pending[model_id] > 0:
                continue  # requests for it are queued or running: it goes once they are done
            del self._recent[model_id]
            self._models.pop(model_id, None)
            self._generators.pop(model_id, None)
            _log.info("unloaded model %r (least recently used)", model_id)

    async def complete(self, request: GenerationRequest) -> Completion:
        """Queue a request and wait for its completion; ``BusyError`` at once when the queue is full."""
        if self._closing:
            raise ShuttingDownError()
        if self._batcher is None:
            raise RuntimeError("the model host is not started")
        model_id = request.model_id
        if model_id not in self._models and model_id not in self._paths:
            raise KeyError(f"no model {model_id!r} is loaded")
        # Counted from here until the answer, so the model cannot be evicted under its requests.
        self._pending[model_id] += 1
        try:
            if model_id not in self._models:  # evicted since the caller's use(): load it again
                await self.use(model_id, self._paths[model_id], hold=True)
            # Checked here, per request, so one bad seed cannot fail the whole batch it would join.
            self._models[model_id].vocab.encode(request.seed)
            self._admit_one()
            try:
                future = self._batcher.submit(request)
            except asyncio.QueueFull:
                raise BusyError() from None
            with metrics.GENERATION_SECONDS.time():
                return await future
        finally:
            self._pending[model_id] -= 1
            if self._pending[model_id] <= 0:
                del self._pending[model_id]
                if len(self._recent) > self.max_models:
                    self._evict()  # it may have been spared while its requests ran

    async def close(self, timeout: float = 30.0) -> None:
        """Refuse new requests, finish the queued ones (within ``timeout``), then stop the executor."""
        if self._closing:
            return
        self._closing = True
        if self._worker is not None and self._batcher is not None and not self._worker.done():
            try:
                await asyncio.wait_for(self._finish_queue(), timeout)
            except asyncio.TimeoutError:
                _log.warning("model host: queued requests did not finish in %.0fs; cancelling", timeout)
                self._worker.cancel()
                self._batcher.fail_waiting()
        self._executor.shutdown(wait=False, cancel_futures=True)
        self._generators.clear()
        self._models.clear()

    async def _finish_queue(self) -> None:
        assert self._batcher is not None and self._worker is not None
        await self._batcher.queue.put(None)  # behind every queued request, so they are all served first
        await self._worker

    def row_decoder(self, requests: list[GenerationRequest], vocab: Vocab) -> Decoder:
        """In the executor: the decoder of one running batch, each row with its own sampling settings
        and RNG seed. ``requests[key]`` is the row with that key; rows join later, so the list grows
        after this call and the decoder must read it when it first sees a row, not copy it now."""
        return SamplingDecoder(vocab, RowField(requests, "sampling"), RowField(requests, "rng_seed"))
