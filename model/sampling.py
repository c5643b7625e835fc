"""Anti-repetition sampling: one validated config and the processor chain as a ``Decoder``.

    config = SamplingConfig(temperature=0.8)                  # every knob validated, defaults below
    decoder = SamplingDecoder(vocab, config, seeds=42)         # seeds: reproducible text
    [done] = Generator(model, vocab).complete(["Hey,"], 300, decoder)

The chain, applied to each row's logits in this order (each step sees the previous step's output):

0. the model's voice (``model.voice``, stored in its checkpoint): the fitted end-of-quote bias for the
   quote's length so far (times ``length_calibration``); where it is positive (the quote is due to end),
   the same bias (times ``closing``) on the sentence ends that end the training quotes (``. ! ?``), as a
   quote may only end after one; no end-of-quote before ``min_len``, nor (``ending``) after a character
   the training quotes do not end with;
1. repetition penalty (sign-aware), presence and frequency penalties over the last ``penalty_window``
   characters, characters of ``penalty_exempt`` excluded;
2. DRY sequence penalty: a character that would extend a repeat of an earlier run of length
   L >= ``dry_allowed_length`` loses ``dry_multiplier * dry_base ** (L - dry_allowed_length)``;
3. no-repeat n-gram blocking: a character that would complete an earlier ``no_repeat_ngram``-gram is
   forbidden; then the lexicon (``lexicon``): a word in progress stays a prefix of a lexicon word and
   ends only where one ends; then the character's phrasing (``phrasing``, ``model.phrasing``): each
   letter, and ending the word, gets ``phrasing * log q`` of the word model of the training quotes;
   then the no-copy guard (``no_copy``, ``model.copy_guard``);
4. top-k, then top-p, then min-p truncation;
5. temperature, then the draw (temperature 0: the most likely survivor);
6. after the draw, the loop guard: a row whose tail is a unit of 4+ characters repeated ``loop_repeats``
   times stops, and the copies after the first are cut.

Penalties come before truncation so that truncation sees the penalised distribution (a blocked
character can never be the only survivor), and temperature comes last so that it only reshapes the
characters the model itself found plausible: a high temperature cannot let the junk tail back in.
Best-of-N, built on this decoder, lives in ``model.best_of``.
"""

from __future__ import annotations

import math
import secrets
import string
from collections.abc import Sequence
from dataclasses import dataclass, fields, replace

import numpy as np
import torch
from torch import Tensor

from model.copy_guard import block_copies
from model.fusion import fuse_phrasing
from model.processors import (
    RepeatTracker,
    block_ngrams,
    dry_penalty,
    find_loop,
    min_p_filter,
    repetition_penalties,
    sample,
    top_k_filter,
    top_p_filter,
    window_counts,
)
from model.vocab import EOS_ID, Vocab
from model.voice import word_in_progress

DEFAULT_EXEMPT = " \n" + string.punctuation
"""Spaces and punctuation: a character model repeats these (and letters) all the time."""

# (low, high, description of the allowed values) for every numeric knob; the description is the error.
_RANGES: dict[str, tuple[float, float, str]] = {
    "temperature": (0.0, 5.0, "a number from 0 (greedy) to 5"),
    "top_k": (0, 10_000, "an integer from 0 (off) to 10000"),
    "top_p": (0.0, 1.0, "a number in (0, 1] (1 is off)"),
    "min_p": (0.0, 1.0, "a number in [0, 1) (0 is off)"),
    "repetition_penalty": (1.0, 10.0, "a number from 1 (off) to 10"),
    "presence_penalty": (0.0, 10.0, "a number from 0 (off) to 10"),
    "frequency_penalty": (0.0, 10.0, "a number from 0 (off) to 10"),
    "penalty_window": (1, 10_000, "an integer from 1 to 10000"),
    "no_repeat_ngram": (2, 1000, "0 (off) or an integer from 2 to 1000"),
    "dry_multiplier": (0.0, 10.0, "a number from 0 (off) to 10"),
    "dry_base": (1.0, 8.0, "a number from 1 to 8"),
    "dry_allowed_length": (1, 1000, "an integer from 1 to 1000"),
    "loop_repeats": (2, 100, "0 (off) or an integer from 2 to 100"),
    "lexicon": (0, 1, "0 (off) or 1 (on)"),
    "length_calibration": (0.0, 2.0, "a number from 0 (off) to 2 (1 = as fitted)"),
    "min_len": (0, 10_000, "an integer from 0 (off) to 10000"),
    "phrasing": (0.0, 3.0, "a number from 0 (off) to 3"),
    "no_copy": (0, 1, "0 (off) or 1 (on)"),
    "ending": (0, 1, "0 (off) or 1 (on)"),
    "closing": (0.0, 2.0, "a number from 0 (off) to 2 (1 = as fitted)"),
}
_OPEN_LOW = {"top_p"}  # 0 itself is refused
_OPEN_HIGH = {"min_p"}  # 1 itself is refused
_ZERO_IS_OFF = {"no_repeat_ngram", "loop_repeats"}  # 0 allowed below an otherwise higher minimum
LOOP_MIN_UNIT = 4  # the benchmark's loop: a substring of 4+ characters repeated 3+ times in a row
LOOP_MAX_PERIOD = 100

FIELD_HELP = {
    "temperature": "softness of the draw among the survivors; 0 = always the most likely",
    "top_k": "keep only the k most likely characters (0 = off)",
    "top_p": "keep the most likely characters up to this probability mass (1 = off)",
    "min_p": "keep characters at least this fraction as likely as the best one (0 = off)",
    "repetition_penalty": "shrink the logit of a recently seen character (1 = off)",
    "presence_penalty": "subtract from the logit of a recently seen character (0 = off)",
    "frequency_penalty": "subtract per recent occurrence of a character (0 = off)",
    "penalty_window": "how many recent characters the three penalties above look at",
    "penalty_exempt": "characters the three penalties above never touch",
    "no_repeat_ngram": "forbid repeating any character n-gram of this length (0 = off)",
    "dry_multiplier": "DRY: penalty for extending a repeated run (0 = off)",
    "dry_base": "DRY: growth of the penalty per extra repeated character",
    "dry_allowed_length": "DRY: repeated runs shorter than this are free",
    "loop_repeats": "stop a row whose tail repeats a 4+ character unit this many times (0 = off)",
    "lexicon": "1: a word may only be written and ended as a word of the model's lexicon (0 = off)",
    "length_calibration": "scale of the model's fitted end-of-quote correction (1 = as fitted, 0 = off)",
    "min_len": "no end-of-quote before the quote has this many characters (0 = off)",
    "phrasing": "weight of the model's word model of the character's quotes on each next letter (0 = off)",
    "no_copy": "1: do not copy 24 characters of the model's training quotes verbatim (0 = off)",
    "ending": "1: end a quote only after a character the model's training quotes end with (0 = off)",
    "closing": "share of a due end-of-quote bias also given to the sentence ends that end quotes (0 = off)",
}


@dataclass(frozen=True)
class SamplingConfig:
    """Every sampling knob, validated; the defaults were chosen by ``benchmarks/quality.py``.

    Bad values (NaN, infinities, out of range, wrong type) raise ``ValueError`` naming the field and
    its allowed range. See ``FIELD_HELP`` for what each knob does.

    How the defaults were chosen, on the bundled model (README, "Anti-repetition sampling"): among the
    settings that met the issue's targets and kept quotes as long (>= 90%) and as varied (distinct-2
    within 0.1) as plain temperature-1.0 sampling, the one with the most real words: temperature 0.9
    with min-p 0.05. The DRY and n-gram values are the gentlest that removed every loop even under
    greedy decoding (weaker ones left 0.7% of 600 greedy completions looping); stronger ones changed
    nothing measurable. Token-level penalties stay off: they shortened quotes and cost log-probability.
    """

    temperature: float = 0.9
    top_k: int = 0
    top_p: float = 1.0
    min_p: float = 0.05
    repetition_penalty: float = 1.0
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0
    penalty_window: int = 64
    penalty_exempt: str = DEFAULT_EXEMPT
    no_repeat_ngram: int = 12
    dry_multiplier: float = 0.8
    dry_base: float = 1.75
    dry_allowed_length: int = 6
    loop_repeats: int = 3
    lexicon: int = 1
    length_calibration: float = 1.0
    min_len: int = 0
    phrasing: float = 1.0
    no_copy: int = 1
    ending: int = 1
    closing: float = 1.0

    def __post_init__(self) -> None:
        for name, (low, high, allowed) in _RANGES.items():
            value = getattr(self, name)
            is_int = isinstance(low, int)
            if isinstance(value, bool) or not isinstance(value, int if is_int else (int, float)):
                raise ValueError(f"{name} must be {allowed}, got {value!r}")
            if name in _ZERO_IS_OFF and value == 0:
                continue
            too_low = value <= low if name in _OPEN_LOW else value < low
            too_high = value >= high if name in _OPEN_HIGH else value > high
            if math.isnan(value) or too_low or too_high:  # NaN fails no comparison, so test it by name
                raise ValueError(f"{name} must be {allowed}, got {value!r}")
            if not is_int:
                object.__setattr__(self, name, float(value))
        if not isinstance(self.penalty_exempt, str) or len(self.penalty_exempt) > 500:
            shown = repr(self.penalty_exempt)[:60]
            raise ValueError(f"penalty_exempt must be a string of at most 500 characters, got {shown}")

    @classmethod
    def from_dict(cls, values: dict) -> SamplingConfig:
        """A config from plain values; an unknown key is refused with the list of known ones."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(
                f"unknown sampling option(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}"
            )
        return cls(**values)

    def with_changes(self, **changes: object) -> SamplingConfig:
        """A validated copy with some knobs changed."""
        return replace(self, **changes)


# splitmix64: each row draws its uniforms from its own seed and its position in the text, so a row's
# text never depends on which other rows share its batch, and needs no generator object per row.
_MASK = (1 << 64) - 1
_GOLDEN = 0x9E3779B97F4A7C15


def _mix(z: np.ndarray) -> np.ndarray:
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def derive_seed(seed: int, index: int) -> int:
    """A well-mixed 64-bit seed for row ``index`` of a request seeded with ``seed``."""
    return int(_mix(np.array([(seed ^ (index * _GOLDEN)) & _MASK], dtype=np.uint64))[0])


def row_uniforms(seeds: Sequence[int], positions: Sequence[int]) -> np.ndarray:
    """One uniform in [0, 1) per row: the ``position``-th draw of the stream seeded with that row's seed."""
    s = _mix(np.array([x & _MASK for x in seeds], dtype=np.uint64))
    z = _mix(s + (np.array(positions, dtype=np.uint64) + np.uint64(1)) * np.uint64(_GOLDEN))
    return (z >> np.uint64(11)).astype(np.float64) * 2.0**-53


@dataclass
class _RowState:
    seed_len: int  # the history's length when the row was first seen: the seed
    rng_seed: int
    tracker: RepeatTracker
    history_id: int  # id() of the generator's history list, to notice a new request on the same row


class SamplingDecoder:
    """The anti-repetition chain as a ``Decoder`` for ``Generator.complete``.

    ``configs``: one ``SamplingConfig`` for every row, or one per row of the request (indexed by the
    row's position). ``seeds``: ``None`` (a fresh random stream per row: every call differs), an int
    (row r uses ``derive_seed(seeds, r)``), or one int-or-None per row. Use one decoder per
    ``complete`` call: it keeps per-row state (the repeat tracker, the seed's length).
    """

    def __init__(
        self,
        vocab: Vocab,
        configs: SamplingConfig | Sequence[SamplingConfig] | None = None,
        seeds: int | Sequence[int | None] | None = None,
    ):
        self.vocab = vocab
        self._configs = configs if configs is not None else SamplingConfig()
        self._seeds = seeds
        self._rows: dict[int, _RowState] = {}
        self._live: dict[int, int] = {}  # id(history) -> row, between a pick and its loop_trim calls
        self._exempt_masks: dict[str, np.ndarray] = {}

    def config_for(self, row: int) -> SamplingConfig:
        if isinstance(self._configs, SamplingConfig):
            return self._configs
        return self._configs[row]

    def _seed_for(self, row: int) -> int:
        seeds = self._seeds
        if isinstance(seeds, int):
            return derive_seed(seeds, row)
        chosen = None if seeds is None else seeds[row]
        return secrets.randbits(64) if chosen is None else chosen

    def _state(self, row: int, history: list[int]) -> _RowState:
        """The row's state, caught up with ``history`` (usually one new character)."""
        state = self._rows.get(row)
        if state is None or state.history_id != id(history) or state.tracker.n > len(history):
            state = _RowState(len(history), self._seed_for(row), RepeatTracker(), id(history))
            self._rows[row] = state
        state.tracker.extend(history[state.tracker.n :])
        self._live[id(history)] = row
        return state

    def _exempt(self, config: SamplingConfig) -> np.ndarray:
        mask = self._exempt_masks.get(config.penalty_exempt)
        if mask is None:
            mask = np.zeros(len(self.vocab), dtype=bool)
            mask[[self.vocab.char_id(c) for c in set(config.penalty_exempt) if c in self.vocab]] = True
            self._exempt_masks[config.penalty_exempt] = mask
        return mask

    def process(self, logits: Tensor, histories: Sequence[list[int]], rows: Sequence[int]) -> Tensor:
        """Steps 1-4 of the chain: the penalised, truncated logits [batch, vocab] (float32, CPU)."""
        states = [self._state(r, h) for r, h in zip(rows, histories, strict=True)]
        configs = [self.config_for(r) for r in rows]
        raw = self._length_bias(logits.detach().float().cpu(), histories, configs)
        batch, vocab = raw.shape

        def column(name: str, dtype: torch.dtype = torch.float32) -> Tensor:
            return torch.tensor([getattr(c, name) for c in configs], dtype=dtype)

        x = raw
        if any(c.repetition_penalty != 1 or c.presence_penalty or c.frequency_penalty for c in configs):
            windows = [s.tracker.history()[-c.penalty_window :] for s, c in zip(states, configs, strict=True)]
            exempt = np.stack([self._exempt(c) for c in configs])
            counts = window_counts(windows, vocab, exempt)
            penalty, presence = column("repetition_penalty"), column("presence_penalty")
            x = repetition_penalties(x, counts, penalty, presence, column("frequency_penalty"))
        if any(c.dry_multiplier > 0 or c.no_repeat_ngram for c in configs):
            filled = np.zeros((batch, vocab), dtype=np.int64)  # numpy: its per-row assignment is cheap
            for i, (state, c) in enumerate(zip(states, configs, strict=True)):
                lows = [c.dry_allowed_length] if c.dry_multiplier > 0 else []
                lows += [c.no_repeat_ngram - 1] if c.no_repeat_ngram else []
                if lows:
                    chars, lengths = state.tracker.run_lengths(min(lows))
                    filled[i, chars] = lengths
            runs = torch.from_numpy(filled)
            multiplier = torch.tensor([c.dry_multiplier if c.dry_multiplier > 0 else 0.0 for c in configs])
            x = dry_penalty(x, runs, multiplier, column("dry_base"), column("dry_allowed_length"))
            x = block_ngrams(x, runs, column("no_repeat_ngram", torch.long))
        voice = self.vocab.voice
        apostrophes = voice is not None and voice.lexicon is not None and voice.lexicon.apostrophes
        prefixes = [word_in_progress(h, self.vocab.chars, apostrophes) for h in histories] if voice else []
        x = self._lexicon(x, histories, prefixes, configs)
        if voice is not None and voice.phrasing is not None:
            x = fuse_phrasing(x, voice, histories, self.vocab.chars, [c.phrasing for c in configs], prefixes)
        if voice is not None and voice.copy_guard is not None:
            x = block_copies(
                x, voice.copy_guard, histories, self.vocab.chars, [bool(c.no_copy) for c in configs]
            )
        if any(c.top_k for c in configs):
            x = top_k_filter(x, column("top_k", torch.long))
        if any(c.top_p < 1 for c in configs):
            x = top_p_filter(x, column("top_p"))
        if any(c.min_p > 0 for c in configs):
            x = min_p_filter(x, column("min_p"))
        dead = ~torch.isfinite(x).any(dim=-1)
        if dead.any():  # nothing survived (only possible if the caller masked everything): trust the model
            x[dead] = raw[dead]
        return x

    def _length_bias(
        self, raw: Tensor, histories: Sequence[list[int]], configs: list[SamplingConfig]
    ) -> Tensor:
        """Step 0: the fitted end-of-quote bias for each row's length so far (and, when due, on the
        sentence ends that end quotes), ``min_len``, the ending."""
        voice = self.vocab.voice
        calibration = voice.calibration if voice is not None else None
        ends = voice.quote_ends if voice is not None else ""
        use = calibration is not None and any(c.length_calibration for c in configs)
        if not use and not any(c.min_len for c in configs) and not ends:
            return raw
        bias, close = torch.zeros(len(configs)), torch.zeros(len(configs))
        offset = len(self.vocab) - len(self.vocab.chars)
        for i, (history, c) in enumerate(zip(histories, configs, strict=True)):
            last = self.vocab.chars[history[-1] - offset] if history and history[-1] >= offset else ""
            due = c.length_calibration * calibration.at(len(history)) if use else 0.0  # type: ignore[union-attr]
            close[i] = c.closing * max(due, 0.0)
            if len(history) < c.min_len or (ends and c.ending and (not last or last not in ends)):
                bias[i] = float("-inf")
            else:
                bias[i] = due
        raw = raw.clone()
        raw[:, EOS_ID] += bias
        closers = [offset + j for j, char in enumerate(self.vocab.chars) if char in ends and char in ".!?"]
        if closers and close.any():
            raw[:, closers] += close[:, None]
        return raw

    def _lexicon(
        self,
        x: Tensor,
        histories: Sequence[list[int]],
        prefixes: Sequence[str],
        configs: list[SamplingConfig],
    ) -> Tensor:
        """Step 3b: forbid what would leave the lexicon or capitalize a word the character does not
        (``Voice.row_mask``); a row it would empty keeps its choices."""
        voice = self.vocab.voice
        if voice is None or voice.lexicon is None or not any(c.lexicon for c in configs):
            return x
        allowed = np.ones(x.shape, dtype=bool)
        for i, (history, prefix, c) in enumerate(zip(histories, prefixes, configs, strict=True)):
            if c.lexicon and (mask := voice.row_mask(history, prefix, self.vocab.chars)) is not None:
                allowed[i] = mask
        if allowed.all():
            return x
        masked = x.masked_fill(torch.from_numpy(~allowed), float("-inf"))
        dead = ~torch.isfinite(masked).any(dim=-1)
        if dead.any():
            masked[dead] = x[dead]
        return masked

    def pick(self, logits: Tensor, histories: Sequence[list[int]], rows: Sequence[int]) -> Tensor:
        """The whole chain: process, then draw each row's next id from its own random stream."""
        self._live = {}
        x = self.process(logits, histories, rows)
        temperature = torch.tensor([self.config_for(r).temperature for r in rows], dtype=torch.float64)
        seeds = [self._rows[r].rng_seed for r in rows]
        uniforms = torch.from_numpy(row_uniforms(seeds, [len(h) for h in histories]))
        return sample(x, temperature, uniforms).to(logits.device)

    def loop_trim(self, history: list[int]) -> int | None:
        """The loop guard: how many trailing characters to cut if the row now ends in a loop."""
        row = self._live.get(id(history))
        if row is None:  # not a row this decoder just picked for: check the text itself
            return find_loop(history, 0, SamplingConfig().loop_repeats, LOOP_MIN_UNIT, LOOP_MAX_PERIOD)
        if not self.config_for(row).loop_repeats:
            return None
        state = self._state(row, history)  # the tracker answers in a few vectorised steps
        return state.tracker.tail_loop(
            state.seed_len, self.config_for(row).loop_repeats, LOOP_MIN_UNIT, LOOP_MAX_PERIOD
        )
