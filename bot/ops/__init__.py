"""Running quotebot as a service: Prometheus metrics, the health and metrics endpoint, the shutdown guard.

``metrics.py`` holds the ``quotebot_*`` series and the few functions the other packages call to move
them (free of discord.py, so any package may import it). ``health.py`` serves ``/healthz`` and
``/metrics`` with aiohttp when ``HEALTH_PORT`` is set; ``shutdown.py`` bounds a SIGTERM. Only ``bot.app``
and ``bot.__main__`` import ``health`` and ``shutdown``.
"""
