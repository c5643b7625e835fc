"""Package discovery that pyproject.toml cannot express: the code packages are found, and the
repository's ``data/`` folder (the bundled model and sample corpus) is shipped as the package
``quotebot_data``. Everything else (metadata, dependencies, package data) is in pyproject.toml."""

from setuptools import find_packages, setup

setup(
    packages=[
        *find_packages(include=["bot*", "model*", "training*"]),
        "quotebot_data",
        "quotebot_data.models",
    ],
    package_dir={"quotebot_data": "data"},
)
