"""quotebot's bundled files, installed as the package ``quotebot_data`` (setup.py maps this folder).

    from importlib.resources import files
    files("quotebot_data") / "models" / "default.pt"

``model.bundled`` is the one place that resolves them, so no code depends on the working directory
or on the repository's layout: the same paths work from a clone (an editable install) and a wheel.
"""
