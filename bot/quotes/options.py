"""A quote request's options: the ``--temp/--len/--rng`` text form, their ranges, and message limits.

    seed, raw = split_options("Hey, --temp 0.7 --len=150")   # ("Hey,", {"temp": "0.7", "len": "150"})
    options = parse_options(raw, max_quote_chars=400)        # QuoteOptions(0.7, 150, None)

``fit_message`` keeps any reply within Discord's 2,000 characters.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from bot.errors import BadOptionError, clip
from model.sampling import SamplingConfig

DISCORD_MESSAGE_LIMIT = 2000
DEFAULT_TEMPERATURE = SamplingConfig().temperature  # chosen by benchmarks/quality.py
TEMPERATURE_RANGE = (0.1, 2.0)
MIN_LENGTH = 10
RNG_LIMIT = 2**63
CUT_MARK = "…"  # ends a reply whose quote was cut by the length cap or the loop guard

# Spelling -> option. An option starts with "--" after a space (or at the start), so "well--no" and
# "wait -- what" stay part of the seed.
OPTION_ALIASES = {
    "temp": "temp",
    "temperature": "temp",
    "t": "temp",
    "len": "len",
    "length": "len",
    "rng": "rng",
}
_OPTION_START = re.compile(r"(?<!\S)--[A-Za-z]")


@dataclass(frozen=True)
class QuoteOptions:
    """Sampling settings of one request; ``length`` caps the whole quote, seed included."""

    temperature: float = DEFAULT_TEMPERATURE
    length: int | None = None
    rng_seed: int | None = None


def split_options(text: str) -> tuple[str, dict[str, str]]:
    """``"Hey, --temp 0.7 --len=150"`` -> ``("Hey,", {"temp": "0.7", "len": "150"})``."""
    match = _OPTION_START.search(text)
    if match is None:
        return text.strip(), {}
    seed, rest = text[: match.start()].strip(), text[match.start() :].split()
    options: dict[str, str] = {}
    while rest:
        token = rest.pop(0)
        if not token.startswith("--") or len(token) < 3:
            raise BadOptionError(token, "options go after the seed, each like --temp 0.7")  # clipped there
        name, has_value, value = token[2:].partition("=")
        key = OPTION_ALIASES.get(name.lower())
        if key is None:
            known = ", ".join(f"--{n}" for n in ("temp", "len", "rng"))
            raise BadOptionError(f"--{name}", f"I don't know this option; I know {known}")
        if not has_value:
            if not rest or rest[0].startswith("--"):
                raise BadOptionError(f"--{name}", f"needs a value, e.g. --{key} {_EXAMPLES[key]}")
            value = rest.pop(0)
        if key in options:
            raise BadOptionError(f"--{key}", "is given twice")
        options[key] = value
    return seed, options


_EXAMPLES = {"temp": "0.7", "len": "150", "rng": "42"}


def parse_options(raw: dict[str, str], max_quote_chars: int) -> QuoteOptions:
    """Check each option's type and range; ``BadOptionError`` names the option."""
    temperature = DEFAULT_TEMPERATURE
    if "temp" in raw:
        low, high = TEMPERATURE_RANGE
        try:
            temperature = float(raw["temp"])
        except ValueError:
            temperature = math.nan
        if not (math.isfinite(temperature) and low <= temperature <= high):
            raise BadOptionError(
                "--temp", f"must be a number from {low} to {high}, got {clip(raw['temp'])!r}"
            )
    length = None
    if "len" in raw:
        length = _whole(raw["len"])
        if length is None or not MIN_LENGTH <= length <= max_quote_chars:
            raise BadOptionError(
                "--len",
                f"must be a whole number from {MIN_LENGTH} to {max_quote_chars}, got {clip(raw['len'])!r}",
            )
    rng_seed = None
    if "rng" in raw:
        rng_seed = _whole(raw["rng"])
        if rng_seed is None or not 0 <= rng_seed < RNG_LIMIT:
            raise BadOptionError(
                "--rng", f"must be a whole number from 0 to {RNG_LIMIT - 1}, got {clip(raw['rng'])!r}"
            )
    return QuoteOptions(temperature=temperature, length=length, rng_seed=rng_seed)


def check_options(options: QuoteOptions, max_quote_chars: int) -> None:
    """The ranges of typed options (a slash command's, the console's): ``BadOptionError`` names the option.

    The text form is checked by ``parse_options`` as it is read; this is the same rule for options that
    arrive already typed, whatever Discord's client let through."""
    low, high = TEMPERATURE_RANGE
    temperature = options.temperature
    if not (math.isfinite(temperature) and low <= temperature <= high):
        raise BadOptionError("temperature", f"must be a number from {low} to {high}, got {temperature!r}")
    if options.length is not None and not MIN_LENGTH <= options.length <= max_quote_chars:
        raise BadOptionError(
            "length", f"must be a whole number from {MIN_LENGTH} to {max_quote_chars}, got {options.length!r}"
        )
    if options.rng_seed is not None and not 0 <= options.rng_seed < RNG_LIMIT:
        raise BadOptionError(
            "rng", f"must be a whole number from 0 to {RNG_LIMIT - 1}, got {options.rng_seed!r}"
        )


def _whole(text: str) -> int | None:
    try:
        return int(text)
    except ValueError:
        return None


def fit_message(text: str, limit: int = DISCORD_MESSAGE_LIMIT) -> str:
    """``text`` cut to ``limit`` characters, with a mark where it was cut."""
    return text if len(text) <= limit else text[: limit - len(CUT_MARK)] + CUT_MARK
