"""The speed check measures what it says: images over the seconds of the timed epoch."""
import json

import pytest
import torch
from helpers import FakeClock

import utils.train as train
from utils import benchmark


def test_train_throughput_is_images_over_the_timed_epochs_seconds(monkeypatch):
    monkeypatch.setattr(train, "_clock", FakeClock())
    # the timed (second) epoch reads the clock at its start and its end: 1 fake second for 3 x 8 images
    speed = benchmark.train_throughput(benchmark.tiny_cnn(), "cpu", batch_size=8, batches=3)
    assert speed == pytest.approx(24.0)


def test_benchmark_prints_and_saves_its_table(tmp_path, capsys):
    path = tmp_path / "bench.json"
    report = benchmark.main(["--model", "tiny_cnn", "--batch-size", "8", "--batches", "1", "--device", "cpu",
                             "--json", str(path)])
    out = capsys.readouterr().out
    assert f"{report['models']['tiny_cnn']:>12,.0f} img/s training (94,538 params)" in out
    assert report["models"]["tiny_cnn"] > 0 and report["augment_images_per_second"] > 0
    assert json.loads(path.read_text()) == json.loads(json.dumps(report))


def test_ablation_keeps_every_step_and_skips_compile_on_a_cpu():
    rows = benchmark.ablation("cpu", model=benchmark.tiny_cnn, batches=1)
    assert [r["step"] for r in rows] == [label for label, _ in benchmark.ABLATION]
    measured = [r for r in rows if r["images_per_second"] is not None]
    assert [r["batch_size"] for r in measured] == [128, 128, 128, 512] and measured[0]["speedup"] == 1.0
    assert [r["note"] for r in rows[4:]] == ["skipped: GPU only"] * 2


def test_a_compiled_row_shows_its_compilation(monkeypatch, capsys):
    monkeypatch.setattr(torch, "compile", lambda model, mode=None: model)  # compiling for real takes minutes here
    benchmark.train_throughput(benchmark.tiny_cnn(), "cpu", batch_size=8, batches=2, compile=True)
    assert capsys.readouterr().err.startswith("compiling the model (torch.compile): ")


def test_ablation_and_torchvision_comparison_run_together(monkeypatch, tmp_path):
    """The GPU run asks for both in one command (--ablation --compare-torchvision): both run, both are saved."""
    calls = []
    monkeypatch.setattr(benchmark, "ablation", lambda device, model, batches: calls.append("ablation") or [])
    monkeypatch.setattr(benchmark, "compare_torchvision", lambda *a, **k: calls.append("torchvision") or [])
    report = benchmark.main(["--ablation", "--compare-torchvision", "--device", "cpu", "--json",
                             str(tmp_path / "b.json")])
    assert calls == ["ablation", "torchvision"] and {"ablation", "compare_torchvision"} <= set(report)
    assert "models" not in report  # the per-model table runs only when nothing else is asked for


def test_t4_check_picks_the_largest_batch_that_fits_and_projects_30_epochs(monkeypatch, capsys):
    from utils import data
    from utils.data import DeviceLoader

    def loaders(per_class, test_per_class, batch_size, device, channels_last):
        images = torch.randint(0, 256, (4 * batch_size, 3, 32, 32), dtype=torch.uint8)
        labels = torch.arange(4 * batch_size) % 10
        return (DeviceLoader(images, labels, batch_size, shuffle=True, augment=True, drop_last=True),
                DeviceLoader(images[:batch_size], labels[:batch_size], batch_size))

    monkeypatch.setattr(data, "cifar10_loaders", loaders)
    result = benchmark.t4_check("cpu", epochs=2, dry_run=True)
    assert [row["batch_size"] for row in result["batch_table"]] == [8, 16]
    assert result["batch_size"] == 16 and result["lr"] == pytest.approx(0.4 * 16 / 512)
    assert result["precision"] == "fp32" and not result["gradient_scaler"] and "dry run" in result["label"]
    assert result["projected_30_epochs_seconds"] == pytest.approx(30 * 4 * 16 / result["images_per_second"])
    benchmark._print_t4(result)
    assert "picked batch 16" in capsys.readouterr().out
