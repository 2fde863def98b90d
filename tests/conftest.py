"""Shared fixtures: keep every test's writes out of the repository's data folder."""

import pytest


@pytest.fixture
def isolated_repo(tmp_path, monkeypatch):
    """A throw-away repo root (checkpoints/, results/, README) and data cache for one test."""
    from course_utils import config

    root = tmp_path / "repo"
    (root / "data").mkdir(parents=True)
    monkeypatch.setattr(config, "repo_root", lambda: root)
    monkeypatch.setenv("COURSE_DATA", str(root / "data"))
    for name in ("COURSE_FAST", "COURSE_USE_CHECKPOINTS", "COURSE_RETRAIN"):
        monkeypatch.delenv(name, raising=False)
    return root
