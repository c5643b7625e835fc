"""The model host's batching loop: waiting requests of one model become one running batch.

One worker task on the event loop takes the waiting requests of one model (up to ``batch_size``; a
request waits at most ``batch_wait`` seconds after it was queued for others to join it) and starts them
as a ``RunningBatch``, stepped in the host's single-thread executor. Rows leave as they end (their
callers get the answer at once), and requests of the same model that arrive meanwhile join the running
batch at its next step: the executor stops stepping when a row ends or a request arrives, and the worker
adds the newcomers. A batch stops admitting (and runs down) once a request of another model waits, so no
model starves, or after ``MAX_ROWS_PER_RUN`` rows, which bounds the per-row state its decoder keeps.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Any

from bot.errors import ShuttingDownError
from bot.ops import metrics
from model.generate import Completion, Decoder, Generator, RunningBatch
from model.sampling import SamplingConfig
from model.vocab import Vocab

DEFAULT_MODEL_ID = "default"
MAX_ROWS_PER_RUN = 4096  # rows one running batch admits before it runs down
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


class RowField(Sequence[Any]):
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


class Batcher:
    """The worker that batches queued requests and steps them in ``executor``.

    ``generator_for(model_id)`` gives a loaded model's generator (called in the executor). ``queue`` holds
    the callers' requests; ``None`` on it is the stop mark, queued behind every request.
    """

    def __init__(
        self,
        executor: Executor,
        generator_for: Callable[[str], Generator],
        decoder_for: Callable[[list[GenerationRequest], Vocab], Decoder],
        *,
        queue_size: int,
        batch_size: int,
        batch_wait: float,
    ):
        self._executor = executor
        self._generator_for = generator_for
        self._decoder_for = decoder_for
        self.batch_size = batch_size
        self.batch_wait = batch_wait  # seconds
        self.queue: asyncio.Queue[_Pending | None] = asyncio.Queue(maxsize=queue_size)
        self._held: deque[_Pending] = deque()  # taken from the queue, waiting for a batch of their model
        self.arrived = threading.Event()  # set on every new request; the executor's stepping checks it
        # What the worker did, for logs and tests: recent batch sizes and the threads torch ran on.
        self.batch_sizes: deque[int] = deque(maxlen=1000)  # per batch, the most rows it ran at once
        self.batch_rows: deque[int] = deque(maxlen=1000)  # per batch, the rows it served (joiners too)
        # Per batch: characters generated / (its steps x the most rows it ran at once). Rows leave as
        # they end and newcomers join, so this is how full the batch was kept.
        self.batch_fill: deque[float] = deque(maxlen=1000)
        self.torch_thread_ids: set[int] = set()

    @property
    def waiting(self) -> int:
        """Requests not yet running: on the queue, or taken from it and held for a batch of their model."""
        return self.queue.qsize() + len(self._held)

    def submit(self, request: GenerationRequest) -> asyncio.Future[Completion]:
        """Queue a request; its future gets the completion. ``asyncio.QueueFull`` when the queue is full."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Completion] = loop.create_future()
        self.queue.put_nowait(_Pending(request, future, loop.time()))
        self.arrived.set()
        return future

    def fail_waiting(self) -> None:
        """Give every request still waiting a ``ShuttingDownError``."""
        waiting = list(self._held)
        self._held.clear()
        while not self.queue.empty():
            item = self.queue.get_nowait()
            if item is not None:
                waiting.append(item)
        _fail(waiting, ShuttingDownError())

    async def work(self) -> None:
        """The batching loop: wait for a request, gather its model's others, run them as one batch
        that newcomers of the same model join while it runs."""
        loop = asyncio.get_running_loop()
        stopping = False
        while True:
            if not self._held:
                if stopping:
                    break
                first = await self.queue.get()
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
                self.arrived.clear()  # before draining: a request queued after this sets it again
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
        for _ in range(max(0, limit)):
            try:
                item = self.queue.get_nowait()
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
            generator = self._generator_for(run.model_id)
            run.batch = generator.batch(self._decoder_for(run.requests, generator.vocab))
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
            if admits and self.arrived.is_set() and len(batch) < self.batch_size:
                return finished

    def _record(self, run: _Run) -> None:
        """Note a finished batch's size and fill."""
        if run.batch is None or not run.requests:
            return
        self.batch_sizes.append(run.peak)
        self.batch_rows.append(len(run.requests))
        self.batch_fill.append(run.batch.row_steps / max(1, run.batch.steps * run.peak))
        metrics.BATCH_FILL.observe(self.batch_fill[-1])
        _log.debug(
            "completed a batch of %d (at most %d at once) in %.3fs",
            len(run.requests),
            run.peak,
            time.perf_counter() - run.started,
        )


def _fail(batch: list[_Pending], exc: BaseException) -> None:
    for pending in batch:
        if not pending.future.done():
            pending.future.set_exception(exc)
