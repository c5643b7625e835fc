"""quotebot's Discord bot and offline console: settings, model host, service, cogs, entry point."""
