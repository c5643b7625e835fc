"""Discord cogs: thin adapters from discord.py commands and events to ``bot.service``."""

EXTENSIONS = ("bot.cogs.quotes",)
