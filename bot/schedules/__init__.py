"""Scheduled posts: a quote posted to a channel on a rhythm.

rhythm.py parses and steps rhythms ("every 6h", "daily 09:00 Europe/Paris"); store.py keeps the schedules
and records each post before it is sent; scheduler.py finds what is due and writes each quote through
``QuoteService.write``. May import ``bot.quotes``, ``bot.storage``, ``bot.errors``; never ``discord``
(the cog hands the scheduler a ``post`` function).
Also imports ``bot.ops.metrics`` (discord-free) to move its ``quotebot_*`` series.
"""
