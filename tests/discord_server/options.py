"""Slash command options as the Discord client sends them: typed, checked, with resolved objects.

Tests write ``options={"seed": "Hey,", "temperature": 0.8}``; the registered command says each option's
type, choices and range. The Discord client refuses what falls outside them, so the test server does too
(a ValueError naming the option), instead of sending the bot something Discord never would.
"""

from __future__ import annotations

from typing import Any

from . import commands as c
from .state import Guild, World


def typed_options(
    command: dict,
    path: list[str],
    values: dict[str, Any],
    world: World,
    guild: Guild | None,
    *,
    focused: str | None = None,
) -> tuple[list[dict], dict]:
    """The ``options`` and ``resolved`` of an interaction for ``values``, typed by the registered command.

    ``path`` names the subcommand group/subcommand, if any. Raises ValueError for what the client refuses.
    ``focused`` names the option being typed (an autocomplete): sent as the partial text typed so far,
    flagged ``focused``, and required options may still be missing.
    """
    schema, nesting = command.get("options") or [], []
    for sub in path:
        option = next(
            (o for o in schema if o["name"] == sub and o["type"] in (c.SUB_COMMAND, c.SUB_COMMAND_GROUP)),
            None,
        )
        if option is None:
            raise ValueError(f"/{command['name']} has no subcommand {sub!r}")
        nesting.append(option)
        schema = option.get("options") or []
    by_name = {o["name"]: o for o in schema}
    missing = [o["name"] for o in schema if o.get("required") and o["name"] not in values]
    if focused is not None:
        if not by_name.get(focused, {}).get("autocomplete"):
            raise ValueError(f"/{command['name']}: option {focused!r} has no autocomplete")
        missing = []
    if missing or set(values) - set(by_name):
        raise ValueError(
            f"/{command['name']}: missing {missing}, unknown {sorted(set(values) - set(by_name))}"
        )
    resolved: dict = {}
    options = [
        {
            "name": key,
            "type": by_name[key]["type"],
            "value": _value(by_name[key], value, resolved, world, guild),
        }
        if key != focused
        else {"name": key, "type": by_name[key]["type"], "value": str(value), "focused": True}
        for key, value in values.items()
    ]
    for option in reversed(nesting):
        options = [{"name": option["name"], "type": option["type"], "options": options}]
    return options, resolved


def _value(option: dict, value: Any, resolved: dict, world: World, guild: Guild | None) -> Any:
    kind, name = option["type"], option["name"]
    if kind in (c.USER, c.CHANNEL, c.ROLE):
        return _resolve(option, value, resolved, world, guild)
    if option.get("autocomplete") and kind == c.STRING:
        return str(value)  # the client sends whatever was typed, not only what autocomplete offered
    converted = {c.STRING: str, c.INTEGER: int, c.NUMBER: float, c.BOOLEAN: bool}[kind](value)
    choices = [choice["value"] for choice in option.get("choices") or []]
    if choices and converted not in choices:
        raise ValueError(f"option {name!r}: {converted!r} is not one of the choices {choices}")
    size = len(converted) if kind == c.STRING else converted
    low_key, high_key = ("min_length", "max_length") if kind == c.STRING else ("min_value", "max_value")
    low, high = option.get(low_key), option.get(high_key)
    if (low is not None and size < low) or (high is not None and size > high):
        raise ValueError(f"option {name!r}: Discord's client refuses {converted!r} (range {low}..{high})")
    return converted


def _resolve(option: dict, value: Any, resolved: dict, world: World, guild: Guild | None) -> str:
    """User, channel and role options carry an id plus the object under ``resolved``."""
    kind = option["type"]
    target_id = str(getattr(value, "id", value))
    if kind == c.USER:
        user = world.users[int(target_id)]
        resolved.setdefault("users", {})[target_id] = user.payload()
        member = world.member_payload(guild, user.id)
        if member is not None and guild is not None:
            perms = str(guild.permissions_of(user.id))
            resolved.setdefault("members", {})[target_id] = {**member, "permissions": perms}
    elif kind == c.CHANNEL:
        channel = world.channels[int(target_id)]
        allowed = option.get("channel_types")
        if allowed is not None and channel.type not in allowed:
            raise ValueError(f"option {option['name']!r}: the client offers only channel types {allowed}")
        resolved.setdefault("channels", {})[target_id] = {**channel.payload(), "permissions": "0"}
    elif guild is None:
        raise ValueError("role options only exist in guilds")
    else:
        resolved.setdefault("roles", {})[target_id] = guild.roles[int(target_id)].payload()
    return target_id
