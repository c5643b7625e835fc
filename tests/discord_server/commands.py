"""Application (slash) commands: what ``bot.tree.sync()`` uploads, checked by Discord's rules.

The registry answers the command routes and tells the interaction builder which command a test means,
its id, and each option's type, so ``options={"seed": "Hey,"}`` becomes a correctly typed option.
"""

from __future__ import annotations

import re

from .errors import ApiError, invalid_form, unknown
from .state import Snowflakes

CHAT_INPUT, USER_COMMAND, MESSAGE = 1, 2, 3  # command types: slash, user and message context menus
GUILD_CONTEXT, BOT_DM_CONTEXT = 0, 1  # interaction contexts a command is offered in
SUB_COMMAND, SUB_COMMAND_GROUP = 1, 2
STRING, INTEGER, BOOLEAN, USER, CHANNEL, ROLE, NUMBER = 3, 4, 5, 6, 7, 8, 10
_NAME = re.compile(r"^[-_\w]{1,32}$")


def _check_name_and_description(where: str, body: dict, chat_input: bool) -> None:
    name = body.get("name")
    # Context menu names are free text (spaces and capitals allowed); slash names are lower-case words.
    valid = _NAME.match(name) and name == name.lower() if isinstance(name, str) and chat_input else None
    if not chat_input:
        valid = isinstance(name, str) and 1 <= len(name) <= 32
    if not valid:
        raise invalid_form(f"{where}.name", "APPLICATION_COMMAND_INVALID_NAME", f"Invalid name {name!r}.")
    description = body.get("description", "")
    if chat_input and not 1 <= len(description) <= 100:
        raise invalid_form(
            f"{where}.description", "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 100 in length."
        )


def validate_command(body: dict, where: str = "0") -> None:
    """Raises a 400 Invalid Form Body for what Discord would refuse in one command."""
    chat_input = body.get("type", CHAT_INPUT) == CHAT_INPUT
    _check_name_and_description(where, body, chat_input)
    if not chat_input and (body.get("description") or body.get("options")):
        message = "Context menus take no description or options."
        raise invalid_form(where, "APPLICATION_COMMAND_INVALID", message)
    _validate_options(body.get("options") or [], f"{where}.options", chat_input)


def _validate_options(options: list[dict], where: str, chat_input: bool) -> None:
    if len(options) > 25:
        raise invalid_form(where, "BASE_TYPE_MAX_LENGTH", "Must be 25 or fewer in length.")
    seen_optional = False
    for index, option in enumerate(options):
        _check_name_and_description(f"{where}.{index}", option, chat_input)
        if option.get("required"):
            if seen_optional:
                raise invalid_form(
                    f"{where}.{index}.required",
                    "APPLICATION_COMMAND_OPTIONS_REQUIRED_INVALID",
                    "Required options must be placed before non-required options.",
                )
        else:
            seen_optional = True
        if len(option.get("choices") or []) > 25:
            raise invalid_form(
                f"{where}.{index}.choices", "BASE_TYPE_MAX_LENGTH", "Must be 25 or fewer in length."
            )
        _validate_options(option.get("options") or [], f"{where}.{index}.options", chat_input)


class CommandRegistry:
    """Global and per-guild commands, stored as the payloads Discord returns for them."""

    def __init__(self, application_id: int, ids: Snowflakes) -> None:
        self.application_id = application_id
        self.ids = ids
        self.commands: dict[int, dict] = {}

    def list(self, guild_id: int | None) -> list[dict]:
        return [c for c in self.commands.values() if self._guild(c) == guild_id]

    def get(self, command_id: int | str, guild_id: int | None) -> dict:
        command = self.commands.get(int(command_id))
        if command is None or self._guild(command) != guild_id:
            raise unknown("application command", 10063)
        return command

    def overwrite(self, guild_id: int | None, bodies: list[dict]) -> list[dict]:
        """Bulk overwrite (``PUT``): the new list replaces the old; unchanged names keep their ids."""
        if not isinstance(bodies, list):
            raise ApiError(400, 50035, "Invalid Form Body: expected a list of commands")
        for index, body in enumerate(bodies):
            validate_command(body, str(index))
        old = {(c["name"], c["type"]): c for c in self.list(guild_id)}
        for command in old.values():
            del self.commands[int(command["id"])]
        return [
            self._store(guild_id, body, old.get((body["name"], body.get("type", CHAT_INPUT))))
            for body in bodies
        ]

    def upsert(self, guild_id: int | None, body: dict) -> dict:
        """Create one (``POST``); a command with the same name and type is replaced, keeping its id."""
        validate_command(body)
        existing = {(c["name"], c["type"]): c for c in self.list(guild_id)}
        return self._store(guild_id, body, existing.get((body["name"], body.get("type", CHAT_INPUT))))

    def edit(self, command: dict, body: dict) -> dict:
        merged = {**command, **body}
        validate_command(merged)
        return self._store(self._guild(command), merged, command)

    def delete(self, command: dict) -> None:
        del self.commands[int(command["id"])]

    def find(self, name: str, guild_id: int | None, kind: int = CHAT_INPUT) -> dict | None:
        """The command of type ``kind`` a user in ``guild_id`` would run as ``name``: guild commands win."""
        matches = [c for c in self.commands.values() if c["name"] == name and c["type"] == kind]
        for command in matches:
            if guild_id is not None and self._guild(command) == guild_id:
                return command
        return next((c for c in matches if self._guild(c) is None), None)

    def _store(self, guild_id: int | None, body: dict, previous: dict | None) -> dict:
        command_id = int(previous["id"]) if previous else self.ids.next()
        command = {
            "id": str(command_id),
            "application_id": str(self.application_id),
            "version": str(self.ids.next()),
            "type": body.get("type", CHAT_INPUT),
            "name": body["name"],
            "description": body.get("description", ""),
            "options": body.get("options") or [],
            # Discord answers with the bits as a string, whatever number form was sent.
            "default_member_permissions": _bits(body.get("default_member_permissions")),
            "dm_permission": body.get("dm_permission", True),
            "contexts": body.get("contexts"),
            "integration_types": body.get("integration_types", [0]),
            "nsfw": body.get("nsfw", False),
            "name_localizations": body.get("name_localizations"),
            "description_localizations": body.get("description_localizations"),
        }
        if guild_id is not None:
            command["guild_id"] = str(guild_id)
        self.commands[command_id] = command
        return command

    @staticmethod
    def _guild(command: dict) -> int | None:
        return int(command["guild_id"]) if command.get("guild_id") else None


def _bits(value: int | str | None) -> str | None:
    return None if value is None else str(int(value))


def usable_in_dms(command: dict) -> bool:
    """Whether Discord offers a command in a DM with the bot (``contexts``, or the old ``dm_permission``)."""
    contexts = command.get("contexts")
    if contexts is not None:
        return BOT_DM_CONTEXT in contexts
    return command.get("dm_permission", True) is not False
