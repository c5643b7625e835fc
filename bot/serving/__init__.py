"""Where the model runs: the only package that touches the executor and torch on the bot's side.

``ModelHost`` (host.py) owns the single-thread executor and the loaded models; its worker (batcher.py)
groups waiting requests into running batches that new requests join at the next step. ``GuildModels``
(guild_models.py) picks each server's promoted model and loads it on demand. May import ``bot.errors``,
``bot.settings``, ``bot.storage`` and ``model``; never ``discord``.
Also imports ``bot.ops.metrics`` (discord-free) to move its ``quotebot_*`` series.
"""
