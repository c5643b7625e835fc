"""Retraining a server's model from its stored quotes, while the bot keeps serving.

``Retrainer`` (retrainer.py) runs ``python -m training finetune`` and the judge as low-priority child
processes (child_process.py), promotes a candidate by the pure rule in ``training.verdict`` and swaps it
in through ``bot.serving`` (promotion.py, which also removes version files over the cap); fair_use.py holds
the cooldown, the first-come queue and the cap's choice; preview.py what ``!retrain preview`` shows and the
quote ids ``!retrain exclude`` takes; config.py the settings a run reads; progress.py reports each run's
progress lines; texts.py writes what members see. May import ``bot.storage``, ``bot.serving``,
``bot.errors``, ``bot.settings``, ``model.vocab`` and the small pure parts of ``training`` (verdict, metrics
paths, corpus normalising, server_text); never ``discord`` or the trainer itself.
Also imports ``bot.ops.metrics`` (discord-free) to move its ``quotebot_*`` series.
"""
