"""Completing seeds: prime each seed once, then step the LSTM one character at a time.

    gen = Generator(loaded.model, loaded.vocab)
    [done] = gen.complete(["Hey,"], max_chars=200, decoder=GreedyDecoder())
    done.text, done.stopped      # "Hey, ...", "end" | "length" | "loop"

A batch holds rows with different seeds and seed lengths. Priming runs every row's begin-of-quote +
seed in one packed pass; after that each step feeds only the character just chosen and carries
``(h, c)``, so a quote of n characters costs n LSTM steps, not n^2. Rows leave the batch as they end.
How the next character is chosen is a ``Decoder``: greedy here for tests and comparison, the
anti-repetition chain in ``model.sampling``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

import torch
from torch import Tensor

from model.network import CharLSTM
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


class Generator:
    """Completes batches of seeds with a ``CharLSTM`` in eval mode, carrying the LSTM state."""

    def __init__(self, model: CharLSTM, vocab: Vocab):
        if len(vocab) != model.config.vocab_size:
            raise ValueError("the vocabulary does not match the model")
        self.model = model.eval()
        self.vocab = vocab
        self._never = torch.tensor([PAD_ID, BOS_ID, UNK_ID])  # ids never chosen (on the CPU, see _step)

    @property
    def device(self) -> torch.device:
        return self.model.head.weight.device

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
        decoder = decoder or GreedyDecoder()
        histories = [self.vocab.encode(seed) for seed in seeds]
        logprobs: list[list[float]] = [[] for _ in seeds]
        stopped: list[str | None] = [None] * len(seeds)
        for row, history in enumerate(histories):
            if len(history) >= max_chars:
                stopped[row] = STOP_LENGTH
        active = [row for row in range(len(seeds)) if stopped[row] is None]
        if active:
            self.model.eval()
            logits, state = self.model.prime([[BOS_ID, *histories[row]] for row in active])
            while active:
                active, logits, state = self._step(
                    active, logits, state, histories, logprobs, stopped, decoder, max_chars
                )
        return [
            Completion(
                seed=seed,
                text=self.vocab.decode(histories[row]),
                stopped=stopped[row] or STOP_LENGTH,
                logprobs=logprobs[row],
            )
            for row, seed in enumerate(seeds)
        ]

    def _step(self, active, logits, state, histories, logprobs, stopped, decoder, max_chars):
        """Choose one character for every active row, drop rows that ended, run the LSTM once."""
        # One transfer a step: the decoders here choose on the CPU anyway, and the ids, log-probs and
        # stop tests below want plain numbers, so on a GPU the logits come over once, here.
        logits = logits.float().cpu()
        logits.index_fill_(1, self._never, float("-inf"))  # padding, begin-of-quote, unknown: never output
        chosen = decoder.pick(logits, [histories[row] for row in active], active).cpu()
        model_logprobs = torch.log_softmax(logits, dim=-1).gather(1, chosen[:, None]).squeeze(1)
        keep: list[int] = []
        for i, (row, char_id, lp) in enumerate(
            zip(active, chosen.tolist(), model_logprobs.tolist(), strict=True)
        ):
            logprobs[row].append(lp)
            if char_id == EOS_ID:
                stopped[row] = STOP_END
                continue
            histories[row].append(char_id)
            trim = decoder.loop_trim(histories[row])
            if trim:
                del histories[row][-trim:]
                stopped[row] = STOP_LOOP
            elif len(histories[row]) >= max_chars:
                stopped[row] = STOP_LENGTH
            else:
                keep.append(i)
        if not keep:
            return [], logits, state
        if len(keep) < len(active):  # some rows ended: the state and the ids lose their rows
            index = torch.tensor(keep)
            chosen = chosen.index_select(0, index)
            index = index.to(self.device)
            h, c = state
            state = (h.index_select(1, index), c.index_select(1, index))
            active = [active[i] for i in keep]
        step_logits, state = self.model.step(chosen.to(self.device), state)
        return active, step_logits, state
