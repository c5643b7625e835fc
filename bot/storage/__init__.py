"""Everything the bot keeps: one database, SQLite (default) or PostgreSQL, behind small repository classes.

``Database`` (db.py) opens it (sqlite_backend.py for a file, postgres.py for a URL: one interface, the
repositories' SQL written once), runs whole transactions and the migrations (migrations.py); records.py holds
the row types, typed errors and input checks; ``Store`` (store.py) quotes, votes and forgetting;
``ModelVersions`` (model_versions.py) each server's model versions and retrain runs; training_data.py the
quotes a retrain learns from (also read without the bot, by ``python -m bot export``); shards.py which
servers are this process's. May import ``bot.errors``, the standard library and the database drivers
(aiosqlite, asyncpg); never ``discord``, the model host or torch.
"""
