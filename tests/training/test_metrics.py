"""training.metrics: the JSON Lines log and the loss-curve PNG beside a checkpoint."""

from training.metrics import MetricsLog, metrics_path_for, plot_losses, plot_path_for, read_metrics


def test_paths_sit_beside_the_checkpoint(tmp_path):
    assert metrics_path_for(tmp_path / "pat.pt") == tmp_path / "pat.metrics.jsonl"
    assert plot_path_for(tmp_path / "pat.pt") == tmp_path / "pat.loss.png"


def test_log_appends_or_starts_afresh(tmp_path):
    log = MetricsLog(tmp_path / "m.jsonl")
    log.write({"event": "train", "step": 1, "train_nats": 3.0})
    assert read_metrics(log.path) == [{"event": "train", "step": 1, "train_nats": 3.0}]
    MetricsLog(log.path, append=True).write({"event": "val", "step": 2, "val_nats": 2.5})
    assert len(read_metrics(log.path)) == 2
    MetricsLog(log.path)
    assert read_metrics(log.path) == []


def test_plot_draws_a_png(tmp_path):
    log = MetricsLog(tmp_path / "m.jsonl")
    for step in range(1, 6):
        log.write({"event": "train", "step": step, "train_nats": 4.0 / step})
    log.write({"event": "val", "step": 5, "val_nats": 1.5})
    png = plot_losses(log.path, tmp_path / "out" / "m.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000
    only_val = MetricsLog(tmp_path / "v.jsonl")
    only_val.write({"event": "val", "step": 1, "val_nats": 2.0})
    assert plot_losses(only_val.path, tmp_path / "v.png").is_file()
