"""Completing seeds: prime each seed once, then step the LSTM one character at a time.

    gen = Generator(loaded.model, loaded.vocab)
    [done] = gen.complete(["Hey,"], max_chars=200, decoder=GreedyDecoder())
    done.text, done.stopped      # "Hey, ...", "end" | "length" | "loop"

A batch holds rows with different seeds and seed lengths. Priming runs every row's begin-of-quote +
seed in one packed pass; after that each step feeds only the character just chosen and carries
``(h, c)``, so a quote of n characters costs n LSTM steps, not n^2. Rows leave the batch as they end.
How the next character is chosen is a ``Decoder``: greedy here for tests and comparison, the
anti-repetition chain in ``model.sampling``.

``RunningBatch`` is the one stepping code path: ``Generator.complete`` adds its seeds and steps until
every row has ended, and the model host adds newcomers to a batch that is already running, between
two steps (``add`` primes them in one packed pass and puts their state beside the running rows').
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

import torch
from torch import Tensor

from model.network import CharLSTM, State
from model.vocab import BOS_ID, EOS_ID, PAD_ID, UNK_ID, Vocab

STOP_END = "end"  # the model chose end-of-quote
STOP_LENGTH = "length"  # the length cap was reached
STOP_LOOP = "loop"  # the decoder's loop guard stopped a row


@dataclass
class Completion:
    """One finished quote: the whole text (seed included), why it stopped, and per-character log-probs.

    ``logprobs[i]`` is the model's own log-probability (before any sampling processor) of the i-th
    generated character; the end-of-quote choice, when there was one, is the last entry.
    """

    seed: str
    text: str
    stopped: str
    logprobs: list[float] = field(default_factory=list)

    @property
    def generated(self) -> str:
        """The characters added after the seed."""
        return self.text[len(self.seed) :]


class Decoder(Protocol):
    """Chooses each row's next character from the model's logits."""

    def pick(self, logits: Tensor, histories: Sequence[list[int]], rows: Sequence[int]) -> Tensor:
        """``logits`` [batch, vocab] for the active rows -> chosen ids [batch].

        ``histories[i]`` is the ids so far (seed included) of active row ``i``; ``rows[i]`` is that
        row's position in the original request, so a decoder can keep per-row state (an RNG).
        """
        ...

    def loop_trim(self, history: list[int]) -> int | None:
        """How many trailing characters to cut if ``history`` ends in a loop, else ``None``."""
        ...


class GreedyDecoder:
    """Always the most likely character: deterministic, and it loops. For tests and comparison."""

    def pick(self, logits: Tensor, histories: Sequence[list[int]], rows: Sequence[int]) -> Tensor:
        return logits.argmax(dim=-1)

    def loop_trim(self, history: list[int]) -> int | None:
        return None


class TemperatureDecoder:
    """Plain sampling at a temperature, optionally seeded per request for reproducible output."""

    def __init__(self, temperature: float = 1.0, seed: int | None = None):
        if not temperature > 0 or temperature != temperature or temperature == float("inf"):
            raise ValueError(f"temperature must be a finite number above 0, got {temperature!r}")
        self.temperature = temperature
        self.rng = torch.Generator()
        if seed is None:
            self.rng.seed()
        else:
            self.rng.manual_seed(seed)

    def pick(self, logits: Tensor, histories: Sequence[list[int]], rows: Sequence[int]) -> Tensor:
        probs = torch.softmax(logits.float().cpu() / self.temperature, dim=-1)
        return torch.multinomial(probs, 1, generator=self.rng).squeeze(1).to(logits.device)

    def loop_trim(self, history: list[int]) -> int | None:
        return None


class RunningBatch:
    """Rows completed together one LSTM step at a time; rows join with ``add`` and leave as they end.

        batch = RunningBatch(model, vocab, decoder)
        keys = batch.add(["Hey,", "So"], max_chars=[40, 200])
        while batch.busy:
            for key, completion in batch.step(): ...

    Each row gets a key (0, 1, 2, ... in the order rows were added); the decoder sees the keys as its
    ``rows``, so its per-row state (settings, RNG seed) stays with the row whichever rows share the
    batch. A row's numbers depend only on its own seed: joining a running batch changes nothing for it.
    """

    def __init__(self, model: CharLSTM, vocab: Vocab, decoder: Decoder | None = None):
        if len(vocab) != model.config.vocab_size:
            raise ValueError("the vocabulary does not match the model")
        self.model = model.eval()
        self.vocab = vocab
        self.decoder = decoder or GreedyDecoder()
        self.keys: list[int] = []  # the running rows' keys, in the order of their rows in the state
        self.row_steps = 0  # characters chosen so far, summed over rows (for the host's batch fill)
        self.steps = 0  # LSTM steps run so far
        self._never = torch.tensor([PAD_ID, BOS_ID, UNK_ID])  # ids never chosen (on the CPU, see step)
        self._seeds: dict[int, str] = {}
        self._histories: dict[int, list[int]] = {}
        self._caps: dict[int, int] = {}
        self._logprobs: dict[int, list[float]] = {}
        self._ended: list[tuple[int, Completion]] = []  # rows that ended on arrival (seed at the cap)
        self._logits: Tensor | None = None  # [rows, vocab]: the next character's logits per running row
        self._state: State | None = None
        self._next_key = 0

    @property
    def device(self) -> torch.device:
        return self.model.head.weight.device

    def __len__(self) -> int:
        """The rows running now."""
        return len(self.keys)

    @property
    def busy(self) -> bool:
        """True while a row is running or a finished one has not been handed out by ``step`` yet."""
        return bool(self.keys or self._ended)

    @torch.inference_mode()
    def add(self, seeds: Sequence[str], max_chars: int | Sequence[int]) -> list[int]:
        """Start new rows (one cap for all, or one per seed); returns their keys.

        Everything is checked before anything changes, so a refused ``add`` leaves the running rows as
        they were: a cap below 1, or an unknown character (``UnknownCharactersError``).
        """
        caps = [max_chars] * len(seeds) if isinstance(max_chars, int) else list(max_chars)
        if len(caps) != len(seeds):
            raise ValueError(f"got {len(seeds)} seeds but {len(caps)} length caps")
        for cap in caps:
            if cap < 1:
                raise ValueError(f"max_chars must be at least 1, got {cap}")
        histories = [self.vocab.encode(seed) for seed in seeds]
        keys = list(range(self._next_key, self._next_key + len(seeds)))
        self._next_key += len(seeds)
        joining: list[int] = []
        for key, seed, history, cap in zip(keys, seeds, histories, caps, strict=True):
            self._seeds[key], self._histories[key], self._caps[key] = seed, history, cap
            self._logprobs[key] = []
            if len(history) >= cap:
                self._ended.append((key, self._finish(key, STOP_LENGTH)))
            else:
                joining.append(key)
        if joining:
            self.model.eval()
            logits, (h, c) = self.model.prime([[BOS_ID, *self._histories[key]] for key in joining])
            if self._state is None or self._logits is None:
                self._logits, self._state = logits, (h, c)
            else:  # rows are independent, so the newcomers' rows simply go beside the running ones
                old_h, old_c = self._state
                self._state = (torch.cat((old_h, h), dim=1), torch.cat((old_c, c), dim=1))
                self._logits = torch.cat((self._logits, logits), dim=0)
            self.keys.extend(joining)
        return keys

    def _finish(self, key: int, stopped: str) -> Completion:
        """Hand a row's result over and forget the row."""
        done = Completion(
            seed=self._seeds.pop(key),
            text=self.vocab.decode(self._histories.pop(key)),
            stopped=stopped,
            logprobs=self._logprobs.pop(key),
        )
        del self._caps[key]
        return done

    @torch.inference_mode()
    def step(self) -> list[tuple[int, Completion]]:
        """Choose one character for every running row, run the LSTM once for the rows still going,
        and return the rows that ended (with their keys)."""
        finished, self._ended = self._ended, []
        if not self.keys:
            return finished
        assert self._logits is not None and self._state is not None
        # One transfer a step: the decoders here choose on the CPU anyway, and the ids, log-probs and
        # stop tests below want plain numbers, so on a GPU the logits come over once, here.
        logits = self._logits.float().cpu()
        logits.index_fill_(1, self._never, float("-inf"))  # padding, begin-of-quote, unknown: never output
        histories = [self._histories[key] for key in self.keys]
        chosen = self.decoder.pick(logits, histories, self.keys).cpu()
        model_logprobs = torch.log_softmax(logits, dim=-1).gather(1, chosen[:, None]).squeeze(1)
        self.steps += 1
        self.row_steps += len(self.keys)
        keep: list[int] = []
        for i, (key, history, char_id, lp) in enumerate(
            zip(self.keys, histories, chosen.tolist(), model_logprobs.tolist(), strict=True)
        ):
            self._logprobs[key].append(lp)
            if char_id == EOS_ID:
                finished.append((key, self._finish(key, STOP_END)))
                continue
            history.append(char_id)
            trim = self.decoder.loop_trim(history)
            if trim:
                del history[-trim:]
                finished.append((key, self._finish(key, STOP_LOOP)))
            elif len(history) >= self._caps[key]:
                finished.append((key, self._finish(key, STOP_LENGTH)))
            else:
                keep.append(i)
        if not keep:
            self.keys, self._logits, self._state = [], None, None
            return finished
        state = self._state
        if len(keep) < len(self.keys):  # some rows ended: the state and the ids lose their rows
            index = torch.tensor(keep)
            chosen = chosen.index_select(0, index)
            index = index.to(self.device)
            h, c = state
            state = (h.index_select(1, index), c.index_select(1, index))
            self.keys = [self.keys[i] for i in keep]
        self._logits, self._state = self.model.step(chosen.to(self.device), state)
        return finished


class Generator:
    """Completes batches of seeds with a ``CharLSTM`` in eval mode, carrying the LSTM state."""

    def __init__(self, model: CharLSTM, vocab: Vocab):
        if len(vocab) != model.config.vocab_size:
            raise ValueError("the vocabulary does not match the model")
        self.model = model.eval()
        self.vocab = vocab

    @property
    def device(self) -> torch.device:
        return self.model.head.weight.device

    def batch(self, decoder: Decoder | None = None) -> RunningBatch:
        """An empty running batch on this generator's model, for callers that add rows as they come."""
        return RunningBatch(self.model, self.vocab, decoder)

    @torch.inference_mode()
    def complete(
        self, seeds: Sequence[str], max_chars: int = 300, decoder: Decoder | None = None
    ) -> list[Completion]:
        """Complete every seed; each row stops at end-of-quote, at ``max_chars`` in all, or on a loop.

        Seeds must already be in the vocabulary (``Vocab.prepare_seed`` applies the unknown-character
        policy); an unknown character raises ``UnknownCharactersError``.
        """
        if not seeds:
            return []
        if max_chars < 1:
            raise ValueError(f"max_chars must be at least 1, got {max_chars}")
        batch = self.batch(decoder)
        batch.add(seeds, max_chars)  # keys 0 .. n-1: a row's key is its place in ``seeds``
        results: dict[int, Completion] = {}
        while batch.busy:
            results.update(batch.step())
        return [results[row] for row in range(len(seeds))]
