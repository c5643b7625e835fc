"""Everything the bot keeps: one SQLite database behind small repository classes.

``Database`` (db.py) opens it, serialises writes and runs the migrations (migrations.py); records.py holds
the row types, typed errors and input checks; ``Store`` (store.py) quotes, votes and forgetting;
``ModelVersions`` (model_versions.py) each server's model versions and retrain runs; training_data.py the
quotes a retrain learns from (also read without the bot, by ``python -m bot export``). May import
``bot.errors`` and the standard library; never ``discord``, the model host or torch.
"""
