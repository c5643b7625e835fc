"""Message components (action rows of buttons) by Discord's rules, and the interactions they start.

A bot sends ``components`` with a message; the server keeps them on the ``StoredMessage``, checks what
Discord checks (at most 5 rows of at most 5 buttons, a ``custom_id`` of 1-100 characters, unique in the
message, labels of at most 80 characters, a link button with a url instead), and a test presses a button
with ``server.press_button(user, message, custom_id)``.
"""

from __future__ import annotations

from .errors import invalid_form

ACTION_ROW, BUTTON = 1, 2
LINK_STYLE = 5
MAX_ROWS = MAX_PER_ROW = 5


def check_components(rows: list[dict] | None) -> None:
    """Raises a 400 Invalid Form Body for what Discord refuses in a message's components."""
    rows = rows or []
    if len(rows) > MAX_ROWS:
        raise invalid_form("components", "BASE_TYPE_MAX_LENGTH", f"Must be {MAX_ROWS} or fewer in length.")
    seen: set[str] = set()
    for r, row in enumerate(rows):
        where = f"components.{r}"
        if row.get("type") != ACTION_ROW:
            raise invalid_form(f"{where}.type", "UNION_TYPE_CHOICES", "Top-level components must be rows.")
        children = row.get("components") or []
        if not 1 <= len(children) <= MAX_PER_ROW:
            raise invalid_form(f"{where}.components", "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 5.")
        for i, item in enumerate(children):
            _check_button(f"{where}.components.{i}", item, seen)


def _check_button(where: str, item: dict, seen: set[str]) -> None:
    if item.get("type") != BUTTON:
        return  # selects and others: not used by the bots under test, accepted as they are
    if len(item.get("label") or "") > 80:
        raise invalid_form(f"{where}.label", "BASE_TYPE_MAX_LENGTH", "Must be 80 or fewer in length.")
    if not (item.get("label") or item.get("emoji")):
        raise invalid_form(where, "COMPONENT_INVALID", "A button needs a label or an emoji.")
    if item.get("style") == LINK_STYLE:
        if not item.get("url") or item.get("custom_id"):
            raise invalid_form(where, "COMPONENT_INVALID", "A link button has a url and no custom_id.")
        return
    custom_id = item.get("custom_id")
    if not isinstance(custom_id, str) or not 1 <= len(custom_id) <= 100:
        raise invalid_form(f"{where}.custom_id", "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 100.")
    if custom_id in seen:
        raise invalid_form(f"{where}.custom_id", "COMPONENT_CUSTOM_ID_DUPLICATED", "Duplicate custom_id.")
    seen.add(custom_id)
