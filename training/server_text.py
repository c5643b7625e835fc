"""A Discord server's text as training sees it: markup made readable, and the two-quote rule.

    clean_markup("hi <@123>, see https://x.io <:wave:42>")   # "hi @someone, see :wave:"
    plan = plan_new_characters(quotes, parent_vocab)          # which new characters join the vocabulary
    quotes = plan.apply(quotes)

Markup (applied to every corpus by ``training.corpus.normalise``): a user mention ``<@123>`` or ``<@!123>``
becomes ``@someone``, a role ``<@&123>`` ``@role``, a channel ``<#123>`` ``#channel``, a custom emoji
``<:name:123>`` (animated ``<a:name:123>``) ``:name:``, a timestamp ``<t:123:R>`` is dropped, and so is
every URL (``http://``, ``https://``, ``www.``): ids and links say nothing about a character's voice,
and a model that learnt them would write fake ones. Digits, accents, curly quotes and Unicode emoji
are kept as written (curly quotes and dashes become plain ones, as in every corpus).

The two-quote rule: a character the parent model has never seen joins the vocabulary only when at
least ``MIN_QUOTES_FOR_NEW_CHAR`` of the quotes use it; a rarer one gets an obvious stand-in the
vocabulary knows (an accented letter its base letter, a letter its other case: the ``replace`` policy
of seeds), or, when there is none, is dropped. One stray character cannot teach the model anything
but costs an output row it would then sample at random.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from model.vocab import UnknownPolicy, Vocab

MIN_QUOTES_FOR_NEW_CHAR = 2

_USER = re.compile(r"<@!?\d+>")
_ROLE = re.compile(r"<@&\d+>")
_CHANNEL = re.compile(r"<#\d+>")
_EMOJI = re.compile(r"<a?:(\w{1,64}):\d+>")
_TIMESTAMP = re.compile(r"<t:-?\d+(?::[tTdDfFR])?>")
_URL = re.compile(r"(?:https?://|www\.)\S+", re.IGNORECASE)


def clean_markup(text: str) -> str:
    """Discord markup in a readable form and URLs dropped (see the module docstring)."""
    if "<" not in text and "http" not in text.lower() and "www." not in text.lower():
        return text  # the common case, and every non-Discord corpus: nothing to do
    text = _USER.sub("@someone", text)
    text = _ROLE.sub("@role", text)
    text = _CHANNEL.sub("#channel", text)
    text = _EMOJI.sub(r":\1:", text)
    text = _TIMESTAMP.sub("", text)
    return _URL.sub("", text)


@dataclass(frozen=True)
class NewCharacters:
    """What the two-quote rule decided for characters the vocabulary does not know.

    ``joining``: character -> how many quotes use it (at least the minimum); ``replaced``: rare
    character -> its stand-in; ``dropped``: rare characters with no stand-in; ``uses``: how many quotes
    use each rare one.
    """

    joining: dict[str, int] = field(default_factory=dict)
    replaced: dict[str, str] = field(default_factory=dict)
    dropped: list[str] = field(default_factory=list)
    uses: dict[str, int] = field(default_factory=dict)

    def apply(self, quotes: Iterable[str]) -> list[str]:
        """The quotes with rare characters replaced or dropped; quotes left empty go."""
        if not self.replaced and not self.dropped:
            return list(quotes)
        table = {ord(c): s for c, s in self.replaced.items()} | {ord(c): None for c in self.dropped}
        out = []
        for quote in quotes:
            text = " ".join(quote.translate(table).split())
            if text:
                out.append(text)
        return out

    def summary(self) -> str:
        """One line for people: which characters join, which are replaced, which are dropped."""
        parts = []
        if self.joining:
            shown = ", ".join(f"{c!r} ({n} quotes)" for c, n in self.joining.items())
            parts.append(f"new characters learnt: {shown}")
        if self.replaced:
            shown = ", ".join(f"{c!r} -> {s!r}" for c, s in self.replaced.items())
            parts.append(f"used in fewer than {MIN_QUOTES_FOR_NEW_CHAR} quotes, replaced: {shown}")
        if self.dropped:
            shown = ", ".join(repr(c) for c in self.dropped)
            parts.append(f"used in fewer than {MIN_QUOTES_FOR_NEW_CHAR} quotes, dropped: {shown}")
        return "; ".join(parts) if parts else "no new characters"


def plan_new_characters(
    quotes: Sequence[str], vocab: Vocab, min_quotes: int = MIN_QUOTES_FOR_NEW_CHAR
) -> NewCharacters:
    """Apply the two-quote rule to the characters of ``quotes`` that ``vocab`` lacks."""
    uses: Counter[str] = Counter()
    for quote in quotes:
        uses.update(set(quote) - set(vocab.chars))
    joining = {c: n for c, n in sorted(uses.items()) if n >= min_quotes}
    rare = {c: n for c, n in sorted(uses.items()) if n < min_quotes}
    grown = Vocab(vocab.chars + tuple(joining))  # stand-ins may be characters that join now
    replaced: dict[str, str] = {}
    dropped: list[str] = []
    for char in rare:
        stand_in = grown.prepare_seed(char, UnknownPolicy.DROP)
        if stand_in and stand_in != char:
            replaced[char] = stand_in
        else:
            dropped.append(char)
    return NewCharacters(joining, replaced, dropped, rare)
