"""The rules of a quote request, with no discord.py in sight.

``QuoteService`` (service.py) is the one way to write a quote, used by the cogs, the console and the
scheduler: options and limits (options.py), the per-user cooldown, the choice of the server's model, the
model host, and storing what it wrote (quote_log.py). ``Favourites`` (favourites.py) turns ⭐ into votes
and answers the top list. ``InFlight`` (in_flight.py) counts the bot's work in flight, which its close
drains before the store closes. May import ``bot.errors``, ``bot.settings``, ``bot.serving``,
``bot.storage`` and ``model``; never ``discord`` (importing this package must not load it: a test checks).
Also imports ``bot.ops.metrics`` (discord-free) to move its ``quotebot_*`` series.
"""
