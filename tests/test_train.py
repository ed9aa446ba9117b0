"""The training loop: it learns, it resumes exactly, it refuses foreign checkpoints."""
import pytest
import torch
from torch import nn

from utils.data import DeviceLoader
from utils.models import GoogLeNet
from utils.train import (CheckpointMismatchError, classification_loss, evaluate, fit, load_checkpoint,
                         save_checkpoint, seed_everything)


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


def _loader(seed=0, augment=True):
    images, labels = _toy_data()
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
    history = fit(model, _loader(augment=False), _loader(augment=False), epochs=6, lr=0.05, progress=False,
                  device="cpu")
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
    with pytest.raises(CheckpointMismatchError, match="not a course checkpoint"):
        load_checkpoint(tmp_path / "other.pt", _toy_model())


def test_auxiliary_loss_weight():
    torch.manual_seed(0)
    y = torch.randint(0, 5, (8,))
    main, aux1, aux2 = torch.randn(3, 8, 5).unbind(0)
    loss, logits = classification_loss((main, aux1, aux2), y)
    ce = nn.functional.cross_entropy
    torch.testing.assert_close(loss, ce(main, y) + 0.3 * ce(aux1, y) + 0.3 * ce(aux2, y))
    assert logits is main


def test_googlenet_with_aux_heads_trains_one_step():
    seed_everything(0)
    model = GoogLeNet(num_classes=10, stem="cifar", width=0.125, batch_norm=True)
    images = torch.randint(0, 256, (4, 3, 32, 32), dtype=torch.uint8)
    loader = DeviceLoader(images, torch.arange(4), batch_size=2)
    history = fit(model, loader, loader, epochs=1, progress=False, device="cpu")
    assert history.train_loss[0] > 0 and history.test_acc[0] is not None


def test_bf16_and_channels_last_paths_run():
    seed_everything(0)
    history = fit(_toy_model(), _loader(), _loader(), epochs=1, progress=False, device="cpu", bf16=True,
                  channels_last=True)
    assert history.train_loss[0] > 0


def test_evaluate_confusion_matrix():
    model = nn.Linear(2, 3, bias=False)
    model.weight.data = torch.eye(3, 2)  # predicts class 0 if x0 > x1 else 1; never class 2
    x = torch.tensor([[1.0, 0], [0, 1], [2, 0], [0, 3]])
    y = torch.tensor([0, 1, 1, 2])
    result = evaluate(model, [(x, y)])
    assert result["confusion"].tolist() == [[1, 0, 0], [1, 1, 0], [0, 1, 0]]
    assert result["accuracy"] == 0.5 and result["per_class_accuracy"] == [1.0, 0.5, 0.0]


def test_time_budget_stops_training():
    model = _toy_model()
    history = fit(model, _loader(), epochs=50, max_seconds=0.2, progress=False, device="cpu")
    assert len(history.epoch) < 50 and sum(history.seconds) < 5
