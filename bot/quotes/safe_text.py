"""Making user and model text safe to echo in a Discord message: no hidden characters, no Markdown.

    shown("# Hey [click](https://evil.example)\u202e")   # '\\# Hey \\[click](https://evil.example)'

A seed is typed by a member and the model writes whatever its vocabulary allows (``UNKNOWN_CHARS=drop``
or a vocabulary grown by retraining lets almost anything in), so before either reaches a reply:

- ``strip_controls`` removes control and format characters (Unicode categories Cc and Cf: bidirectional
  overrides, zero-width spaces and joiners, escape sequences), newlines excepted. They can reorder what a
  reader sees, hide words, or drive a terminal.
- ``escape_markdown`` escapes Discord's Markdown (headings, masked links, bold, code fences, quotes,
  lists, spoilers), so the text shows as typed instead of being formatted. It follows the rules of
  ``discord.utils.escape_markdown`` (the default ``as_needed=False, ignore_links=True``), written out here
  because this package must not import discord.py; a test checks the two agree.
"""

from __future__ import annotations

import re
import unicodedata

_KEPT = frozenset("\n")
# The patterns of discord.utils.escape_markdown (discord.py 2.x): a bare URL is kept whole, so a link
# still works; any other Markdown character, and a line-start heading, quote or list mark, or a masked
# link, gets a backslash.
_URL = r"(?P<url><[^: >]+:\/[^ >]+>|(?:https?|steam):\/\/[^\s<]+[^<.,:;\"\'\]\s])"
_COMMON = r"^>(?:>>)?\s|\[.+\]\(.+\)|^#{1,3}|^\s*-"
_MARKDOWN = re.compile(rf"(?:{_URL}|(?P<markdown>[_\\~|\*`]|{_COMMON}))", re.MULTILINE)


def strip_controls(text: str) -> str:
    """``text`` without control and format characters (categories Cc and Cf), newlines kept."""
    return "".join(c for c in text if c in _KEPT or unicodedata.category(c) not in ("Cc", "Cf"))


def escape_markdown(text: str) -> str:
    """``text`` with Discord's Markdown escaped by backslashes (bare links left whole)."""
    return _MARKDOWN.sub(lambda m: m.group("url") or "\\" + m.group("markdown"), text)


def shown(text: str) -> str:
    """User or model text as it may appear in a Discord reply: controls stripped, Markdown escaped."""
    return escape_markdown(strip_controls(text))
