"""Retraining a server's model from its stored quotes, while the bot keeps serving.

``Retrainer`` (retrainer.py) runs ``python -m training finetune`` and the judge as low-priority child
processes (child_process.py), promotes a candidate by the pure rule in ``training.verdict``, and swaps it
in through ``bot.serving``; progress.py reports each run's progress lines; texts.py writes what members
see. May import ``bot.storage``, ``bot.serving``, ``bot.errors``, ``bot.settings`` and the small pure parts
of ``training`` (verdict, metrics paths); never ``discord`` or the trainer itself.
Also imports ``bot.ops.metrics`` (discord-free) to move its ``quotebot_*`` series.
"""
