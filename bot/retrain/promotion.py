"""Promotion: a judged candidate becomes the server's next version; the oldest files beyond the cap go.

    version = await promote(versions, guild_models, run, parent, candidate, figures)
    removed = await prune(versions, guild_id, keep=5)

The candidate (and its loss curve and metrics) moves into ``<models>/guild-<id>/v<n>.pt`` by an atomic
rename, its row is recorded and the server points at it, then the model host loads it between batches.
Pruning removes the files of the server's oldest versions beyond ``keep`` (never the one serving nor its
parent, so one ``rollback`` always works), with their loss curve, metrics and cached samples; their rows
stay, for the record, and a version without its file is passed over like a damaged one.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from bot.errors import QuotebotError
from bot.retrain.fair_use import versions_to_prune
from bot.serving.guild_models import GuildModels
from bot.storage.model_versions import ModelVersion, ModelVersions, RetrainRun, version_path
from training.metrics import metrics_path_for, plot_path_for, sidecar_paths_for

_log = logging.getLogger(__name__)


async def promote(
    versions: ModelVersions,
    guild_models: GuildModels | None,
    run: RetrainRun,
    parent: ModelVersion | None,
    candidate: Path,
    figures: dict,
) -> ModelVersion:
    """Move the candidate into place (atomic rename), record it, point the server at it, load it."""
    number = await versions.next_number(run.guild_id)
    relative = version_path(run.guild_id, number)
    target = versions.models_dir / relative
    target.parent.mkdir(parents=True, exist_ok=True)
    moved = [(candidate, target)]
    moved += [(side(candidate), side(target)) for side in (plot_path_for, metrics_path_for)]
    for source, destination in moved:
        if source.is_file():
            os.replace(source, destination)  # same folder tree, same file system: atomic
    scores = {k: v for k, v in figures.items() if k.startswith(("base_", "guild_", "loop_"))}
    trained_on = {k: v for k, v in figures.items() if k in ("favoured", "source")}
    trained_on.update({k[len("trained_") :]: v for k, v in figures.items() if k.startswith("trained_")})
    try:
        version = await versions.record_version(
            run.guild_id, run.id, relative, parent.id if parent else None, scores, trained_on
        )
    except BaseException:
        for _, destination in moved:  # no row, no file: the next number stays free
            destination.unlink(missing_ok=True)
        raise
    if guild_models is not None:
        try:  # promoted whatever happens here: a model that will not load is passed over, and logged
            serving = await guild_models.activate(run.guild_id)
            if serving.version is None or serving.version.id != version.id:
                _log.error("retrain %d: version %d was promoted but could not be loaded", run.id, number)
        except QuotebotError as exc:  # the host is shutting down: the next start loads it
            _log.warning("retrain %d: version %d not loaded now: %s", run.id, number, exc)
    return version


async def prune(versions: ModelVersions, guild_id: int, keep: int) -> list[ModelVersion]:
    """Remove the files of the server's oldest versions beyond ``keep_versions`` (never the one serving
    nor its parent), with their loss curve, metrics and samples; their rows stay, for the record."""
    every = await versions.versions(guild_id)
    serving = await versions.current(guild_id)
    doomed = versions_to_prune(every, serving, keep, lambda v: versions.file_of(v).is_file())
    for version in doomed:
        path = versions.file_of(version)
        for file in (path, *sidecar_paths_for(path)):
            file.unlink(missing_ok=True)
        _log.info("server %d: removed the file of version %d (over the cap)", guild_id, version.number)
    return doomed
