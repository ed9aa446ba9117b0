"""The training loop: it learns, it resumes exactly, it refuses foreign checkpoints."""
import copy
import errno
import inspect
import math
import pathlib
import re
import signal
import threading

import pytest
import torch
from helpers import FakeClock
from torch import nn

import utils.train as train
from utils.data import DeviceLoader
from utils.models import GoogLeNet
from utils.train import (
    CheckpointError,
    CheckpointMismatchError,
    TrainingDiverged,
    classification_loss,
    evaluate,
    fit,
    load_checkpoint,
    save_checkpoint,
    seed_everything,
)


def _toy_data(n=256, seed=0):
    """Two classes of 8x8 images: bright top half versus bright bottom half, plus noise."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, 2, (n,), generator=g)
    images = torch.randint(0, 80, (n, 3, 8, 8), generator=g)
    images[labels == 0, :, :4] += 150
    images[labels == 1, :, 4:] += 150
    return images.to(torch.uint8), labels


def _toy_model():
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Dropout(0.2), nn.AdaptiveAvgPool2d(2),
                         nn.Flatten(), nn.Linear(32, 2))


def _loader(seed=0, augment=True, data_seed=0):
    images, labels = _toy_data(seed=data_seed)
    return DeviceLoader(images, labels, batch_size=32, shuffle=True, augment=augment, drop_last=True, seed=seed)


class Disconnect(Exception):
    """Stands in for a Colab disconnect."""


class DisconnectingLoader:
    """Wraps a loader and raises Disconnect when epoch ``at_epoch`` (0-based) starts."""

    def __init__(self, loader, at_epoch):
        self.loader, self.at_epoch, self.epochs = loader, at_epoch, 0
        self.generator = loader.generator

    def __len__(self):
        return len(self.loader)

    def __iter__(self):
        if self.epochs == self.at_epoch:
            raise Disconnect
        self.epochs += 1
        return iter(self.loader)


def test_fit_learns_a_tiny_problem():
    seed_everything(0)
    model = _toy_model()
    held_out = _loader(augment=False, data_seed=1)  # other images than the training ones
    history = fit(model, _loader(augment=False), held_out, epochs=6, lr=0.05, progress=False, device="cpu")
    assert history.train_loss[-1] < 0.15 and history.train_loss[-1] < history.train_loss[0]
    assert history.test_acc[-1] > 0.95
    assert len(history.epoch) == 6 and all(s > 0 for s in history.images_per_second)


def test_resume_continues_exactly_like_an_uninterrupted_run(tmp_path):
    seed_everything(0)
    straight = _toy_model()
    initial = {k: v.clone() for k, v in straight.state_dict().items()}
    fit(straight, _loader(), epochs=3, progress=False, device="cpu")

    first = _toy_model()
    first.load_state_dict(initial)
    path = tmp_path / "run.pt"
    with pytest.raises(Disconnect):  # the session dies during epoch 2
        fit(first, DisconnectingLoader(_loader(), at_epoch=1), epochs=3, checkpoint=path, progress=False,
            device="cpu")
    assert load_checkpoint(path, _toy_model(), restore_rng=False)["epoch"] == 1
    torch.manual_seed(1234)  # a fresh session: different global random state
    resumed = _toy_model()
    history = fit(resumed, _loader(), epochs=3, checkpoint=path, resume=True, progress=False, device="cpu")
    assert history.epoch == [1, 2, 3]
    for key, value in straight.state_dict().items():
        assert torch.equal(value, resumed.state_dict()[key]), key


def test_checkpoint_of_another_model_is_refused(tmp_path):
    path = tmp_path / "small.pt"
    save_checkpoint(path, _toy_model())
    with pytest.raises(CheckpointMismatchError, match=r"(?s)saved from a Sequential with .*same options"):
        load_checkpoint(path, nn.Sequential(nn.Linear(3, 2)))
    with pytest.raises(CheckpointMismatchError):
        load_checkpoint(path, GoogLeNet(num_classes=2, stem="cifar", width=0.125))
    torch.save({"just": torch.zeros(1)}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="not a course checkpoint"):
        load_checkpoint(tmp_path / "other.pt", _toy_model())


def test_auxiliary_loss_weight():
    torch.manual_seed(0)
    y = torch.randint(0, 5, (8,))
    main, aux1, aux2 = torch.randn(3, 8, 5).unbind(0)
    loss, logits = classification_loss((main, aux1, aux2), y)
    ce = nn.functional.cross_entropy
    torch.testing.assert_close(loss, ce(main, y) + 0.3 * ce(aux1, y) + 0.3 * ce(aux2, y))
    assert logits is main


def test_googlenet_aux_heads_add_three_tenths_of_their_loss_in_fit():
    """With every classifier zeroed, each head predicts uniformly: loss = (1 + 2 x 0.3) ln 10 exactly."""
    seed_everything(0)
    model = GoogLeNet(num_classes=10, stem="cifar", width=0.125, batch_norm=True)
    for layer in (model.fc, model.aux1.fc2, model.aux2.fc2):
        nn.init.zeros_(layer.weight)
        nn.init.zeros_(layer.bias)
    images = torch.randint(0, 256, (4, 3, 32, 32), dtype=torch.uint8)
    loader = DeviceLoader(images, torch.arange(4), batch_size=2)
    history = fit(model, loader, loader, epochs=1, lr=0.0, schedule="constant", progress=False, device="cpu")
    assert history.train_loss[0] == pytest.approx(1.6 * math.log(10), rel=1e-6)
    assert history.train_main_loss[0] == pytest.approx(math.log(10), rel=1e-6)  # the main head's alone
    assert history.test_loss[0] == pytest.approx(math.log(10), rel=1e-6)  # aux heads are dropped at inference
    assert "train loss 3.684 (main head 2.303)" in history.summary()


def test_label_smoothing_applies_to_a_single_head_model():
    torch.manual_seed(0)
    logits, y = torch.randn(8, 5), torch.randint(0, 5, (8,))
    loss, returned = classification_loss(logits, y, label_smoothing=0.2)
    # smoothed cross-entropy by hand: (1 - 0.2) x the usual one + 0.2 x the mean over every class
    log_p = logits.log_softmax(1)
    by_hand = -(0.8 * log_p.gather(1, y[:, None]).squeeze(1) + 0.2 * log_p.mean(1)).mean()
    torch.testing.assert_close(loss, by_hand)
    assert returned is logits and loss.item() != pytest.approx(nn.functional.cross_entropy(logits, y).item())


def test_fit_smooths_the_loss_of_a_single_head_model():
    y = torch.tensor([0, 1, 0, 1])
    start = Bias()
    start.bias.data = torch.tensor([2.0, 0.0])
    history = fit(start, [(torch.zeros(4, 1), y)], epochs=1, lr=0.0, schedule="constant", label_smoothing=0.2,
                  progress=False, device="cpu")
    log_p = torch.tensor([2.0, 0.0]).log_softmax(0)
    by_hand = -(0.8 * log_p + 0.2 * log_p.mean()).mean().item()  # two examples of each class
    assert history.train_loss[0] == pytest.approx(by_hand, rel=1e-6)
    assert history.train_main_loss == history.train_loss  # one head: the same number
    assert "(main head" not in history.summary()


class FixedHeads(nn.Module):
    """Three heads with fixed logits, whatever the input: the loss can be computed by hand."""

    def __init__(self):
        super().__init__()
        self.logits = nn.Parameter(torch.tensor([[2.0, 0.0, -1.0], [0.5, 1.0, 0.0], [-1.0, 3.0, 0.0]]))

    def forward(self, x):
        main, aux1, aux2 = (row.expand(len(x), 3) for row in self.logits)
        return (main, aux1, aux2) if self.training else main


def test_fit_uses_aux_weight_three_tenths_and_smooths_every_head():
    y = torch.tensor([0, 1, 2, 0])
    loader = [(torch.zeros(4, 1), y)]
    history = fit(FixedHeads(), loader, epochs=1, lr=0.0, schedule="constant", label_smoothing=0.2,
                  progress=False, device="cpu")
    heads = FixedHeads().logits.detach()
    ce = [nn.functional.cross_entropy(h.expand(4, 3), y, label_smoothing=0.2).item() for h in heads]
    assert history.train_loss[0] == pytest.approx(ce[0] + 0.3 * ce[1] + 0.3 * ce[2], rel=1e-6)
    assert history.train_main_loss[0] == pytest.approx(ce[0], rel=1e-6)


class Spy(nn.Module):
    """Records, at each forward pass, the autocast state and the input's memory format."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 2, 3, padding=1)
        self.fc = nn.Linear(2, 2)
        self.seen = []

    def forward(self, x):
        self.seen.append((torch.is_autocast_enabled("cpu"), torch.get_autocast_dtype("cpu"),
                          x.is_contiguous(memory_format=torch.channels_last)))
        return self.fc(self.conv(x).mean((2, 3)))


def test_bf16_and_channels_last_are_used_by_fit():
    spy = Spy()
    fit(spy, _loader(), epochs=1, progress=False, device="cpu", bf16=True, channels_last=True)
    assert spy.seen and all(on and dtype == torch.bfloat16 and last for on, dtype, last in spy.seen)
    assert spy.conv.weight.is_contiguous(memory_format=torch.channels_last)
    plain = Spy()
    fit(plain, _loader(), epochs=1, progress=False, device="cpu")
    assert not any(on or last for on, _, last in plain.seen)


@pytest.mark.parametrize(("capability", "expected"), [((7, 5), "fp16"), ((8, 0), "bf16"), ((9, 0), "bf16")])
def test_auto_precision_picks_bf16_from_compute_capability_8_0_on(monkeypatch, capability, expected):
    """Colab's T4 (7.5): torch >= 2.4 says bf16 is 'supported' (emulated), yet auto must pick fp16 + GradScaler."""
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *args, **kwargs: True)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: capability)
    assert train.resolve_precision("auto", "cuda") == expected
    assert train.resolve_precision("auto", "cpu") == "fp32"
    assert train.resolve_precision("fp16", "cuda") == "fp16"


def test_schedules_set_the_learning_rate_of_every_step():
    onecycle = fit(_toy_model(), _loader(), epochs=2, lr=0.05, progress=False, device="cpu")
    # OneCycleLR ends at max_lr / div_factor / final_div_factor = 0.05 / 25 / 1e4
    assert onecycle.lr[-1] == pytest.approx(0.05 / 25 / 1e4)
    constant = fit(_toy_model(), _loader(), epochs=2, lr=0.05, schedule="constant", progress=False, device="cpu")
    assert constant.lr == [0.05, 0.05]


class Bias(nn.Module):
    """Logits = a learnable bias, whatever the input."""

    def __init__(self):
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(2))

    def forward(self, x):
        return self.bias.expand(len(x), 2)


def test_sgd_uses_nesterov_momentum():
    # gradient of the mean cross-entropy at bias 0 with every label 0: softmax - one-hot = (-0.5, 0.5).
    # Nesterov SGD's first step is lr * (g + 0.9 g) = 1.9 lr g; plain SGD's would be lr * g.
    model = Bias()
    fit(model, [(torch.zeros(4, 1), torch.zeros(4, dtype=torch.int64))], epochs=1, lr=0.1, schedule="constant",
        weight_decay=0.0, progress=False, device="cpu")
    torch.testing.assert_close(model.bias.detach(), torch.tensor([0.095, -0.095]))


def test_the_default_optimizer_is_sgd_with_nesterov_momentum_0_9():
    """The lessons state it: SGD, Nesterov momentum 0.9, weight decay 5e-4."""
    group = train.make_optimizer(Bias()).param_groups[0]
    assert (group["momentum"], group["nesterov"], group["weight_decay"]) == (0.9, True, 5e-4)
    assert inspect.signature(fit).parameters["momentum"].default == 0.9
    assert inspect.signature(fit).parameters["optimizer"].default == "sgd"


def _momentum_per_step(optimizer, steps=10):
    schedule = train.make_schedule(optimizer, "onecycle", steps)
    group, seen = optimizer.param_groups[0], []
    for _ in range(steps):
        seen.append(round(group["betas"][0] if "betas" in group else group["momentum"], 6))
        optimizer.step()
        schedule.step()
    return seen


def test_one_cycle_cycles_the_momentum_0_05_either_side_of_the_requested_one():
    """Lessons say "Nesterov momentum 0.9": with one-cycle it goes 0.95 -> 0.85 (peak learning rate) -> 0.95."""
    sgd = _momentum_per_step(train.make_optimizer(Bias(), momentum=0.9))
    assert sgd[0] == 0.95 and min(sgd) == sgd[2] == 0.85 and sgd[-1] > 0.94  # the learning rate peaks at step 2
    assert train.make_optimizer(Bias()).param_groups[0]["nesterov"]
    assert max(_momentum_per_step(train.make_optimizer(Bias(), momentum=0.5))) == 0.55
    assert set(_momentum_per_step(train.make_optimizer(Bias(), momentum=0.0))) == {0.0}  # plain SGD stays plain
    assert _momentum_per_step(train.make_optimizer(Bias(), "adamw")) == sgd  # AdamW's beta1 0.9 alike
    torch_default, ours = train.make_optimizer(Bias()), train.make_optimizer(Bias())
    torch.optim.lr_scheduler.OneCycleLR(torch_default, max_lr=0.05, total_steps=10)
    train.make_schedule(ours, "onecycle", 10)
    assert ours.state_dict()["param_groups"] == torch_default.state_dict()["param_groups"]  # the default 0.9: torch's


def test_two_steps_of_fit_equal_a_hand_written_loop():
    """fit clears the gradients before each step: nothing accumulates from one batch to the next."""
    torch.manual_seed(0)
    batches = [(torch.randn(4, 3, 8, 8), torch.tensor([0, 1, 1, 0])) for _ in range(2)]
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2))
    by_hand = copy.deepcopy(model)
    fit(model, batches, epochs=1, lr=0.1, schedule="constant", progress=False, device="cpu")
    optimizer = torch.optim.SGD(by_hand.parameters(), lr=0.1, momentum=0.9, nesterov=True, weight_decay=5e-4)
    for x, y in batches:
        optimizer.zero_grad()
        nn.functional.cross_entropy(by_hand(x), y).backward()
        optimizer.step()
    for key, value in by_hand.state_dict().items():
        torch.testing.assert_close(model.state_dict()[key], value, msg=key)


def test_a_nan_loss_stops_training_with_the_epoch_and_step():
    images, labels = torch.randn(12, 3, 8, 8), torch.randint(0, 2, (12,))
    images[5] = float("nan")  # one bad image in the second batch
    batches = [(images[i:i + 4], labels[i:i + 4]) for i in range(0, 12, 4)]
    with pytest.raises(TrainingDiverged, match=r"epoch 1, at step 2 of 3 .*learning rate too high.*NaN/inf pixels"):
        fit(_toy_model(), batches, epochs=3, schedule="constant", progress=False, device="cpu")


@pytest.mark.parametrize(("setting", "value", "expected"), [
    ("lr", float("nan"), "lr=nan is not allowed: lr must be a finite number >= 0"),
    ("lr", -0.1, "lr=-0.1 is not allowed"),
    ("weight_decay", float("inf"), "weight_decay=inf is not allowed: weight_decay must be a finite number >= 0"),
    ("momentum", 1.0, "momentum=1.0 is not allowed: momentum must be a number from 0 up to (not including) 1"),
    ("momentum", -0.5, "momentum=-0.5 is not allowed"),
    ("label_smoothing", 1.5, "label_smoothing=1.5 is not allowed: label_smoothing must be a number from 0"),
    ("aux_weight", float("nan"), "aux_weight=nan is not allowed: aux_weight must be a finite number >= 0"),
    ("epochs", 0, "epochs=0 is not allowed: epochs must be a whole number >= 1"),
    ("epochs", 2.5, "epochs=2.5 is not allowed"),
    ("max_seconds", 0, "max_seconds=0 is not allowed: max_seconds must be a number of seconds > 0"),
    ("log_every", 0, "log_every=0 is not allowed"),
])
def test_settings_are_checked_before_anything_is_trained(setting, value, expected):
    model = _toy_model()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(ValueError, match=re.escape(expected)):
        fit(model, _loader(), **{setting: value}, progress=False, device="cpu")
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())


def test_the_host_reads_the_loss_only_every_log_every_steps(monkeypatch):
    reads = []
    for name in ("item", "tolist", "cpu", "numpy", "__float__", "__int__"):  # the ways to bring a value to the host
        real = getattr(torch.Tensor, name)
        monkeypatch.setattr(torch.Tensor, name,
                            lambda self, *args, real=real, name=name: reads.append(name) or real(self, *args))
    fit(_toy_model(), _loader(), epochs=1, log_every=4, progress=False, device="cpu")  # 8 steps
    assert reads == ["tolist", "tolist"]  # loss, main-head loss and accuracy, read together, twice


def test_fit_accepts_a_plain_dataloader():
    images, labels = _toy_data()
    dataset = torch.utils.data.TensorDataset(images.float() / 255, labels)
    loader = torch.utils.data.DataLoader(dataset, batch_size=32, shuffle=True)
    history = fit(_toy_model(), loader, loader, epochs=2, progress=False, device="cpu")
    assert history.epoch == [1, 2] and history.steps == [8, 8]


def test_evaluate_confusion_matrix():
    model = nn.Linear(2, 3, bias=False)
    model.weight.data = torch.eye(3, 2)  # predicts class 0 if x0 > x1 else 1; never class 2
    x = torch.tensor([[1.0, 0], [0, 1], [2, 0], [0, 3]])
    y = torch.tensor([0, 1, 1, 2])
    result = evaluate(model, [(x, y)])
    assert result["confusion"].tolist() == [[1, 0, 0], [1, 1, 0], [0, 1, 0]]
    assert result["accuracy"] == 0.5 and result["per_class_accuracy"] == [1.0, 0.5, 0.0]


def test_evaluate_restores_train_mode_and_averages_the_loss():
    model = nn.Linear(2, 3)
    model.train()
    x, y = torch.randn(6, 2), torch.tensor([0, 1, 2, 0, 1, 2])
    result = evaluate(model, [(x[:4], y[:4]), (x[4:], y[4:])])
    assert model.training
    expected = nn.functional.cross_entropy(model(x), y).item()  # mean over all 6 examples
    assert result["loss"] == pytest.approx(expected, rel=1e-6)
    assert result["predictions"].tolist() == model(x).argmax(1).tolist() and result["labels"].tolist() == y.tolist()


def test_evaluate_refuses_an_empty_loader_and_leaves_absent_classes_unknown():
    with pytest.raises(ValueError, match="empty loader"):
        evaluate(nn.Linear(2, 3), [])
    model = nn.Linear(2, 3, bias=False)
    model.weight.data = torch.eye(3, 2)
    result = evaluate(model, [(torch.tensor([[1.0, 0], [0, 1]]), torch.tensor([0, 1]))])
    assert result["per_class_accuracy"][:2] == [1.0, 1.0] and math.isnan(result["per_class_accuracy"][2])


def test_time_budget_stops_training(monkeypatch):
    monkeypatch.setattr(train, "_clock", FakeClock())
    history = fit(_toy_model(), _loader(), epochs=50, max_seconds=5, progress=False, device="cpu")
    # each step reads the clock once: the budget of 5 "seconds" ends epoch 1 after 4 of its 8 steps
    assert history.epoch == [1] and history.steps == [4] and history.complete == [False]


def test_after_the_first_epoch_fit_forecasts_the_rest_once(monkeypatch, capsys):
    monkeypatch.setattr(train, "_clock", FakeClock())
    monkeypatch.setattr(torch, "compile", lambda model, mode=None: model)  # the time, not the compiler, is tested
    test = [(torch.randn(4, 3, 8, 8), torch.tensor([0, 1, 0, 1]))]
    fit(_toy_model(), _loader(), test, epochs=3, compile=True, device="cpu")
    # clock reads in epoch 1: start 1, after the first step 2, end 3, evaluation 4 to 5. So 2 s for 8 steps, of
    # which the first took 1 s, the 7 others 1 s; evaluation 1 s. Each further epoch: 8/7 + 1 s, 2 to go.
    assert capsys.readouterr().out.splitlines()[-1] == (
        "epoch 1 took 3.0 s (first step 1.0 s, with compilation; evaluation 1.0 s); 2 epochs to go: about 4 s")
    fit(_toy_model(), _loader(), epochs=30, max_seconds=40, device="cpu")
    # with a budget the clock is also read after every step: 10 s for epoch 1, 9/7 s per further step
    assert capsys.readouterr().out == ("epoch 1 took 10.0 s (first step 1.0 s); 29 epochs to go: about 5 min, but "
                                       "the time budget (max_seconds=40) stops training after 30 s more\n")
    fit(_toy_model(), _loader(), epochs=3, progress=False, device="cpu")
    fit(_toy_model(), _loader(), epochs=1, device="cpu")
    assert capsys.readouterr().out == ""  # no progress wanted, or nothing left to forecast


def test_the_first_compiled_step_shows_its_seconds(monkeypatch, capsys):
    monkeypatch.setattr(torch, "compile", lambda model, mode=None: model)
    fit(_toy_model(), _loader(), epochs=2, compile=True, progress=False, device="cpu")
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1 and re.fullmatch(r"compiling the model \(torch\.compile\): \d+\.\d s", lines[0])
    fit(_toy_model(), _loader(), epochs=2, progress=False, device="cpu")
    assert capsys.readouterr().err == ""  # not compiled: nothing to wait for


def test_a_budget_cut_epoch_resumes_exactly_and_rerunning_changes_nothing(tmp_path, monkeypatch):
    seed_everything(0)
    straight = _toy_model()
    initial = {k: v.clone() for k, v in straight.state_dict().items()}
    fit(straight, _loader(), epochs=2, progress=False, device="cpu")

    monkeypatch.setattr(train, "_clock", FakeClock())
    path = tmp_path / "run.pt"
    cut = _toy_model()
    cut.load_state_dict(initial)
    first = fit(cut, _loader(), epochs=2, max_seconds=5, checkpoint=path, progress=False, device="cpu")
    assert first.steps == [4] and first.complete == [False]
    again = fit(_toy_model(), _loader(), epochs=2, max_seconds=5, checkpoint=path, resume=True, progress=False,
                device="cpu")
    assert again.as_dict() == first.as_dict()  # the budget is spent: re-running the cell trains nothing

    torch.manual_seed(99)
    resumed = _toy_model()
    history = fit(resumed, _loader(), epochs=2, checkpoint=path, resume=True, progress=False, device="cpu")
    assert history.epoch == [1, 2] and history.steps == [8, 8] and history.complete == [True, True]
    for key, value in straight.state_dict().items():
        assert torch.equal(value, resumed.state_dict()[key]), key


def test_resuming_with_more_epochs_is_refused_for_a_sized_schedule(tmp_path):
    path = tmp_path / "run.pt"
    fit(_toy_model(), _loader(), epochs=1, checkpoint=path, progress=False, device="cpu")
    with pytest.raises(CheckpointError, match=r"(?s)onecycle schedule over 8 steps.*cannot be stretched"):
        fit(_toy_model(), _loader(), epochs=3, checkpoint=path, resume=True, progress=False, device="cpu")
    constant = tmp_path / "constant.pt"
    fit(_toy_model(), _loader(), epochs=1, schedule="constant", checkpoint=constant, progress=False, device="cpu")
    longer = fit(_toy_model(), _loader(), epochs=3, schedule="constant", checkpoint=constant, resume=True,
                 progress=False, device="cpu")
    assert longer.epoch == [1, 2, 3]


def test_unreadable_checkpoints_get_a_clear_error(tmp_path):
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"this is not a checkpoint" * 10)
    with pytest.raises(CheckpointError, match=r"garbage\.pt cannot be read as a checkpoint") as caught:
        load_checkpoint(garbage, _toy_model())
    assert "weights_only" not in str(caught.value)
    good = tmp_path / "good.pt"
    save_checkpoint(good, _toy_model(), epoch=1)
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(CheckpointError, match=r"truncated\.pt .*interrupted save"):
        load_checkpoint(truncated, _toy_model())


def test_an_interrupted_save_keeps_the_last_good_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "run.pt"
    save_checkpoint(path, _toy_model(), epoch=1)

    def dies_half_way(obj, f):
        pathlib.Path(f).write_bytes(b"PK\x03\x04 half a file")
        raise KeyboardInterrupt  # Ctrl-C, a disconnect or a full disk in the middle of writing

    monkeypatch.setattr(torch, "save", dies_half_way)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(path, _toy_model(), epoch=2)
    monkeypatch.undo()
    assert load_checkpoint(path, _toy_model(), restore_rng=False)["epoch"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["run.pt"]  # no temporary file left behind


@pytest.mark.parametrize("failure", [OSError(errno.ENOSPC, "No space left on device"),
                                     RuntimeError("PytorchStreamWriter failed writing file data/0: file write failed")])
def test_a_failed_write_keeps_the_last_good_checkpoint_and_says_so(tmp_path, monkeypatch, failure):
    path = tmp_path / "run.pt"
    fit(_toy_model(), _loader(), epochs=1, schedule="constant", checkpoint=path, progress=False, device="cpu")
    real_save = torch.save

    def disk_full_half_way(obj, f):
        real_save(obj, f)
        pathlib.Path(f).write_bytes(pathlib.Path(f).read_bytes()[:1000])  # part of the file was written
        raise failure

    monkeypatch.setattr(torch, "save", disk_full_half_way)
    with pytest.raises(OSError, match=r"run\.pt could not be saved: .*(No space left|write failed).*is kept") as caught:
        fit(_toy_model(), _loader(), epochs=2, schedule="constant", checkpoint=path, resume=True, progress=False,
            device="cpu")
    monkeypatch.undo()
    assert caught.value.errno == (errno.ENOSPC if isinstance(failure, OSError) else None)
    assert load_checkpoint(path, _toy_model(), restore_rng=False)["epoch"] == 1  # the last good one
    assert [p.name for p in tmp_path.iterdir()] == ["run.pt"]


def test_an_existing_checkpoint_is_never_overwritten_unasked(tmp_path):
    path = tmp_path / "run.pt"
    fit(_toy_model(), _loader(), epochs=1, checkpoint=path, progress=False, device="cpu")
    saved = path.read_bytes()
    with pytest.raises(FileExistsError, match=r"run\.pt already holds a checkpoint.*resume=True.*overwrite=True"):
        fit(_toy_model(), _loader(), epochs=1, checkpoint=path, progress=False, device="cpu")
    assert path.read_bytes() == saved  # yesterday's training is still there
    with pytest.raises(ValueError, match="choose one"):
        fit(_toy_model(), _loader(), epochs=1, checkpoint=path, resume=True, overwrite=True, progress=False,
            device="cpu")
    with pytest.raises(ValueError, match="resume=True needs checkpoint="):
        fit(_toy_model(), _loader(), epochs=1, resume=True, progress=False, device="cpu")
    again = fit(_toy_model(), _loader(), epochs=2, checkpoint=path, overwrite=True, progress=False, device="cpu")
    assert again.epoch == [1, 2] and load_checkpoint(path, _toy_model(), restore_rng=False)["epoch"] == 2


def test_resume_without_a_checkpoint_starts_a_new_run_and_says_so(tmp_path, capsys):
    seed_everything(0)
    model = _toy_model()
    initial = {k: v.clone() for k, v in model.state_dict().items()}
    path = tmp_path / "new.pt"
    history = fit(model, _loader(), epochs=2, checkpoint=path, resume=True, progress=False, device="cpu")
    said = capsys.readouterr().out
    assert said == f"no checkpoint at {path} yet: starting a new run (saved there after every epoch)\n"
    plain = _toy_model()
    plain.load_state_dict(initial)
    assert fit(plain, _loader(), epochs=2, progress=False, device="cpu").train_loss == history.train_loss
    for key, value in plain.state_dict().items():
        assert torch.equal(value, model.state_dict()[key]), key  # the same run as one without a checkpoint

    # the next run of the same cell continues it: here it has nothing left to train, and loads the weights
    fresh = _toy_model()
    again = fit(fresh, _loader(), epochs=2, checkpoint=path, resume=True, progress=False, device="cpu")
    assert capsys.readouterr().out == f"the run in {path} has finished its 2 epochs: nothing to train\n"
    assert again.as_dict() == history.as_dict()
    for key, value in model.state_dict().items():
        assert torch.equal(value, fresh.state_dict()[key]), key
    with pytest.raises(CheckpointMismatchError, match="same options"):  # a different run: the clear error
        fit(GoogLeNet(num_classes=2, stem="cifar", width=0.125), _loader(), epochs=2, checkpoint=path, resume=True,
            progress=False, device="cpu")


class InterruptingLoader:
    """Wraps a loader and raises KeyboardInterrupt (Ctrl-C, Colab's stop button) before batch ``at_batch``
    (counted over all epochs, from 0)."""

    def __init__(self, loader, at_batch):
        self.loader, self.at_batch, self.batches = loader, at_batch, 0
        self.generator = loader.generator

    def __len__(self):
        return len(self.loader)

    def __iter__(self):
        for batch in self.loader:
            if self.batches == self.at_batch:
                raise KeyboardInterrupt
            self.batches += 1
            yield batch


def _batch_norm_model():
    """The toy model with batch norm, whose running statistics change in the forward pass."""
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.Dropout(0.2),
                         nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(32, 2))


def _straight_run(epochs=3, test_loader=None, make_model=_toy_model):
    """An uninterrupted run from the weights a seeded model starts with: (model, history, initial weights)."""
    seed_everything(0)
    model = make_model()
    initial = {k: v.clone() for k, v in model.state_dict().items()}
    history = fit(model, _loader(), test_loader, epochs=epochs, progress=False, device="cpu")
    return model, history, initial


def _assert_same_run(model, history, expected_model, expected_history):
    for key, value in expected_model.state_dict().items():
        assert torch.equal(value, model.state_dict()[key]), key
    for key in ("epoch", "train_loss", "train_acc", "test_loss", "test_acc", "steps", "lr", "complete"):
        assert getattr(history, key) == getattr(expected_history, key), key


def test_an_interrupted_run_saves_its_steps_and_resumes_exactly(tmp_path, capsys):
    straight, expected, initial = _straight_run()
    path = tmp_path / "run.pt"
    interrupted = _toy_model()
    interrupted.load_state_dict(initial)
    with pytest.raises(KeyboardInterrupt):  # Ctrl-C after 3 steps of epoch 2
        fit(interrupted, InterruptingLoader(_loader(), at_batch=8 + 3), epochs=3, checkpoint=path, progress=False,
            device="cpu")
    assert capsys.readouterr().out == (f"training interrupted in epoch 2 after 3 of 8 steps: saved in {path}; "
                                       "run again with resume=True (command line: --resume) to continue\n")
    saved = load_checkpoint(path, _toy_model(), restore_rng=False)
    assert (saved["epoch"], saved["step"], saved["history"]["epoch"]) == (1, 3, [1])
    torch.manual_seed(1234)  # a fresh session
    resumed = _toy_model()
    history = fit(resumed, _loader(), epochs=3, checkpoint=path, resume=True, progress=False, device="cpu")
    _assert_same_run(resumed, history, straight, expected)


def test_a_run_interrupted_during_evaluation_resumes_exactly(tmp_path):
    batches = [(torch.randn(16, 3, 8, 8), torch.randint(0, 2, (16,))) for _ in range(2)]

    class InterruptedOnce(list):
        interrupted = False

        def __iter__(self):
            if not self.interrupted:
                self.interrupted = True
                raise KeyboardInterrupt
            return super().__iter__()

    straight, expected, initial = _straight_run(epochs=2, test_loader=batches)
    path = tmp_path / "run.pt"
    interrupted = _toy_model()
    interrupted.load_state_dict(initial)
    with pytest.raises(KeyboardInterrupt):  # during the evaluation after epoch 1
        fit(interrupted, _loader(), InterruptedOnce(batches), epochs=2, checkpoint=path, progress=False,
            device="cpu")
    assert load_checkpoint(path, _toy_model(), restore_rng=False)["step"] == 8
    resumed = _toy_model()
    history = fit(resumed, _loader(), batches, epochs=2, checkpoint=path, resume=True, device="cpu")  # progress on
    _assert_same_run(resumed, history, straight, expected)


@pytest.mark.parametrize("when", ["during", "after"])
def test_a_run_interrupted_while_saving_an_epoch_keeps_that_epoch(tmp_path, monkeypatch, capsys, when):
    """Ctrl-C during the end-of-epoch save (the file was not replaced yet) or just after it."""
    straight, expected, initial = _straight_run(epochs=2)
    real_save, calls = train.save_checkpoint, []

    def interrupted_save(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1 and when == "during":
            raise KeyboardInterrupt
        real_save(*args, **kwargs)
        if len(calls) == 1:
            raise KeyboardInterrupt

    monkeypatch.setattr(train, "save_checkpoint", interrupted_save)
    path = tmp_path / "run.pt"
    interrupted = _toy_model()
    interrupted.load_state_dict(initial)
    with pytest.raises(KeyboardInterrupt):
        fit(interrupted, _loader(), epochs=2, checkpoint=path, progress=False, device="cpu")
    monkeypatch.undo()
    assert capsys.readouterr().out == (f"training interrupted after epoch 1: saved in {path}; run again with "
                                       "resume=True (command line: --resume) to continue\n")
    saved = load_checkpoint(path, _toy_model(), restore_rng=False)
    assert (saved["epoch"], saved["step"], saved["history"]["epoch"]) == (1, 0, [1])
    resumed = _toy_model()
    history = fit(resumed, _loader(), epochs=2, checkpoint=path, resume=True, progress=False, device="cpu")
    _assert_same_run(resumed, history, straight, expected)


def _signals_reach_this_thread():
    return (threading.current_thread() is threading.main_thread()
            and signal.getsignal(signal.SIGINT) is signal.default_int_handler)


@pytest.mark.skipif(not _signals_reach_this_thread(), reason="Ctrl-C (SIGINT) reaches only the main thread")
@pytest.mark.parametrize("where", ["forward", "optimizer step"])
def test_a_real_ctrl_c_saves_whole_steps_and_resumes_exactly(tmp_path, monkeypatch, where):
    """SIGINT in the forward pass (after dropout drew its random numbers and batch norm updated its running
    statistics) or in the middle of the optimizer's update: the checkpoint holds whole steps only."""
    straight, expected, initial = _straight_run(epochs=2, make_model=_batch_norm_model)
    calls = {"n": 0}

    def ctrl_c_at_the_tenth_call(original, before):
        def wrapped(*args, **kwargs):
            calls["n"] += 1
            if calls["n"] == 10 and before:
                signal.raise_signal(signal.SIGINT)  # just before the update
            result = original(*args, **kwargs)
            if calls["n"] == 10 and not before:
                signal.raise_signal(signal.SIGINT)  # after the forward pass drew its dropout masks
            return result
        return wrapped

    interrupted = _batch_norm_model()
    interrupted.load_state_dict(initial)
    if where == "forward":
        monkeypatch.setattr(interrupted, "forward", ctrl_c_at_the_tenth_call(interrupted.forward, before=False))
    else:
        monkeypatch.setattr(torch.optim.SGD, "step", ctrl_c_at_the_tenth_call(torch.optim.SGD.step, before=True))
    path = tmp_path / "run.pt"
    with pytest.raises(KeyboardInterrupt):
        fit(interrupted, _loader(), epochs=2, checkpoint=path, progress=False, device="cpu")
    monkeypatch.undo()
    # in the forward pass of step 10 that step is lost; in its update the update completes first
    assert load_checkpoint(path, _batch_norm_model(), restore_rng=False)["step"] == (1 if where == "forward" else 2)
    resumed = _batch_norm_model()
    history = fit(resumed, _loader(), epochs=2, checkpoint=path, resume=True, progress=False, device="cpu")
    _assert_same_run(resumed, history, straight, expected)


def test_a_checkpoint_saved_before_the_main_head_loss_was_recorded_still_resumes(tmp_path):
    path = tmp_path / "old.pt"
    fit(_toy_model(), _loader(), epochs=1, schedule="constant", checkpoint=path, progress=False, device="cpu")
    state = torch.load(path, weights_only=True)
    del state["history"]["train_main_loss"]  # as an older version of fit saved it
    torch.save(state, path)
    history = fit(_toy_model(), _loader(), epochs=2, schedule="constant", checkpoint=path, resume=True,
                  progress=False, device="cpu")
    assert history.epoch == [1, 2] and history.train_main_loss[0] is None
    assert history.train_main_loss[1] == pytest.approx(history.train_loss[1])
    assert train.History.from_dict({"epoch": [1], "train_loss": [0.5]}).train_main_loss == [None]


def test_every_name_the_lessons_import_from_utils_train_is_still_there():
    """Checkpoints live in utils.checkpoint and the command line in utils.cli; lessons keep importing from here."""
    names = ["build_parser", "evaluate", "fit", "load_checkpoint", "resolve_precision", "seed_everything",
             "get_device", "save_checkpoint", "History", "TrainingDiverged", "CheckpointError",
             "CheckpointMismatchError", "classification_loss", "make_optimizer", "make_schedule"]
    assert [name for name in names if not hasattr(train, name)] == []
    assert train.load_checkpoint.__module__ == "utils.checkpoint" and train.build_parser.__module__ == "utils.cli"


def test_one_cycle_cycles_the_momentum_only_within_0_to_1():
    """The range [momentum - 0.05, momentum + 0.05] must lie in [0, 1): 0.05 just fits (0 -> 0.1), 0.95 does not
    (1.0 is no momentum SGD or AdamW can use), so 0.95 stays constant."""
    low_edge = _momentum_per_step(train.make_optimizer(Bias(), momentum=0.05))
    assert low_edge[0] == 0.1 and min(low_edge) == low_edge[2] == 0.0
    assert set(_momentum_per_step(train.make_optimizer(Bias(), momentum=0.95))) == {0.95}


def test_cosine_anneals_from_lr_to_zero_over_the_steps_and_leaves_the_momentum_alone():
    """CosineAnnealingLR without restarts: lr_t = lr (1 + cos(pi t / T)) / 2, from lr at t = 0 to 0 at t = T."""
    optimizer = train.make_optimizer(Bias(), lr=0.05)
    schedule = train.make_schedule(optimizer, "cosine", 4)
    seen = []
    for _ in range(5):
        seen.append((optimizer.param_groups[0]["lr"], optimizer.param_groups[0]["momentum"]))
        optimizer.step()
        schedule.step()
    by_hand = [0.05 * (1 + math.cos(math.pi * t / 4)) / 2 for t in range(5)]  # 0.05, 0.0427, 0.025, 0.0073, 0
    assert [lr for lr, _ in seen] == pytest.approx(by_hand, abs=1e-12)
    assert {momentum for _, momentum in seen} == {0.9}
    with pytest.raises(ValueError, match=r"^schedule must be 'onecycle', 'cosine' or 'constant', got 'linear'\.$"):
        train.make_schedule(optimizer, "linear", 4)


@pytest.mark.parametrize("steps", [1, 7])
def test_a_schedule_spans_exactly_the_steps_of_the_run(steps):
    """Its peak (one-cycle) and its end (both) sit where the run's steps put them; no steps still build one."""
    assert train.make_schedule(train.make_optimizer(Bias()), "onecycle", steps).total_steps == steps
    assert train.make_schedule(train.make_optimizer(Bias()), "cosine", steps).T_max == steps
    assert train.make_schedule(train.make_optimizer(Bias()), "onecycle", 0).total_steps == 1
    assert train.make_schedule(train.make_optimizer(Bias()), "cosine", 0).T_max == 1


def test_make_optimizer_builds_sgd_or_adamw_with_the_given_settings_foreach_on_a_cpu():
    """Only the trainable parameters are optimized; every setting reaches torch's optimizer, and on a CPU it is the
    foreach implementation, never the fused one (kept for a GPU). AdamW gets the weight decay asked for, not its
    own default 0.01, and its own betas (0.9, 0.999)."""
    model = nn.Sequential(nn.Linear(2, 3), nn.Linear(3, 2))
    model[0].requires_grad_(False)
    sgd = train.make_optimizer(model, lr=0.2, weight_decay=1e-3, momentum=0.8)
    group = sgd.param_groups[0]
    assert [id(p) for p in group["params"]] == [id(model[1].weight), id(model[1].bias)]
    assert type(sgd) is torch.optim.SGD and len(sgd.param_groups) == 1
    assert (group["lr"], group["weight_decay"], group["momentum"], group["nesterov"]) == (0.2, 1e-3, 0.8, True)
    assert group["foreach"] is True and not group["fused"]
    plain = train.make_optimizer(model, momentum=0.0).param_groups[0]
    assert (plain["momentum"], plain["nesterov"]) == (0.0, False)
    adamw = train.make_optimizer(model, "adamw", lr=0.3, weight_decay=2e-3)
    group = adamw.param_groups[0]
    assert type(adamw) is torch.optim.AdamW and [id(p) for p in group["params"]] == [id(model[1].weight),
                                                                                     id(model[1].bias)]
    assert (group["lr"], group["weight_decay"], group["betas"]) == (0.3, 2e-3, (0.9, 0.999))
    assert group["foreach"] is True and not group["fused"]
    assert train.make_optimizer(Bias(), "adamw").param_groups[0]["weight_decay"] == 5e-4
    assert train.make_optimizer(Bias()).param_groups[0]["lr"] == 0.05  # the lessons' default learning rate
    with pytest.raises(ValueError, match="empty parameter list"):  # torch's own refusal, whatever the device
        train.make_optimizer(nn.Linear(2, 2).requires_grad_(False))
    with pytest.raises(ValueError, match=r"^optimizer must be 'sgd' or 'adamw', got 'adam'\.$"):
        train.make_optimizer(model, "adam")


class _CudaLooking:
    """A stand-in for a parameter on a GPU: make_optimizer reads only requires_grad and is_cuda."""
    requires_grad, is_cuda = True, True


@pytest.mark.parametrize("name, optimizer", [("sgd", "SGD"), ("adamw", "AdamW")])
@pytest.mark.parametrize("refusal", [None, TypeError, RuntimeError, ValueError])
def test_make_optimizer_asks_for_the_fused_version_on_a_gpu_and_falls_back_to_foreach(monkeypatch, name, optimizer,
                                                                                     refusal):
    """GPU-only branch, faked on a CPU: parameters that say they are on CUDA, and torch's optimizer replaced by
    a recorder. make_optimizer asks for fused=True first; a torch that refuses it (TypeError for an unknown
    argument, RuntimeError or ValueError for an unsupported device or dtype) gets foreach=True instead."""
    calls = []

    def recorder(params, **settings):
        calls.append(settings)
        if refusal is not None and settings.get("fused"):
            raise refusal("no fused version here")
        return settings

    monkeypatch.setattr(torch.optim, optimizer, recorder)
    model = nn.Module()
    model.parameters = lambda: iter([_CudaLooking()])
    made = train.make_optimizer(model, name)
    expected = [{"fused": True}] + ([] if refusal is None else [{"foreach": True}])
    assert [{k: v for k, v in call.items() if k in ("fused", "foreach")} for call in calls] == expected
    assert made is calls[-1]
