"""Where the bundled files are: the default model and the sample corpus, found through the installed
package ``quotebot_data`` (the repository's ``data/`` folder), never the working directory.

    from model.bundled import DEFAULT_CHECKPOINT, SAMPLE_CORPUS, bundled_file

From a clone, ``make setup`` installs the repository in editable mode, so ``quotebot_data`` is the
clone's ``data/`` folder; from a wheel it is the copy inside ``site-packages``. Either way the
paths are real files (wheels are installed unpacked), which torch and the corpus readers need.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

DATA_PACKAGE = "quotebot_data"


def bundled_file(*parts: str) -> Path:
    """The path of a bundled file, e.g. ``bundled_file("models", "default.pt")``."""
    try:
        resource = files(DATA_PACKAGE)
    except ModuleNotFoundError:
        raise ModuleNotFoundError(
            f"quotebot's bundled files ({DATA_PACKAGE}) are not installed: run `make setup` "
            "(pip install -e .) in the repository, or install the quotebot wheel"
        ) from None
    for part in parts:
        resource = resource.joinpath(part)
    return Path(str(resource))


DATA_DIR = bundled_file()
"""The folder of the bundled files (``data/`` in a clone)."""
DEFAULT_CHECKPOINT = bundled_file("models", "default.pt")
"""The bundled default model, used when no other checkpoint is named."""
SAMPLE_CORPUS = bundled_file("sample_quotes.txt")
"""320 original quotes of "Pat", an office worker: the demo and test corpus."""
