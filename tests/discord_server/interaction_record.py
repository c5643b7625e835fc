"""What the test server keeps of one interaction: who started it, and everything the bot answered.

Tests get an ``InteractionRecord`` back from ``run_slash_command``, ``press_button``, ``autocomplete``
and ``run_message_command`` and assert on it: the callback type, the messages, whether they were private.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .messages import StoredMessage

APPLICATION_COMMAND, MESSAGE_COMPONENT, AUTOCOMPLETE = 2, 3, 4  # interaction types
CHANNEL_MESSAGE, DEFERRED_CHANNEL_MESSAGE = 4, 5  # callback types
DEFERRED_UPDATE_MESSAGE, UPDATE_MESSAGE, AUTOCOMPLETE_RESULT = 6, 7, 8


@dataclass
class InteractionRecord:
    """One interaction (slash command, context menu, button press, autocomplete) and the bot's answer."""

    id: int
    token: str
    name: str
    user_id: int
    channel_id: int
    guild_id: int | None
    payload: dict
    created_at: float
    kind: int = APPLICATION_COMMAND  # the interaction type: 2 command, 3 component, 4 autocomplete
    target: StoredMessage | None = None  # the message whose button was pressed
    response_type: int | None = None  # 4 message, 5 deferred ("thinking"), 6/7 update, 8 choices
    response: dict | None = None  # the callback body as sent
    original: StoredMessage | None = None
    followups: list[StoredMessage] = field(default_factory=list)

    @property
    def choices(self) -> list[dict] | None:
        """An autocomplete's answer: ``[{"name": ..., "value": ...}]``; None before it came."""
        if self.response_type != AUTOCOMPLETE_RESULT or self.response is None:
            return None
        return list((self.response.get("data") or {}).get("choices") or [])

    @property
    def private(self) -> bool:
        """Whether every message of this interaction is ephemeral (only the user saw the answer)."""
        return bool(self.messages) and all(m.ephemeral for m in self.messages)

    @property
    def messages(self) -> list[StoredMessage]:
        """Every finished message of this interaction (the original unless still thinking, then followups)."""
        first = [self.original] if self.original and not self.original.loading else []
        return [m for m in first + self.followups if not m.deleted]
