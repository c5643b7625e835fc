"""The model host with a real tiny checkpoint: completions, batching, the busy queue, threads, closing."""

from __future__ import annotations

import asyncio
import logging
import threading
from pathlib import Path

import pytest
import torch

from bot.errors import BusyError, ShuttingDownError
from bot.serving.host import GenerationRequest, ModelHost, default_threads
from bot.settings import load_settings
from model.checkpoint import CheckpointError, save_checkpoint
from model.generate import STOP_END, STOP_LENGTH, STOP_LOOP, Completion
from model.sampling import SamplingConfig
from model.vocab import EOS_ID, UnknownCharactersError
from tests.helpers import make_tiny_model


@pytest.fixture
async def make_host(tiny_checkpoint: Path):
    hosts: list[ModelHost] = []

    async def make(**options) -> ModelHost:
        host = ModelHost(tiny_checkpoint, device="cpu", **options)
        await host.start()
        hosts.append(host)
        return host

    yield make
    for host in hosts:
        await host.close()


async def test_completion_starts_with_the_seed_and_respects_the_cap(make_host):
    host = await make_host()
    done = await host.complete(
        GenerationRequest(seed="Hey,", max_chars=40, sampling=SamplingConfig(temperature=1.0), rng_seed=1)
    )
    assert done.text.startswith("Hey,")
    assert len(done.text) <= 40
    assert done.stopped in (STOP_END, STOP_LENGTH, STOP_LOOP)
    assert host.vocab().chars  # the loaded vocabulary is there for the service


async def test_each_row_keeps_its_own_length_cap(make_host):
    host = await make_host(batch_size=8)
    caps = [6, 12, 30, 60]
    # A cold temperature on an untrained model rarely picks end-of-quote, so rows run to their caps.
    requests = [
        GenerationRequest(seed="I", max_chars=cap, sampling=SamplingConfig(temperature=0.05), rng_seed=cap)
        for cap in caps
    ]
    results = await asyncio.gather(*(host.complete(r) for r in requests))
    assert list(host.batch_sizes) == [4]
    for cap, done in zip(caps, results, strict=True):
        assert len(done.text) <= cap
        if done.stopped == STOP_LENGTH:
            assert len(done.text) == cap
            assert len(done.logprobs) == cap - 1  # one per generated character, no forced end
    assert any(done.stopped == STOP_LENGTH and len(done.text) < max(caps) for done in results)


async def test_rng_seed_gives_the_same_quote_alone_or_in_a_batch(make_host):
    host = await make_host(batch_size=8)
    request = GenerationRequest(
        seed="The", max_chars=50, sampling=SamplingConfig(temperature=1.0), rng_seed=1234
    )
    alone = await host.complete(request)
    others = [
        GenerationRequest(seed="Me", max_chars=50, sampling=SamplingConfig(temperature=0.5), rng_seed=i)
        for i in range(3)
    ]
    together = await asyncio.gather(host.complete(request), *(host.complete(r) for r in others))
    assert together[0].text == alone.text
    assert host.batch_sizes[-1] == 4


async def test_concurrent_requests_run_as_batches(make_host):
    host = await make_host(batch_size=4, queue_size=16)
    requests = [GenerationRequest(seed="A", max_chars=20, rng_seed=i) for i in range(8)]
    results = await asyncio.gather(*(host.complete(r) for r in requests))
    assert len(results) == 8
    # Four start; as each ends, a waiting one joins the running batch: never more than four at once.
    assert list(host.batch_sizes) == [4]
    assert list(host.batch_rows) == [8]


async def test_requests_arriving_a_moment_apart_join_one_batch(make_host):
    host = await make_host(batch_size=4, batch_wait=0.2)

    async def later(delay: float):
        await asyncio.sleep(delay)
        return await host.complete(GenerationRequest(seed="So", max_chars=20, rng_seed=1))

    await asyncio.gather(later(0), later(0.01), later(0.02))
    assert list(host.batch_sizes) == [3]


async def test_full_queue_says_busy_at_once(make_host):
    host = await make_host(queue_size=2, batch_size=1)
    request = GenerationRequest(seed="Hey", max_chars=30, rng_seed=0)
    # All ten put their request before the worker runs: two fit, eight are refused.
    outcomes = await asyncio.gather(*(host.complete(request) for _ in range(10)), return_exceptions=True)
    busy = [o for o in outcomes if isinstance(o, BusyError)]
    served = [o for o in outcomes if not isinstance(o, Exception)]
    assert (len(served), len(busy)) == (2, 8)
    assert "try again shortly" in str(busy[0])
    # Once the queue has room again, requests are served.
    assert (await host.complete(request)).text.startswith("Hey")


async def test_no_torch_op_runs_on_the_event_loop_thread(make_host):
    host = await make_host(batch_size=4)
    forward_threads: set[int] = set()
    for module in host.loaded().model.modules():
        module.register_forward_pre_hook(lambda *_: forward_threads.add(threading.get_ident()))
    requests = [GenerationRequest(seed="We", max_chars=25, rng_seed=i) for i in range(5)]
    await asyncio.gather(*(host.complete(r) for r in requests))
    loop_thread = threading.get_ident()
    assert forward_threads and loop_thread not in forward_threads
    assert host.torch_thread_ids and loop_thread not in host.torch_thread_ids
    assert forward_threads <= host.torch_thread_ids


async def test_unknown_characters_fail_only_their_own_request(make_host):
    host = await make_host(batch_size=4)
    good = GenerationRequest(seed="Hi", max_chars=20, rng_seed=0)
    bad = GenerationRequest(seed="Hi \u2603", max_chars=20)
    outcomes = await asyncio.gather(host.complete(good), host.complete(bad), return_exceptions=True)
    assert outcomes[0].text.startswith("Hi")
    assert isinstance(outcomes[1], UnknownCharactersError)


async def test_a_failing_batch_fails_its_callers_and_the_worker_carries_on(make_host):
    host = await make_host()
    with pytest.raises(ValueError, match="max_chars"):  # a request the generator itself refuses
        await host.complete(GenerationRequest(seed="Hi", max_chars=0))
    done = await host.complete(GenerationRequest(seed="Hi", max_chars=20, rng_seed=0))
    assert done.text.startswith("Hi")


async def test_close_finishes_queued_requests_then_refuses_new_ones(make_host):
    host = await make_host(batch_size=2, queue_size=16)
    tasks = [
        asyncio.create_task(host.complete(GenerationRequest(seed="Ok", max_chars=30, rng_seed=i)))
        for i in range(6)
    ]
    await asyncio.sleep(0)  # every request is queued
    await host.close()
    results = await asyncio.gather(*tasks)
    assert all(done.text.startswith("Ok") for done in results)
    assert sum(host.batch_rows) == 6
    with pytest.raises(ShuttingDownError):
        await host.complete(GenerationRequest(seed="Ok", max_chars=30))


async def test_close_that_gives_up_leaves_nobody_waiting(make_host):
    host = await make_host(batch_size=2, queue_size=16)
    tasks = [
        asyncio.create_task(host.complete(GenerationRequest(seed="Ok", max_chars=200, rng_seed=i)))
        for i in range(6)
    ]
    await asyncio.sleep(0.01)  # the first batch is running in the executor
    await host.close(timeout=0)
    outcomes = await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 10)
    assert any(isinstance(o, ShuttingDownError) for o in outcomes)
    assert all(isinstance(o, ShuttingDownError) or o.text.startswith("Ok") for o in outcomes)


async def test_complete_before_start_is_a_clear_error(tiny_checkpoint: Path):
    host = ModelHost(tiny_checkpoint, device="cpu")
    with pytest.raises(RuntimeError, match="not started"):
        await host.complete(GenerationRequest(seed="Hi", max_chars=20))
    await host.close()


def test_sizes_must_be_positive(tiny_checkpoint: Path):
    with pytest.raises(ValueError, match="at least 1"):
        ModelHost(tiny_checkpoint, queue_size=0)
    with pytest.raises(ValueError, match="negative"):
        ModelHost(tiny_checkpoint, batch_wait=-0.1)


async def test_rows_of_one_batch_keep_their_own_sampling_settings(make_host):
    host = await make_host(batch_size=8)
    greedy = SamplingConfig(temperature=0.0)
    alone = await host.complete(GenerationRequest(seed="We", max_chars=40, sampling=greedy, rng_seed=1))
    mixed = await asyncio.gather(
        host.complete(GenerationRequest(seed="We", max_chars=40, sampling=greedy, rng_seed=2)),
        *(
            host.complete(
                GenerationRequest(seed="We", max_chars=40, sampling=SamplingConfig(1.5), rng_seed=i)
            )
            for i in range(3)
        ),
    )
    assert host.batch_sizes[-1] == 4
    assert mixed[0].text == alone.text  # greedy ignores its RNG seed and its neighbours
    assert len({done.text for done in mixed[1:]}) > 1  # the hot rows really sampled


class GatedHost(ModelHost):
    """Holds each batch at its start until ``release`` is set, so a test knows a batch is running."""

    def __init__(self, *args, **options):
        super().__init__(*args, **options)
        self.entered = threading.Event()
        self.release = threading.Event()

    def row_decoder(self, requests, vocab):
        self.entered.set()
        assert self.release.wait(10), "the test never released the batch"
        return super().row_decoder(requests, vocab)


async def test_requests_arriving_while_a_batch_runs_join_it(tiny_checkpoint: Path):
    host = GatedHost(tiny_checkpoint, device="cpu", batch_size=8, batch_wait=0.0)
    await host.start()
    try:
        first = [
            asyncio.create_task(host.complete(GenerationRequest(seed="A", max_chars=20, rng_seed=i)))
            for i in range(2)
        ]
        assert await asyncio.to_thread(host.entered.wait, 10)  # the first batch is in the executor
        later = [
            asyncio.create_task(host.complete(GenerationRequest(seed="B", max_chars=20, rng_seed=i)))
            for i in range(3)
        ]
        await asyncio.sleep(0.05)
        assert not any(task.done() for task in first + later)
        host.release.set()
        results = await asyncio.wait_for(asyncio.gather(*first, *later), 10)
    finally:
        host.release.set()
        await host.close()
    assert [done.text[0] for done in results] == ["A", "A", "B", "B", "B"]
    assert list(host.batch_rows) == [5]  # none was lost; the three joined the running batch
    assert list(host.batch_sizes) == [5]  # at its next step, before any of the first two ended


class StepGatedHost(ModelHost):
    """Lets a test hold the running batch between two steps (after ``hold_after`` steps)."""

    def __init__(self, *args, hold_after: int, **options):
        super().__init__(*args, **options)
        self.hold_after = hold_after
        self.held = threading.Event()
        self.release = threading.Event()

    def _make_batcher(self):
        batcher = super()._make_batcher()
        advance = batcher._advance

        def gated(run, admits):
            if run.batch.steps >= self.hold_after and not self.release.is_set():
                self.held.set()
                assert self.release.wait(10), "the test never released the batch"
            return advance(run, admits)

        batcher._advance = gated
        return batcher


@pytest.mark.parametrize("sampling", [SamplingConfig(temperature=1.0), SamplingConfig()])
async def test_a_row_that_joins_mid_batch_writes_what_it_writes_alone(tiny_checkpoint: Path, sampling):
    joiner = GenerationRequest(seed="The", max_chars=50, sampling=sampling, rng_seed=1234)
    host = StepGatedHost(tiny_checkpoint, device="cpu", batch_size=8, hold_after=0, batch_wait=0.0)
    host.release.set()  # alone: no holding
    await host.start()
    try:
        alone = await host.complete(joiner)
    finally:
        await host.close()
    host = StepGatedHost(tiny_checkpoint, device="cpu", batch_size=8, hold_after=5, batch_wait=0.0)
    await host.start()
    try:
        # Long, cold rows: they are still running after five steps when the joiner arrives.
        running = [
            asyncio.create_task(
                host.complete(
                    GenerationRequest(
                        seed="Me", max_chars=80, sampling=SamplingConfig(temperature=0.5), rng_seed=i
                    )
                )
            )
            for i in range(3)
        ]
        assert await asyncio.to_thread(host.held.wait, 10)  # the batch has run five steps
        late = asyncio.create_task(host.complete(joiner))
        await asyncio.sleep(0.05)
        host.release.set()
        together = await asyncio.wait_for(asyncio.gather(late, *running), 10)
    finally:
        host.release.set()
        await host.close()
    assert together[0].text == alone.text
    assert together[0].logprobs == pytest.approx(alone.logprobs, abs=1e-5)
    assert together[0].stopped == alone.stopped
    assert list(host.batch_rows) == [4]  # it joined the running batch, not a new one


async def test_a_running_batch_admits_no_rows_of_another_model(make_host, tmp_path: Path, sample_vocab):
    host = await make_host(batch_size=8)
    path = server_checkpoint(tmp_path, sample_vocab, "g1", seed=1)
    await host.use("g1", path)
    requests = [
        GenerationRequest(seed="Hey", max_chars=30, rng_seed=i, model_id=model_id)
        for i, model_id in enumerate(["default", "g1", "default", "g1"])
    ]
    done = await asyncio.gather(*(host.complete(r) for r in requests))
    assert all(d.text.startswith("Hey") for d in done)
    assert sorted(host.batch_rows) == [2, 2]  # one batch per model, each of its own model's rows


async def test_the_executor_runs_torch_on_the_configured_threads(make_host):
    main_threads = torch.get_num_threads()
    host = await make_host(threads=3)
    assert host.executor_torch_threads == 3
    assert torch.get_num_threads() == main_threads  # the event loop's thread is left as it was
    assert (await make_host()).threads == default_threads() >= 1


async def test_batch_settings_come_from_the_settings(tiny_checkpoint: Path):
    settings = load_settings(
        {
            "MODEL_PATH": str(tiny_checkpoint),
            "DEVICE": "cpu",
            "GENERATION_BATCH_SIZE": "16",
            "GENERATION_BATCH_WAIT_MS": "20",
            "GENERATION_THREADS": "1",
        },
        env_file=None,
    )
    host = ModelHost.from_settings(settings)
    assert (host.batch_size, host.batch_wait, host.threads) == (16, 0.02, 1)
    await host.close()


class NoEndHost(ModelHost):
    """End-of-quote masked, so that every row runs exactly to its own length cap."""

    def row_decoder(self, requests, vocab):
        inner = super().row_decoder(requests, vocab)

        class NoEnd:
            def pick(self, logits, histories, rows):
                logits = logits.clone()
                logits[:, EOS_ID] = float("-inf")
                return inner.pick(logits, histories, rows)

            def loop_trim(self, history):
                return None

        return NoEnd()


async def test_batch_fill_is_the_share_of_row_steps_that_did_work(tiny_checkpoint: Path):
    host = NoEndHost(tiny_checkpoint, device="cpu", batch_size=4)
    await host.start()
    try:
        caps = [11, 21, 21]  # seed "A": 10, 20 and 20 characters generated
        requests = [GenerationRequest(seed="A", max_chars=cap, rng_seed=cap) for cap in caps]
        results = await asyncio.gather(*(host.complete(r) for r in requests))
    finally:
        await host.close()
    assert [len(done.generated) for done in results] == [10, 20, 20]
    assert list(host.batch_sizes) == [3]
    assert host.batch_fill[-1] == pytest.approx(50 / (20 * 3))


# --- per-server models ---------------------------------------------------------------------------------


def server_checkpoint(folder: Path, vocab, name: str, seed: int) -> Path:
    """A tiny checkpoint whose vocabulary also knows "5" and "€" (unlike the default)."""
    grown = vocab.grow(["5€"])
    return save_checkpoint(folder / f"{name}.pt", make_tiny_model(grown, seed=seed), grown, {"name": name})


async def test_a_server_model_loads_on_demand_and_answers_with_its_own_vocabulary(
    make_host, tmp_path: Path, sample_vocab
):
    host = await make_host()
    path = server_checkpoint(tmp_path, sample_vocab, "g1", seed=1)
    assert await host.use("g1", path) == "g1"
    assert host.loaded("g1").path == path and host.loaded_ids == ["g1"]
    done = await host.complete(GenerationRequest(seed="5€ ", max_chars=20, rng_seed=3, model_id="g1"))
    assert done.text.startswith("5€ ")
    with pytest.raises(UnknownCharactersError):  # the default model still has its own vocabulary
        await host.complete(GenerationRequest(seed="5€ ", max_chars=20, rng_seed=3))
    assert len(host.torch_thread_ids) == 1  # loads run on the batches' one thread: never during a batch


async def test_least_recently_used_server_model_goes_and_the_default_stays(
    make_host, tmp_path: Path, sample_vocab
):
    host = await make_host(max_models=2)
    paths = {name: server_checkpoint(tmp_path, sample_vocab, name, seed=i) for i, name in enumerate("abcd")}
    for name in "abc":
        await host.use(name, paths[name])
    assert host.loaded_ids == ["b", "c"]
    await host.use("b", paths["b"])  # used again: now the most recent
    await host.use("d", paths["d"])
    assert host.loaded_ids == ["b", "d"]
    assert host.vocab().chars  # the default model is always kept
    # An evicted model asked for again (a caller that resolved it before the eviction) is loaded again.
    done = await host.complete(GenerationRequest(seed="Hey", max_chars=12, rng_seed=1, model_id="a"))
    assert done.text.startswith("Hey") and host.loaded_ids == ["d", "a"]


async def test_a_model_with_requests_in_flight_is_not_evicted_under_them(
    make_host, tmp_path: Path, sample_vocab
):
    host = await make_host(max_models=1)
    a, b = (server_checkpoint(tmp_path, sample_vocab, n, seed=i) for i, n in enumerate("ab"))
    await host.use("a", a)
    requests = [GenerationRequest(seed="Hey", max_chars=60, rng_seed=i, model_id="a") for i in range(4)]
    waiting = [asyncio.create_task(host.complete(r)) for r in requests]
    await asyncio.sleep(0)  # the requests are queued (or running) for model "a"
    await host.use("b", b)
    assert host.loaded_ids == ["a", "b"]  # over the bound for now: "a" still has work
    done = await asyncio.gather(*waiting)
    assert all(d.text.startswith("Hey") for d in done)
    assert host.loaded_ids == ["b"]  # gone once its requests were answered


async def test_a_corrupt_server_model_is_refused_and_nothing_else_changes(
    make_host, tmp_path: Path, sample_vocab
):
    host = await make_host()
    good = server_checkpoint(tmp_path, sample_vocab, "good", seed=1)
    await host.use("good", good)
    bad = tmp_path / "bad.pt"
    bad.write_bytes(good.read_bytes()[:2000])  # cut short, as by a full disk
    with pytest.raises(CheckpointError, match=r"bad\.pt"):
        await host.use("bad", bad)
    assert host.loaded_ids == ["good"]
    with pytest.raises(KeyError):
        await host.complete(GenerationRequest(seed="Hey", max_chars=12, model_id="bad"))
    done = await host.complete(GenerationRequest(seed="Hey", max_chars=12, model_id="good"))
    assert done.text.startswith("Hey")


async def test_many_requests_for_a_cold_model_load_it_once(
    make_host, tmp_path: Path, sample_vocab, caplog: pytest.LogCaptureFixture
):
    host = await make_host()
    path = server_checkpoint(tmp_path, sample_vocab, "g1", seed=1)
    with caplog.at_level(logging.INFO, logger="bot.serving.host"):
        assert await asyncio.gather(*(host.use("g1", path) for _ in range(5))) == ["g1"] * 5
    assert sum("loaded model 'g1'" in r.getMessage() for r in caplog.records) == 1


def test_max_models_comes_from_the_settings(tiny_checkpoint: Path):
    settings = load_settings({"MODEL_PATH": str(tiny_checkpoint), "MAX_LOADED_MODELS": "3"}, env_file=None)
    assert ModelHost.from_settings(settings).max_models == 3
    with pytest.raises(ValueError, match="max_models"):
        ModelHost(tiny_checkpoint, max_models=0)


async def test_requests_held_for_loading_server_models_count_against_the_queue(
    make_host, tmp_path: Path, sample_vocab
):
    # Ten servers with cold models and a queue of 3: while the models load, at most 3 requests wait.
    host = await make_host(queue_size=3, batch_size=1, max_models=10)
    paths = [server_checkpoint(tmp_path, sample_vocab, f"g{i}", seed=i) for i in range(10)]
    gate = threading.Event()
    host._executor.submit(gate.wait)  # the executor is busy: every load waits

    async def ask(i: int) -> Completion:
        model_id = await host.use(f"g{i}", paths[i], hold=True)  # what GuildModels does for a request
        return await host.complete(GenerationRequest(seed="Hey", max_chars=20, rng_seed=i, model_id=model_id))

    tasks = [asyncio.create_task(ask(i)) for i in range(10)]
    # ...and three plain requests for the default model, which wait in the same bound.
    tasks += [
        asyncio.create_task(host.complete(GenerationRequest(seed="Hey", max_chars=20))) for _ in range(3)
    ]
    try:
        await asyncio.sleep(0.05)
        assert host.waiting <= 3
    finally:
        gate.set()
    outcomes = await asyncio.gather(*tasks, return_exceptions=True)
    served = [o for o in outcomes if isinstance(o, Completion)]
    busy = [o for o in outcomes if isinstance(o, BusyError)]
    assert len(served) == 3 and len(busy) == 10, outcomes
    # An admin's load (no request waiting on it) is never refused as busy.
    assert await host.use("g9", paths[9]) == "g9"
