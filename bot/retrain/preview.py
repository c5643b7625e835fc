"""What the next retrain would learn from: ``!retrain preview``, and the ids ``!retrain exclude`` takes.

    kind, item_id = parse_quote_ref("a12")        # ("source", 12); "f7" -> ("favoured", 7)
    text = preview_text(quotes, excluded=2, min_quotes=20, plan=plan, wait_s=0.0)

A training quote is named by its kind and row id: ``f<id>`` a favoured quote (the id of the stored quote),
``a<id>`` an added one (``!addquote`` replies with it). The preview shows the counts, what the two-quote
rule will do with characters the current model does not know (``training.server_text``), and a sample
of the quotes as training will see them (markup made readable, links dropped), each with its id.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from bot.errors import QuotebotError
from bot.retrain.fair_use import describe_wait
from bot.storage.training_data import TrainingQuote
from model.vocab import Vocab
from training.corpus import normalise
from training.server_text import NewCharacters, plan_new_characters

PREFIXES = {"f": "favoured", "a": "source"}
LABELS = {kind: prefix for prefix, kind in PREFIXES.items()}
SAMPLE = 8  # quotes shown
SHOWN_CHARS = 120  # of each
_REF = re.compile(r"#?([fa])(\d{1,18})", re.IGNORECASE)


class BadQuoteRefError(QuotebotError):
    """Not a training quote's id such as ``a12`` or ``f7``."""


def parse_quote_ref(text: str) -> tuple[str, int]:
    """``a12`` -> ``("source", 12)``, ``f7`` -> ``("favoured", 7)``; ``BadQuoteRefError`` otherwise."""
    match = _REF.fullmatch(text.strip())
    if match is None:
        raise BadQuoteRefError(
            "give a quote's id as `retrain preview` shows it: `a12` (added), `f7` (favoured)."
        )
    return PREFIXES[match.group(1).lower()], int(match.group(2))


def label(quote: TrainingQuote) -> str:
    """The id people type: ``a12`` or ``f7``."""
    return f"{LABELS[quote.kind]}{quote.id}"


def plan_for(quotes: Sequence[TrainingQuote], vocab: Vocab) -> NewCharacters:
    """The two-quote rule's decisions for these quotes against the current model's vocabulary."""
    return plan_new_characters([normalise(q.text, vocab) for q in quotes], vocab)


def _short(text: str) -> str:
    return text if len(text) <= SHOWN_CHARS else text[: SHOWN_CHARS - 1] + "…"


def preview_text(
    quotes: Sequence[TrainingQuote], excluded: int, min_quotes: int, plan: NewCharacters, wait_s: float
) -> str:
    """``!retrain preview``'s answer (the cog fits it to a message)."""
    favoured = sum(q.kind == "favoured" for q in quotes)
    lines = [
        f"The next retrain would learn from {len(quotes)} quotes: {favoured} favoured and "
        f"{len(quotes) - favoured} added ({excluded} left out with `retrain exclude`)."
    ]
    if len(quotes) < min_quotes:
        lines.append(f"That is too few: a retrain needs {min_quotes}.")
    if wait_s > 0:
        lines.append(f"This server's cooldown ends in {describe_wait(wait_s)}.")
    lines.append("Characters: " + plan.summary() + ".")
    shown = [q for q in quotes if normalise(q.text)][:SAMPLE]
    if shown:
        lines.append(f"{'A sample' if len(quotes) > len(shown) else 'The quotes'}, as training sees them:")
        lines += [f"`{label(q)}` {_short(normalise(q.text))}" for q in shown]
        lines.append("`retrain exclude ID` leaves one out; `retrain include ID` puts it back.")
    return "\n".join(lines)
