import io
import os
import pickle
import zipfile
from pathlib import Path

import pytest
import torch

from model.checkpoint import (
    CheckpointMissingError,
    CheckpointVersionError,
    NotACheckpointError,
    TruncatedCheckpointError,
    load_checkpoint,
    read_checkpoint,
    save_checkpoint,
)


def test_round_trip_keeps_weights_vocab_config_and_metadata(tiny_checkpoint, tiny_model, sample_vocab):
    loaded = load_checkpoint(tiny_checkpoint)
    assert loaded.vocab == sample_vocab
    assert loaded.model.config == tiny_model.config
    assert loaded.metadata["val_bpc"] == 4.5
    assert "created_at" in loaded.metadata
    assert not loaded.model.training, "a loaded model serves in eval mode"
    for key, value in tiny_model.state_dict().items():
        assert torch.equal(loaded.model.state_dict()[key], value)


def test_loads_onto_the_device_asked_for(tiny_checkpoint):
    payload = read_checkpoint(tiny_checkpoint)
    assert all(t.device.type == "cpu" for t in payload["state_dict"].values()), "saved device-free"
    assert load_checkpoint(tiny_checkpoint, device=torch.device("cpu")).device.type == "cpu"


def test_missing_file(tmp_path):
    with pytest.raises(CheckpointMissingError, match=r"nothing\.pt"):
        load_checkpoint(tmp_path / "nothing.pt")


def test_a_text_file_is_not_a_checkpoint(tmp_path):
    path = tmp_path / "notes.pt"
    path.write_text("hello")
    with pytest.raises(NotACheckpointError, match=r"notes\.pt"):
        load_checkpoint(path)


def test_a_torch_file_of_something_else_is_not_a_checkpoint(tmp_path):
    path = tmp_path / "other.pt"
    torch.save({"weights": torch.zeros(3)}, path)
    with pytest.raises(NotACheckpointError, match="not a quotebot checkpoint"):
        load_checkpoint(path)


def test_a_pickle_that_would_run_code_is_refused(tmp_path):
    ran = tmp_path / "the-code-ran"

    class Evil:
        def __reduce__(self):  # unpickling this calls Path.touch(ran): code chosen by the file's author
            return (Path.touch, (ran,))

    path = tmp_path / "evil.pt"
    torch.save({"format": "quotebot-checkpoint", "x": Evil()}, path, pickle_protocol=pickle.DEFAULT_PROTOCOL)
    with pytest.raises(NotACheckpointError):
        load_checkpoint(path)
    assert not ran.exists(), "loading a checkpoint ran code from the file"


def test_truncated_file(tmp_path, tiny_checkpoint):
    data = tiny_checkpoint.read_bytes()
    path = tmp_path / "cut.pt"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(TruncatedCheckpointError, match=r"cut\.pt"):
        load_checkpoint(path)


def test_newer_format_version_is_refused(tmp_path, tiny_checkpoint):
    payload = read_checkpoint(tiny_checkpoint)
    payload["format_version"] = 99
    path = tmp_path / "future.pt"
    torch.save(payload, path)
    with pytest.raises(CheckpointVersionError, match="99"):
        load_checkpoint(path)


class _FailingWriter(io.RawIOBase):
    """A file that takes ``room`` bytes, then fails like a full disk: a crash in the middle of a write."""

    def __init__(self, handle, room: int):
        self.handle = handle
        self.room = room

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        chunk = bytes(data[: self.room])
        self.room -= len(chunk)
        self.handle.write(chunk)
        if len(chunk) < len(data):
            raise OSError(28, "No space left on device")
        return len(chunk)


def test_write_is_atomic_and_leaves_no_temporary_file(tmp_path, tiny_model, sample_vocab, monkeypatch):
    path = save_checkpoint(tmp_path / "m.pt", tiny_model, sample_vocab)
    before = path.read_bytes()
    real_save = torch.save
    written = []

    def save_until_the_disk_fills(obj, f, *args, **kwargs):
        # Whatever save_checkpoint hands torch.save (its temporary file, or the target path itself),
        # part of the checkpoint reaches the disk before the write fails.
        if isinstance(f, (str, os.PathLike)):
            f = open(f, "wb")  # noqa: SIM115 - torch.save would open the path the same way
        written.append(f)
        real_save(obj, _FailingWriter(f, room=len(before) // 2), *args, **kwargs)

    monkeypatch.setattr(torch, "save", save_until_the_disk_fills)
    # torch.save reports the disk error itself or, closing its zip writer, a RuntimeError about it.
    with pytest.raises((OSError, RuntimeError)):
        save_checkpoint(path, tiny_model, sample_vocab)
    for handle in written:
        handle.close()
    assert written, "the write started"
    assert path.read_bytes() == before, "a failed write must leave the old file whole"
    assert [p.name for p in tmp_path.iterdir()] == ["m.pt"]
    assert zipfile.is_zipfile(path)
    assert load_checkpoint(path).vocab == sample_vocab
