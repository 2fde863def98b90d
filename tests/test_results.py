import json

import pytest

from course_utils import config, results


def test_record_results_writes_full_record(isolated_repo):
    config.setup("00")
    record = results.record_results("00", {"test_accuracy": 0.98, "params": 100}, headline="test_accuracy")
    path = isolated_repo / "data" / "results" / "00.json"
    saved = json.loads(path.read_text())
    assert saved == record
    assert saved["mode"] == "full" and saved["chapter"] == "00" and saved["seconds"] >= 0
    assert saved["metrics"] == {"test_accuracy": 0.98, "params": 100.0}
    assert {"torch", "torchvision", "python"} <= set(saved["versions"])


def test_fast_mode_never_overwrites_full_results(isolated_repo, monkeypatch):
    monkeypatch.setenv("COURSE_FAST", "1")
    config.setup("00")
    results.record_results("00", {"acc": 0.5}, headline="acc")
    assert (isolated_repo / "data" / "results" / "00.fast.json").exists()
    assert not (isolated_repo / "data" / "results" / "00.json").exists()


@pytest.mark.parametrize("metrics, headline, message", [
    ({}, "acc", "at least one"),
    ({"acc": 0.5}, "loss", "headline must be one of"),
    ({"acc": float("nan")}, "acc", "finite number"),
    ({"acc": "high"}, "acc", "finite number"),
])
def test_record_results_validates(isolated_repo, metrics, headline, message):
    config.setup("00")
    with pytest.raises(ValueError, match=message):
        results.record_results("00", metrics, headline=headline)


def test_record_results_fails_on_figures_without_titles_or_labels_when_checking(isolated_repo, monkeypatch):
    from course_utils import viz

    config.setup("00")
    monkeypatch.setattr(viz, "FIGURE_PROBLEMS", ["'loss': the x axis shows numbers but has no label"])
    monkeypatch.delenv("COURSE_CHECK_FIGURES", raising=False)
    results.record_results("00", {"accuracy": 0.9}, headline="accuracy")  # students are not stopped
    monkeypatch.setenv("COURSE_CHECK_FIGURES", "1")
    with pytest.raises(AssertionError, match="'loss': the x axis shows numbers but has no label"):
        results.record_results("00", {"accuracy": 0.9}, headline="accuracy")


def test_unknown_chapter_is_rejected(isolated_repo):
    with pytest.raises(ValueError, match="chapter must be one of"):
        results.results_path("42", "full")


def _readme(root):
    text = f"# Course\n\nintro\n\n{results.README_START}\nold\n{results.README_END}\n\nafter\n"
    (root / "README.md").write_text(text)
    return root / "README.md"


def test_readme_table_is_rebuilt_from_result_files(isolated_repo, capsys):
    readme = _readme(isolated_repo)
    config.setup("00")
    results.record_results("00", {"test_accuracy": 0.9812}, headline="test_accuracy")
    assert results.main(["--check"]) == 1
    assert results.main(["--update-readme"]) == 0
    text = readme.read_text()
    assert "test_accuracy = 0.9812" in text and "not written yet" in text
    assert text.startswith("# Course") and text.endswith("after\n")
    assert results.main(["--check"]) == 0
    assert results.main([]) == 0 and "| 00 |" in capsys.readouterr().out


def test_update_readme_needs_markers(isolated_repo):
    (isolated_repo / "README.md").write_text("no markers")
    with pytest.raises(ValueError, match="lacks the markers"):
        results.update_readme()


def test_format_record_lists_metrics(isolated_repo, capsys):
    config.setup("00")
    record = results.record_results("00", {"acc": 0.5}, headline="acc")
    assert "| acc | 0.5 |" in results.format_record(record)
    results.show_record(record)


def test_a_run_that_loaded_checkpoints_says_so_in_the_record_and_the_table(isolated_repo, monkeypatch):
    _readme(isolated_repo)
    monkeypatch.delenv("COURSE_FAST", raising=False)
    monkeypatch.setenv("COURSE_USE_CHECKPOINTS", "1")
    config.setup("00")
    record = results.record_results("00", {"test_accuracy": 0.98}, headline="test_accuracy")
    assert record["mode"] == "full" and record["checkpoints_loaded"] is True
    assert "(checkpoints loaded, not trained)" in results.readme_table()
    monkeypatch.delenv("COURSE_USE_CHECKPOINTS")
    record = results.record_results("00", {"test_accuracy": 0.98}, headline="test_accuracy")
    assert record["checkpoints_loaded"] is False and "checkpoints loaded" not in results.readme_table()


def test_an_experiment_runs_and_is_saved_in_full_mode_and_replayed_in_presenter_mode(isolated_repo, monkeypatch,
                                                                                      capsys):
    calls = []

    def run():
        calls.append(1)
        return [{"variant": "shift", "seed": 0, "test_acc": 0.81}, {"variant": "none", "seed": 0, "test_acc": 0.83}]

    assert results.experiment("02", "ablation", run) == run() and len(calls) == 2
    saved = json.loads(results.experiment_path("02", "ablation").read_text())
    assert saved["outcome"] == run() and saved["seconds"] >= 0 and saved["chapter"] == "02"
    monkeypatch.setenv("COURSE_USE_CHECKPOINTS", "1")
    assert results.experiment("02", "ablation", run) == run() and len(calls) == 4  # replayed: run() not called
    assert "replayed experiment 'ablation'" in capsys.readouterr().out
    assert results.experiment("02", "never_run", run) == run() and len(calls) == 6  # nothing saved: it runs
    assert results.experiment_path("02", "never_run").exists()


def test_a_presenter_run_replays_only_an_outcome_saved_with_the_same_settings(isolated_repo, monkeypatch, capsys):
    calls = []

    def run():
        calls.append(1)
        return {"gap": len(calls)}

    assert results.experiment("06", "hunger", run, settings={"seeds": (0, 1), "max_steps": 1600}) == {"gap": 1}
    monkeypatch.setenv("COURSE_USE_CHECKPOINTS", "1")
    assert results.experiment("06", "hunger", run, settings={"seeds": [0, 1], "max_steps": 1600}) == {"gap": 1}
    assert "replayed" in capsys.readouterr().out  # a tuple saved as a list is the same setting
    assert results.experiment("06", "hunger", run, settings={"seeds": [0, 1, 2], "max_steps": 1600}) == {"gap": 2}
    assert "settings changed" in capsys.readouterr().out
    saved = json.loads(results.experiment_path("06", "hunger").read_text())
    assert saved["settings"] == {"seeds": [0, 1, 2], "max_steps": 1600} and saved["outcome"] == {"gap": 2}
    assert results.experiment("06", "hunger", run) == {"gap": 3}  # saved with settings, asked without: runs


def test_fast_mode_runs_experiments_and_saves_nothing(isolated_repo, monkeypatch):
    monkeypatch.setenv("COURSE_FAST", "1")
    assert results.experiment("05", "samplers", lambda: {"ddim": 0.5}) == {"ddim": 0.5}
    assert not results.experiment_path("05", "samplers").exists()


@pytest.mark.parametrize("outcome", [{"model": object()}, {(0, 1): 0.5}, [float("nan")]])
def test_an_experiment_outcome_must_be_json(isolated_repo, outcome):
    with pytest.raises((TypeError, ValueError)):
        results.experiment("02", "ablation", lambda: outcome)
    assert not results.experiment_path("02", "ablation").exists()


def test_experiment_names_are_checked(isolated_repo):
    with pytest.raises(ValueError, match="chapter"):
        results.experiment_path("10", "x")
    with pytest.raises(ValueError, match="name"):
        results.experiment_path("02", "../escape")
