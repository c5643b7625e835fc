"""Saving and loading a model with its vocabulary, config and metadata.

    save_checkpoint("model.pt", model, vocab, {"val_bpc": 2.1})
    loaded = load_checkpoint("model.pt", device="cpu")   # LoadedModel(model, vocab, metadata)

A checkpoint is a plain dict of tensors, strings and numbers, written atomically (temporary file in the
same folder, flush, fsync, rename) and read with ``torch.load(weights_only=True)``, so loading a file
cannot run code. Every way a file can be bad has its own error, each naming the file.
"""

from __future__ import annotations

import os
import tempfile
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import torch

from model.bundled import DEFAULT_CHECKPOINT as DEFAULT_CHECKPOINT  # re-exported: its old home
from model.device import use_exact_float32
from model.network import CharLSTM, ModelConfig
from model.vocab import Vocab
from model.voice import Voice

FORMAT_NAME = "quotebot-checkpoint"
FORMAT_VERSION = 1


class CheckpointError(Exception):
    """A checkpoint could not be used; the message names the file and the problem."""


class CheckpointMissingError(CheckpointError):
    """There is no file at the path."""


class NotACheckpointError(CheckpointError):
    """The file exists but is not a quotebot checkpoint."""


class TruncatedCheckpointError(CheckpointError):
    """The file starts like a checkpoint but is cut short or damaged."""


class CheckpointVersionError(CheckpointError):
    """The file was written by a newer quotebot than this one."""


@dataclass
class LoadedModel:
    """A model in eval mode on its device, with what it needs to encode and decode text."""

    model: CharLSTM
    vocab: Vocab
    metadata: dict = field(default_factory=dict)
    path: Path | None = None

    @property
    def device(self) -> torch.device:
        return self.model.head.weight.device


def save_checkpoint(path: str | Path, model: CharLSTM, vocab: Vocab, metadata: dict | None = None) -> Path:
    """Write ``model`` atomically to ``path``; ``metadata`` must hold plain values only.

    The vocabulary's voice (lexicon, length calibration) is stored as ``metadata["voice"]`` unless
    ``metadata`` brings its own.
    """
    path = Path(path)
    if len(vocab) != model.config.vocab_size:
        raise ValueError(f"vocabulary has {len(vocab)} ids but the model has {model.config.vocab_size}")
    meta = {"created_at": time.time(), **(metadata or {})}
    if vocab.voice is not None and "voice" not in meta:
        meta["voice"] = vocab.voice.to_metadata()
    payload = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "config": model.config.to_dict(),
        "vocab": vocab.to_list(),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "metadata": meta,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            torch.save(payload, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp_name, 0o644)  # mkstemp makes the file private; a model is not a secret
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    return path


def read_checkpoint(path: str | Path) -> dict:
    """The checked raw contents of a checkpoint file (tensors on the CPU)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointMissingError(f"{path}: no such checkpoint file")
    with path.open("rb") as handle:
        magic = handle.read(4)
    if magic != b"PK\x03\x04":
        raise NotACheckpointError(f"{path}: not a checkpoint (not a PyTorch file)")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError) as exc:
        raise TruncatedCheckpointError(f"{path}: the file is truncated or damaged ({exc})") from exc
    except Exception as exc:  # weights_only refuses anything that could run code
        raise NotACheckpointError(f"{path}: not a quotebot checkpoint ({exc})") from exc
    if not isinstance(payload, dict) or payload.get("format") != FORMAT_NAME:
        raise NotACheckpointError(f"{path}: a PyTorch file, but not a quotebot checkpoint")
    version = payload.get("format_version")
    if not isinstance(version, int):
        raise NotACheckpointError(f"{path}: the checkpoint has no format version")
    if version > FORMAT_VERSION:
        raise CheckpointVersionError(
            f"{path}: format version {version} is newer than this quotebot reads ({FORMAT_VERSION}); upgrade"
        )
    for key in ("config", "vocab", "state_dict", "metadata"):
        if key not in payload:
            raise NotACheckpointError(f"{path}: the checkpoint lacks its {key!r} entry")
    return payload


def load_checkpoint(path: str | Path, device: torch.device | str = "cpu") -> LoadedModel:
    """Load a checkpoint onto ``device`` (whatever device it was saved from), in eval mode."""
    payload = read_checkpoint(path)
    try:
        config = ModelConfig.from_dict(payload["config"])
        vocab = Vocab.from_list(payload["vocab"])
        model = CharLSTM(config)
        model.load_state_dict(payload["state_dict"])
        stored_voice = payload["metadata"].get("voice")
        if stored_voice is not None:  # what every SamplingDecoder built on this vocabulary will use
            vocab = vocab.with_voice(Voice.from_metadata(stored_voice))
    except (TypeError, ValueError, RuntimeError, KeyError, AttributeError) as exc:
        raise NotACheckpointError(f"{path}: the checkpoint's contents do not fit together ({exc})") from exc
    if len(vocab) != config.vocab_size:
        raise NotACheckpointError(f"{path}: vocabulary size {len(vocab)} does not match the model's")
    model.to(device).eval()
    use_exact_float32(torch.device(device))
    return LoadedModel(model=model, vocab=vocab, metadata=dict(payload["metadata"]), path=Path(path))
