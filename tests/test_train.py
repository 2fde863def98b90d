import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from course_utils import config, train


def _blobs(n=256, seed=0):
    """Two well-separated Gaussian blobs: any working loop gets them right."""
    generator = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, 2, (n,), generator=generator)
    inputs = torch.randn(n, 2, generator=generator) + labels[:, None].float() * 4.0 - 2.0
    return TensorDataset(inputs, labels)


def _loader(seed=0, shuffle=True):
    return DataLoader(_blobs(seed=seed), batch_size=32, shuffle=shuffle,
                      generator=torch.Generator().manual_seed(0))


class Tiny(nn.Module):
    def __init__(self, width=8):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(2, width), nn.ReLU(), nn.Linear(width, 2))

    def forward(self, x):
        return self.net(x)


def test_accuracy_counts_argmax_matches():
    logits = torch.tensor([[2.0, 0.0], [0.0, 1.0], [3.0, 1.0], [0.0, 5.0]])
    assert train.accuracy(logits, torch.tensor([0, 1, 1, 1])) == pytest.approx(0.75)


def test_accuracy_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match=r"expected logits \(N, C\) and targets \(N,\), got \(3, 2\) and \(4,\)"):
        train.accuracy(torch.zeros(3, 2), torch.zeros(4, dtype=torch.long))


def test_fit_learns_and_records_history():
    torch.manual_seed(0)
    model = Tiny()
    history = train.fit(model, _loader(), _loader(1, shuffle=False), epochs=3,
                        optimizer=torch.optim.Adam(model.parameters(), lr=0.05), device="cpu", progress=False)
    assert history["epoch"] == [1, 2, 3]
    assert set(history) >= {"train_loss", "train_accuracy", "val_loss", "val_accuracy", "seconds"}
    assert history["train_loss"][-1] < history["train_loss"][0]
    assert history["val_accuracy"][-1] > 0.95


def test_fit_with_amp_scheduler_and_step_cap(capsys):
    torch.manual_seed(0)
    model = Tiny()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.5)
    history = train.fit(model, _loader(), epochs=1, optimizer=optimizer, scheduler=scheduler, amp=True,
                        device="cpu", max_steps_per_epoch=3)
    assert scheduler.last_epoch == 3  # stepped once per batch, and only 3 batches ran
    assert "val_loss" not in history
    assert "epoch 1" in capsys.readouterr().out


def test_fit_rejects_bad_epochs():
    model = Tiny()
    with pytest.raises(ValueError, match="epochs must be a positive int, got 0"):
        train.fit(model, _loader(), epochs=0, optimizer=torch.optim.SGD(model.parameters(), lr=0.1))


def test_evaluate_matches_manual_computation():
    torch.manual_seed(0)
    model = Tiny()
    loader = _loader(shuffle=False)
    metrics = train.evaluate(model, loader, nn.CrossEntropyLoss(), device="cpu")
    inputs, targets = _blobs().tensors
    with torch.no_grad():
        logits = model(inputs)
    assert metrics["accuracy"] == pytest.approx(train.accuracy(logits, targets))
    assert metrics["loss"] == pytest.approx(nn.CrossEntropyLoss()(logits, targets).item(), rel=1e-5)
    assert set(train.evaluate(model, loader, max_batches=1, device="cpu")) == {"accuracy"}


def test_evaluate_on_empty_loader_is_an_error():
    with pytest.raises(ValueError, match="no batches"):
        train.evaluate(Tiny(), DataLoader(TensorDataset(torch.zeros(0, 2), torch.zeros(0).long())), device="cpu")


def test_device_moves_nested_batches():
    batch = {"a": torch.zeros(1), "b": [torch.ones(1), (torch.ones(2),)], "c": "text"}
    moved = train._to(batch, torch.device("cpu"))
    assert moved["c"] == "text" and torch.equal(moved["b"][1][0], torch.ones(2))


def test_checkpoint_round_trip_keeps_metrics_history_and_source(isolated_repo):
    model = Tiny()
    path = train.save_checkpoint("tiny", model, config_used={"width": 8}, metrics={"acc": 0.9},
                                 history={"train_loss": [1.0, 0.5]})
    assert path.parent == isolated_repo / "data" / "checkpoints"
    restored = Tiny()
    info = train.load_checkpoint("tiny", restored, {"width": 8})
    for a, b in zip(model.parameters(), restored.parameters()):
        assert torch.equal(a, b)
    assert info["metrics"] == {"acc": 0.9}
    assert info["history"]["train_loss"] == [1.0, 0.5]
    assert "class Tiny" in info["model_source"]
    # Loading must work with the safe unpickler only.
    torch.load(path, weights_only=True)


def test_half_checkpoint_stores_float16_and_loads_back_as_float32(isolated_repo):
    model = Tiny()
    model.register_buffer("steps", torch.tensor(7))  # integer buffers must stay exact
    path = train.save_checkpoint("tiny_half", model, config_used={}, metrics={"acc": 1.0}, half=True)
    saved = torch.load(path, weights_only=True)["state_dict"]
    assert all(v.dtype == torch.float16 for k, v in saved.items() if k != "steps")
    assert saved["steps"].dtype == torch.int64
    restored = Tiny()
    restored.register_buffer("steps", torch.tensor(0))
    train.load_checkpoint("tiny_half", restored)
    for a, b in zip(model.parameters(), restored.parameters()):
        assert b.dtype == torch.float32
        torch.testing.assert_close(a, b, atol=1e-3, rtol=1e-3)
    assert restored.steps.item() == 7


def test_checkpoint_mismatch_is_a_clear_error(isolated_repo):
    train.save_checkpoint("tiny", Tiny(8), config_used={"width": 8}, metrics={"acc": 0.9})
    with pytest.raises(train.CheckpointMismatchError, match=r"shape of net.0.weight: checkpoint \(8, 2\)"):
        train.load_checkpoint("tiny", Tiny(16))
    with pytest.raises(train.CheckpointMismatchError, match="config: checkpoint has"):
        train.load_checkpoint("tiny", Tiny(8), {"width": 9})
    with pytest.raises(train.CheckpointMismatchError, match="model class"):
        train.load_checkpoint("tiny", nn.Sequential(nn.Linear(2, 8), nn.ReLU(), nn.Linear(8, 2)))


def test_checkpoint_missing_keys_reported(isolated_repo):
    class Wider(Tiny):
        def __init__(self):
            super().__init__()
            self.extra = nn.Linear(2, 2)
    Wider.__qualname__ = "Tiny"  # same class name, different parameters
    train.save_checkpoint("tiny", Tiny(), config_used={}, metrics={})
    with pytest.raises(train.CheckpointMismatchError, match="missing \\['extra.bias', 'extra.weight'\\]"):
        train.load_checkpoint("tiny", Wider())


def test_checkpoint_names_are_plain_stems(isolated_repo):
    for bad in ("", "../x", "a/b", ".hidden"):
        with pytest.raises(ValueError, match="plain file stem"):
            train.checkpoint_path(bad)
    with pytest.raises(FileNotFoundError, match="run the notebook in full mode"):
        train.load_checkpoint("absent", Tiny())


def _train_fn(calls):
    def run(model):
        calls.append(model)
        with torch.no_grad():
            for p in model.parameters():
                p.add_(1.0)
        return {"metrics": {"acc": 0.5}, "history": {"train_loss": [0.7]}}
    return run


def test_train_or_load_full_mode_trains_and_saves(isolated_repo, capsys):
    calls = []
    outcome = train.train_or_load("tiny", Tiny(), _train_fn(calls), config_used={"w": 8})
    assert outcome["source"] == "trained" and len(calls) == 1
    assert (isolated_repo / "data" / "checkpoints" / "tiny.pt").exists()
    assert "Saved checkpoint tiny.pt" in capsys.readouterr().out


def test_train_or_load_fast_mode_smoke_trains_a_copy_then_loads(isolated_repo, monkeypatch):
    trained = Tiny()
    train.train_or_load("tiny", trained, _train_fn([]), config_used={"w": 8})
    monkeypatch.setenv("COURSE_FAST", "1")
    calls, fresh = [], Tiny()
    outcome = train.train_or_load("tiny", fresh, _train_fn(calls), config_used={"w": 8})
    assert outcome["source"] == "checkpoint" and outcome["metrics"] == {"acc": 0.5}
    assert len(calls) == 1 and calls[0] is not fresh  # the smoke run used a copy
    for a, b in zip(trained.parameters(), fresh.parameters()):
        assert torch.equal(a, b)


def test_train_or_load_fast_mode_without_checkpoint_never_saves(isolated_repo, monkeypatch):
    monkeypatch.setenv("COURSE_FAST", "1")
    outcome = train.train_or_load("tiny", Tiny(), _train_fn([]), config_used={})
    assert outcome["source"] == "smoke"
    assert not (isolated_repo / "data" / "checkpoints" / "tiny.pt").exists()


def test_train_or_load_use_checkpoints_and_retrain(isolated_repo, monkeypatch):
    train.train_or_load("tiny", Tiny(), _train_fn([]), config_used={})
    monkeypatch.setenv("COURSE_USE_CHECKPOINTS", "1")
    calls = []
    assert train.train_or_load("tiny", Tiny(), _train_fn(calls), config_used={})["source"] == "checkpoint"
    assert calls == []  # full mode with checkpoints: no training at all
    monkeypatch.setenv("COURSE_RETRAIN", "1")
    assert train.train_or_load("tiny", Tiny(), _train_fn(calls), config_used={})["source"] == "trained"


def test_train_or_load_requires_metrics(isolated_repo):
    with pytest.raises(TypeError, match="must return a dict with 'metrics'"):
        train.train_or_load("tiny", Tiny(), lambda model: None, config_used={})


def test_checkpoints_dir_is_in_the_repo(isolated_repo):
    assert config.checkpoints_dir() == isolated_repo / "data" / "checkpoints"


def test_fit_accepts_dict_targets_and_records_no_accuracy_for_them():
    class TwoHeads(nn.Module):
        def __init__(self):
            super().__init__()
            self.linear = nn.Linear(4, 3)

        def forward(self, x):
            out = self.linear(x)
            return {"centre": out[:, :2], "score": out[:, 2]}

    def loss_fn(outputs, targets):
        return F.mse_loss(outputs["centre"], targets["centre"]) + F.mse_loss(outputs["score"], targets["score"])

    inputs = torch.randn(32, 4)
    batches = [(inputs[i:i + 8], {"centre": inputs[i:i + 8, :2], "score": inputs[i:i + 8, 2]}) for i in range(0, 32, 8)]
    model = TwoHeads()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    history = train.fit(model, batches, epochs=3, optimizer=optimizer, loss_fn=loss_fn, device="cpu", progress=True)
    assert "train_accuracy" not in history and len(history["train_loss"]) == 3
    assert history["train_loss"][-1] < history["train_loss"][0]
