"""The model host: owns the executor where every torch op runs, and batches requests.

    host = ModelHost("data/models/default.pt", device="auto", queue_size=32, batch_size=8)
    await host.start()                  # loads the checkpoint in the executor
    done = await host.complete(GenerationRequest(seed="Hey,", max_chars=200, rng_seed=7))
    await host.close()                  # finishes queued requests, then stops the executor

``complete`` puts the request on a bounded queue and awaits its future; a full queue raises
``BusyError`` at once instead of piling up work. One worker task on the event loop takes the waiting
requests of one model (up to ``batch_size``; a request waits at most ``batch_wait`` seconds after it
was queued for others to join it) and starts them as a ``RunningBatch``, stepped in a single-thread
executor, so the event loop never runs a torch op and the model is never used by two threads at once.
Rows leave as they end (their callers get the answer at once), and requests of the same model that
arrive meanwhile JOIN the running batch at its next step, up to ``batch_size`` rows: the executor
stops stepping when a row ends or a request arrives, and the worker adds the newcomers. A batch stops
admitting (and runs down) once a request of another model waits, so no model starves, or after
``MAX_ROWS_PER_RUN`` rows, which bounds the per-row state its decoder keeps.

The executor's torch ops run on ``threads`` intra-op threads (default: every core but one). On a
2-core machine, two OpenMP threads next to the event loop (or any other busy process) wait on each
other at every small op: on the 2-core development machine, with one core busy elsewhere, 64 quotes
took 12 s with 2 threads and 1.1 s with 1 (a 2x512 LSTM), while the event loop's lag stayed low either way.

Models are kept in a dict keyed by model id and each batch is grouped by model id. Besides the default
model (always kept), ``use(model_id, path)`` loads a server's model on demand, in the executor: since
that thread also runs the batches, a model is loaded between two batches and put in the dict whole, so
no request ever sees a half-loaded model. At most ``max_models`` of them stay loaded; the least recently
used one goes first, but never while requests for it are waiting or running. A bad file raises the
checkpoint's error (``CheckpointError``) and leaves every loaded model as it was.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from collections import Counter, OrderedDict, deque
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from bot.errors import BusyError, ShuttingDownError
from bot.settings import Settings
from model.checkpoint import LoadedModel, load_checkpoint
from model.device import resolve_device
from model.generate import Completion, Decoder, Generator, RunningBatch
from model.sampling import SamplingConfig, SamplingDecoder
from model.vocab import Vocab

DEFAULT_MODEL_ID = "default"
MAX_ROWS_PER_RUN = 4096  # rows one running batch admits before it runs down (see the module docstring)
_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class GenerationRequest:
    """One quote to write. ``seed`` must already be in the model's vocabulary (``Vocab.prepare_seed``)."""

    seed: str
    max_chars: int
    sampling: SamplingConfig = field(default_factory=SamplingConfig)
    rng_seed: int | None = None  # None: a fresh random quote every time
    model_id: str = DEFAULT_MODEL_ID


@dataclass
class _Pending:
    request: GenerationRequest
    future: asyncio.Future[Completion]
    queued_at: float  # loop.time() when it was queued: it waits at most batch_wait from here


class _Column(Sequence[Any]):
    """One field of a running batch's requests by row key; rows join later, so it reads them live."""

    def __init__(self, requests: list[GenerationRequest], name: str):
        self.requests = requests
        self.name = name

    def __getitem__(self, row):  # type: ignore[override]
        return getattr(self.requests[row], self.name)

    def __len__(self) -> int:
        return len(self.requests)


@dataclass
class _Run:
    """A running batch of one model and the callers waiting for its rows."""

    model_id: str
    batch: RunningBatch | None = None  # made in the executor, with the first rows
    requests: list[GenerationRequest] = field(default_factory=list)  # by row key, for the decoder
    waiting: dict[int, _Pending] = field(default_factory=dict)  # row key -> its caller
    peak: int = 0  # the most rows it ran at once
    started: float = field(default_factory=time.perf_counter)


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
        self._queue: asyncio.Queue[_Pending | None] | None = None
        self._held: deque[_Pending] = deque()  # taken from the queue, waiting for a batch of their model
        self._arrived = threading.Event()  # set on every new request; the executor's stepping checks it
        self._worker: asyncio.Task[None] | None = None
        self._closing = False
        # What the worker did, for logs and tests: recent batch sizes and the threads torch ran on.
        self.batch_sizes: deque[int] = deque(maxlen=1000)  # per batch, the most rows it ran at once
        self.batch_rows: deque[int] = deque(maxlen=1000)  # per batch, the rows it served (joiners too)
        # Per batch: characters generated / (its steps x the most rows it ran at once). Rows leave as
        # they end and newcomers join, so this is how full the batch was kept.
        self.batch_fill: deque[float] = deque(maxlen=1000)
        self.torch_thread_ids: set[int] = set()
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
        self._queue = asyncio.Queue(maxsize=self.queue_size)
        self._worker = asyncio.create_task(self._work(), name="model-host-worker")

    def _load(self, model_id: str, path: Path) -> None:
        """In the executor: load a checkpoint onto the configured device."""
        self.torch_thread_ids.add(threading.get_ident())
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
    def loaded_ids(self) -> list[str]:
        """The server models loaded now, least recently used first (the default model is not listed)."""
        return list(self._recent)

    async def use(self, model_id: str, path: str | Path) -> str:
        """Make sure the model ``model_id`` (the checkpoint at ``path``) is loaded; returns ``model_id``.

        Loads it in the executor if needed (between batches), then evicts the least recently used
        server models beyond ``max_models``. Raises the checkpoint's ``CheckpointError`` for a bad file.
        """
        if model_id == DEFAULT_MODEL_ID:
            return model_id
        if self._closing:
            raise ShuttingDownError()
        if model_id in self._models:
            self._recent.move_to_end(model_id)
            return model_id
        loading = self._loading.get(model_id)
        if loading is None:
            loop = asyncio.get_running_loop()
            loading = loop.run_in_executor(self._executor, self._load, model_id, Path(path))
            self._loading[model_id] = loading
            loading.add_done_callback(lambda done: self._loaded(model_id, Path(path), done))
        await asyncio.shield(loading)  # one caller giving up does not cancel the others' load
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
        if self._queue is None:
            raise RuntimeError("the model host is not started")
        model_id = request.model_id
        if model_id not in self._models and model_id not in self._paths:
            raise KeyError(f"no model {model_id!r} is loaded")
        # Counted from here until the answer, so the model cannot be evicted under its requests.
        self._pending[model_id] += 1
        try:
            if model_id not in self._models:  # evicted since the caller's use(): load it again
                await self.use(model_id, self._paths[model_id])
            # Checked here, per request, so one bad seed cannot fail the whole batch it would join.
            self._models[model_id].vocab.encode(request.seed)
            loop = asyncio.get_running_loop()
            future: asyncio.Future[Completion] = loop.create_future()
            try:
                self._queue.put_nowait(_Pending(request, future, loop.time()))
            except asyncio.QueueFull:
                raise BusyError() from None
            self._arrived.set()
            return await future
        finally:
            self._pending[model_id] -= 1
            if self._pending[model_id] <= 0:
                del self._pending[model_id]
                if len(self._recent) > self.max_models:
                    self._evict()  # it may have been spared while its requests ran

    async def _work(self) -> None:
        """The batching loop: wait for a request, gather its model's others, run them as one batch
        that newcomers of the same model join while it runs."""
        assert self._queue is not None
        loop = asyncio.get_running_loop()
        stopping = False
        while True:
            if not self._held:
                if stopping:
                    break
                first = await self._queue.get()
                if first is None:
                    break
                self._held.append(first)
            first = self._held[0]
            model_id = first.request.model_id
            stopping = self._drain(self.batch_size - self._count_held(model_id)) or stopping
            # A moment for requests arriving together, counted from the first one's arrival: one that
            # already waited through the previous batch goes at once.
            wait = first.queued_at + self.batch_wait - loop.time()
            if not stopping and self._count_held(model_id) < self.batch_size and wait > 0:
                await asyncio.sleep(wait)
                stopping = self._drain(self.batch_size - self._count_held(model_id)) or stopping
            stopping = await self._run(model_id, self._take(model_id, self.batch_size), stopping)

    async def _run(self, model_id: str, newcomers: list[_Pending], stopping: bool) -> bool:
        """Run one batch until its last row ends, admitting newcomers between steps; returns
        ``stopping`` (True once the stop mark was seen)."""
        loop = asyncio.get_running_loop()
        run = _Run(model_id)
        while True:
            newcomers = [p for p in newcomers if not p.future.done()]  # callers that gave up
            if newcomers:
                try:
                    keys = await loop.run_in_executor(
                        self._executor, self._admit, run, [p.request for p in newcomers]
                    )
                except asyncio.CancelledError:  # close() gave up waiting: the callers must not hang
                    _fail([*newcomers, *run.waiting.values()], ShuttingDownError())
                    raise
                except Exception as exc:  # only the newcomers fail; the running rows go on
                    _fail(newcomers, exc)
                else:
                    run.waiting.update(zip(keys, newcomers, strict=True))
            if run.batch is None or not run.batch.busy:
                break
            try:
                finished = await loop.run_in_executor(self._executor, self._advance, run, self._admits(run))
            except asyncio.CancelledError:
                _fail(list(run.waiting.values()), ShuttingDownError())
                raise
            except Exception as exc:  # the callers get the error; the worker carries on
                _fail(list(run.waiting.values()), exc)
                break
            for key, completion in finished:
                pending = run.waiting.pop(key)
                if not pending.future.done():
                    pending.future.set_result(completion)
            newcomers = []
            room = self.batch_size - len(run.batch)
            if room > 0 and self._admits(run):
                self._arrived.clear()  # before draining: a request queued after this sets it again
                stopping = self._drain(room) or stopping
                newcomers = self._take(model_id, room)
        self._record(run)
        return stopping

    def _admits(self, run: _Run) -> bool:
        """Whether a running batch still takes newcomers: not once another model's request waits."""
        if len(run.requests) >= MAX_ROWS_PER_RUN:
            return False
        return all(p.request.model_id == run.model_id for p in self._held)

    def _count_held(self, model_id: str) -> int:
        return sum(p.request.model_id == model_id for p in self._held)

    def _take(self, model_id: str, limit: int) -> list[_Pending]:
        """Up to ``limit`` held requests of ``model_id``, oldest first, out of the held ones."""
        taken = [p for p in self._held if p.request.model_id == model_id][:limit]
        for pending in taken:
            self._held.remove(pending)
        return taken

    def _drain(self, limit: int) -> bool:
        """Move up to ``limit`` waiting requests from the queue to the held ones; True if the stop mark
        was seen."""
        assert self._queue is not None
        for _ in range(max(0, limit)):
            try:
                item = self._queue.get_nowait()
            except asyncio.QueueEmpty:
                return False
            if item is None:
                return True
            self._held.append(item)
        return False

    def _admit(self, run: _Run, requests: list[GenerationRequest]) -> list[int]:
        """In the executor: start ``requests`` as new rows of the running batch; returns their keys."""
        self.torch_thread_ids.add(threading.get_ident())
        if run.batch is None:
            vocab = self._models[run.model_id].vocab
            run.batch = self._generators[run.model_id].batch(self.row_decoder(run.requests, vocab))
        keys = run.batch.add([r.seed for r in requests], [r.max_chars for r in requests])
        # Keys count up from 0 in the order rows were added, so a row's key is its place in the list.
        assert keys == list(range(len(run.requests), len(run.requests) + len(requests)))
        run.requests.extend(requests)
        run.peak = max(run.peak, len(run.batch))
        return keys

    def _advance(self, run: _Run, admits: bool) -> list[tuple[int, Completion]]:
        """In the executor: step the batch until a row ends, or (``admits``: there is room and) a
        request arrived, or no row is left."""
        assert run.batch is not None
        batch = run.batch
        while True:
            finished = batch.step()
            if finished or not batch.busy:
                return finished
            if admits and self._arrived.is_set() and len(batch) < self.batch_size:
                return finished

    def _record(self, run: _Run) -> None:
        """Note a finished batch's size and fill."""
        if run.batch is None or not run.requests:
            return
        self.batch_sizes.append(run.peak)
        self.batch_rows.append(len(run.requests))
        self.batch_fill.append(run.batch.row_steps / max(1, run.batch.steps * run.peak))
        _log.debug(
            "completed a batch of %d (at most %d at once) in %.3fs",
            len(run.requests),
            run.peak,
            time.perf_counter() - run.started,
        )

    def row_decoder(self, requests: list[GenerationRequest], vocab: Vocab) -> Decoder:
        """In the executor: the decoder of one running batch, each row with its own sampling settings
        and RNG seed. ``requests[key]`` is the row with that key; rows join later, so the list grows
        after this call and the decoder must read it when it first sees a row, not copy it now."""
        return SamplingDecoder(vocab, _Column(requests, "sampling"), _Column(requests, "rng_seed"))

    async def close(self, timeout: float = 30.0) -> None:
        """Refuse new requests, finish the queued ones (within ``timeout``), then stop the executor."""
        if self._closing:
            return
        self._closing = True
        if self._worker is not None and self._queue is not None and not self._worker.done():
            try:
                await asyncio.wait_for(self._finish_queue(), timeout)
            except asyncio.TimeoutError:
                _log.warning("model host: queued requests did not finish in %.0fs; cancelling", timeout)
                self._worker.cancel()
                self._fail_waiting()
        self._executor.shutdown(wait=False, cancel_futures=True)
        self._generators.clear()
        self._models.clear()

    async def _finish_queue(self) -> None:
        assert self._queue is not None and self._worker is not None
        await self._queue.put(None)  # behind every queued request, so they are all served first
        await self._worker

    def _fail_waiting(self) -> None:
        """Give every request still in the queue a ``ShuttingDownError``."""
        assert self._queue is not None
        waiting = list(self._held)
        self._held.clear()
        while not self._queue.empty():
            item = self._queue.get_nowait()
            if item is not None:
                waiting.append(item)
        _fail(waiting, ShuttingDownError())


def _fail(batch: list[_Pending], exc: BaseException) -> None:
    for pending in batch:
        if not pending.future.done():
            pending.future.set_exception(exc)
