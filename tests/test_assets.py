"""Tests for course_utils.assets: registry, cache, mirror, downloads, offline errors and the CLI.

Nothing here touches the internet: fake assets point at a throw-away HTTP server on 127.0.0.1, at
file:// URLs, or at a closed local port. The real registry is exercised only through the offline
mirror (``/work/shared/assets`` or ``COURSE_ASSET_MIRROR``) and through a subprocess whose proxy is
a closed local port, so it cannot reach the network even on a connected machine.
"""

from __future__ import annotations

import hashlib
import http.server
import os
import random
import re
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from course_utils import assets
from course_utils.assets import Asset, AssetUnavailableError

REPO = Path(__file__).resolve().parents[1]
_ENV_VARS = ("COURSE_ASSET_MIRROR", "COURSE_DOWNLOAD_TIMEOUT", "COURSE_FAST", "COURSE_DEVICE")


def _real_mirror() -> Path | None:
    """The shared offline mirror, if this machine has one (looked up before any test edits the env)."""
    configured = os.environ.get("COURSE_ASSET_MIRROR")
    path = Path(configured).expanduser() if configured else Path(__file__).resolve().parents[2] / "shared" / "assets"
    return path if (path / "data").is_dir() else None


REAL_MIRROR = _real_mirror()


# --- fixtures ------------------------------------------------------------------------------------------

@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    """A private cache, no mirror, a fresh network state, a registry copy and an undoable TORCH_HOME."""
    for name in _ENV_VARS:
        monkeypatch.delenv(name, raising=False)
    cache = tmp_path / "cache"
    monkeypatch.setenv("COURSE_DATA", str(cache))
    # setenv-then-delenv records TORCH_HOME's original state, so configure_library_caches()'s
    # setdefault is undone at teardown even when the variable was unset before the test.
    monkeypatch.setenv("TORCH_HOME", "placeholder")
    monkeypatch.delenv("TORCH_HOME")
    monkeypatch.setattr(assets._NetworkState, "down_reason", None)
    monkeypatch.setattr(assets, "REGISTRY", dict(assets.REGISTRY))
    return cache


def _payload(seed: int, size: int = 4096) -> bytes:
    return random.Random(seed).randbytes(size)


@pytest.fixture
def make_asset():
    """Register a small fake asset whose verified content is ``payload``."""

    def make(name="fake/one", payload=None, urls=(), group=None, target=None, size="auto", sha256=None):
        payload = _payload(len(name)) if payload is None else payload
        asset = Asset(name=name, group=group or name.split("/")[0], target=target or f"Fake/raw/{name}.bin",
                      urls=tuple(urls), sha256=sha256 or hashlib.sha256(payload).hexdigest(),
                      size=len(payload) if size == "auto" else size, licence="CC0 (test data)",
                      description=f"test file {name}")
        assets.register(asset)
        return asset, payload

    return make


@pytest.fixture
def mirror(tmp_path, monkeypatch):
    root = tmp_path / "mirror"
    root.mkdir()
    monkeypatch.setenv("COURSE_ASSET_MIRROR", str(root))
    return root


def _put(path: Path, content: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return path


def _closed_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def refused_url():
    return f"http://127.0.0.1:{_closed_port()}/x.bin"


@pytest.fixture
def http_server():
    """A local HTTP server; ``routes[path] = (status, body, declared_length)``; ``hits`` logs requests."""
    routes: dict[str, tuple[int, bytes, int | None]] = {}
    hits: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            hits.append(self.path)
            status, body, declared = routes.get(self.path, (404, b"not found", None))
            self.send_response(status)
            self.send_header("Content-Length", str(len(body) if declared is None else declared))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    yield SimpleNamespace(url=lambda path: base + path, routes=routes, hits=hits)
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


def _part_files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.name.endswith(".part")]


# --- registry --------------------------------------------------------------------------------------------

def test_registry_entries_have_checksum_size_licence_and_urls():
    for name, asset in assets.REGISTRY.items():
        assert asset.name == name
        assert name.startswith(asset.group + "/"), name
        full = re.fullmatch(r"[0-9a-f]{64}", asset.sha256)
        prefix = re.fullmatch(r"[0-9a-f]{8,63}", asset.sha256) and asset.sha256 in asset.filename
        assert full or prefix, f"{name}: sha256 {asset.sha256!r}"
        # a size may be unknown only where the file name carries the hash prefix (torchvision's files)
        assert (isinstance(asset.size, int) and asset.size > 0) or (prefix and asset.size is None), name
        assert asset.licence.strip() and asset.description.strip(), name
        assert asset.urls and all(u.startswith(("https://", "http://")) for u in asset.urls), name
        assert all(u.endswith(asset.filename) for u in asset.urls), name


def test_registry_targets_are_unique_relative_paths():
    targets = [a.target for a in assets.REGISTRY.values()]
    assert len(targets) == len(set(targets))
    assert all(not Path(t).is_absolute() and ".." not in Path(t).parts for t in targets)


def test_hash_in_weight_file_names_matches_registered_sha256():
    for asset in assets.REGISTRY.values():
        match = assets._HASH_IN_NAME.search(asset.filename)
        if match:
            assert asset.sha256.startswith(match.group(1)), asset.name


@pytest.mark.parametrize("group,folder", [("mnist", "MNIST/raw/"), ("fashion-mnist", "FashionMNIST/raw/")])
def test_dataset_groups_have_the_four_idx_files(group, folder):
    members = assets.resolve(group)
    assert len(members) == 4
    assert {a.filename for a in members} == {"train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
                                             "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"}
    assert all(a.target.startswith(folder) for a in members)


@pytest.mark.skipif(REAL_MIRROR is None or not (REAL_MIRROR / "SHA256SUMS").is_file(),
                    reason="no offline mirror with SHA256SUMS on this machine")
def test_registry_checksums_agree_with_the_mirror_sha256sums():
    sums = {}
    for line in (REAL_MIRROR / "SHA256SUMS").read_text().splitlines():
        digest, path = line.split(maxsplit=1)
        sums[path.removeprefix("./").removeprefix("data/")] = digest
    for group in ("mnist", "fashion-mnist"):
        for asset in assets.resolve(group):
            assert sums[asset.target] == asset.sha256, asset.name


def test_resolve_single_asset_returns_it():
    assert assets.resolve("weights/resnet18") == [assets.REGISTRY["weights/resnet18"]]


def test_resolve_unknown_name_raises_key_error_naming_groups():
    with pytest.raises(KeyError) as info:
        assets.resolve("imagenet")
    message = info.value.args[0]
    assert "imagenet" in message
    for group in ("mnist", "fashion-mnist", "weights"):
        assert repr(group) in message


@pytest.mark.parametrize("bad", [None, 3, ["mnist"]])
def test_resolve_non_string_raises_type_error(bad):
    with pytest.raises(TypeError, match="must be a str"):
        assets.resolve(bad)


def test_register_same_asset_twice_is_allowed(make_asset):
    asset, _ = make_asset()
    assert assets.register(asset) is asset


def test_register_conflicting_details_raises_value_error(make_asset):
    asset, _ = make_asset()
    changed = Asset(**{**asset.__dict__, "size": asset.size + 1})
    with pytest.raises(ValueError, match="already registered"):
        assets.register(changed)
    assert assets.REGISTRY[asset.name] == asset


def test_registry_patch_does_not_leak_between_tests():
    assert not any("fake" in name for name in assets.REGISTRY)


# --- verify / timeout ------------------------------------------------------------------------------------

def test_verify_reports_missing_wrong_size_and_checksum_mismatch(make_asset, tmp_path):
    asset, payload = make_asset()
    path = tmp_path / "f.bin"
    assert assets.verify(asset, path) == "missing"
    _put(path, payload[:-1])
    assert assets.verify(asset, path).startswith("wrong size")
    _put(path, bytes([payload[0] ^ 0xFF]) + payload[1:])
    assert assets.verify(asset, path).startswith("checksum mismatch")
    _put(path, payload)
    assert assets.verify(asset, path) is None


def test_verify_accepts_a_hash_prefix_when_size_is_unknown(make_asset, tmp_path):
    payload = _payload(7)
    asset, _ = make_asset(payload=payload, size=None, sha256=hashlib.sha256(payload).hexdigest()[:10])
    assert assets.verify(asset, _put(tmp_path / "f.bin", payload)) is None
    assert assets.verify(asset, _put(tmp_path / "g.bin", payload + b"x")).startswith("checksum mismatch")


def test_timeout_defaults_and_reads_env(monkeypatch):
    assert assets._timeout() == assets.DEFAULT_TIMEOUT_S
    monkeypatch.setenv("COURSE_DOWNLOAD_TIMEOUT", "2.5")
    assert assets._timeout() == 2.5


def test_timeout_bad_env_value_raises_value_error(monkeypatch):
    monkeypatch.setenv("COURSE_DOWNLOAD_TIMEOUT", "soon")
    with pytest.raises(ValueError, match="COURSE_DOWNLOAD_TIMEOUT.*'soon'"):
        assets._timeout()


def test_mirror_candidates_empty_without_mirror(make_asset):
    asset, _ = make_asset()
    assert assets.mirror_candidates(asset) == []


# --- mirror ----------------------------------------------------------------------------------------------

def test_fetch_copies_from_mirror_data_layout_and_leaves_mirror_untouched(make_asset, mirror, isolated):
    asset, payload = make_asset()
    source = _put(mirror / "data" / asset.target, payload)
    before = source.stat().st_mtime_ns
    path = assets.fetch(asset.name, quiet=True)
    assert path == isolated / asset.target
    assert path.read_bytes() == payload
    assert assets.is_cached(asset.name)
    assert source.read_bytes() == payload and source.stat().st_mtime_ns == before
    assert _part_files(isolated) == []


def test_fetch_copies_from_mirror_flat_layout(make_asset, mirror):
    asset, payload = make_asset()
    _put(mirror / asset.target, payload)
    assert assets.fetch(asset.name, quiet=True).read_bytes() == payload


def test_fetch_returns_cached_file_without_consulting_sources(make_asset, isolated, monkeypatch):
    asset, payload = make_asset()
    _put(isolated / asset.target, payload)
    monkeypatch.setattr(assets, "_install", lambda *a: pytest.fail("a valid cached file was refetched"))
    assert assets.fetch(asset.name).read_bytes() == payload


def test_corrupted_mirror_file_falls_through_to_next_source(make_asset, mirror, tmp_path, isolated):
    good = _put(tmp_path / "elsewhere" / "good.bin", _payload(1))
    asset, payload = make_asset(payload=_payload(1), urls=(good.as_uri(),))
    _put(mirror / "data" / asset.target, bytes(len(payload)))  # right size, wrong content
    assert assets.fetch(asset.name, quiet=True).read_bytes() == payload
    assert _part_files(isolated) == []


def test_corrupted_mirror_file_is_reported_as_checksum_mismatch(make_asset, mirror):
    asset, payload = make_asset()
    _put(mirror / "data" / asset.target, bytes(len(payload)))
    with pytest.raises(AssetUnavailableError) as info:
        assets.fetch(asset.name, quiet=True)
    tried = info.value.tried[asset.name]
    assert any("checksum mismatch" in t and str(mirror / "data") in t for t in tried)
    assert any(t.endswith(": missing") for t in tried)  # the flat-layout candidate
    assert "checksum mismatch" in str(info.value)


# --- downloads -------------------------------------------------------------------------------------------

def test_fetch_downloads_from_local_http_server(make_asset, http_server, isolated, capsys):
    payload = _payload(2, 8192)
    http_server.routes["/good.bin"] = (200, payload, None)
    asset, _ = make_asset(payload=payload, urls=(http_server.url("/good.bin"),))
    path = assets.fetch(asset.name)
    assert path.read_bytes() == payload
    assert http_server.hits == ["/good.bin"]
    assert "downloading" in capsys.readouterr().err
    assert _part_files(isolated) == []


def test_quiet_fetch_prints_nothing(make_asset, http_server, capsys):
    payload = _payload(2)
    http_server.routes["/good.bin"] = (200, payload, None)
    asset, _ = make_asset(payload=payload, urls=(http_server.url("/good.bin"),))
    assets.fetch(asset.name, quiet=True)
    assert capsys.readouterr() == ("", "")


def test_truncated_download_is_wrong_size_and_leaves_nothing_in_cache(make_asset, http_server, isolated):
    payload = _payload(3, 8192)
    http_server.routes["/short.bin"] = (200, payload[:3000], len(payload))  # connection closes early
    asset, _ = make_asset(payload=payload, urls=(http_server.url("/short.bin"),))
    with pytest.raises(AssetUnavailableError) as info:
        assets.fetch(asset.name, quiet=True)
    (attempt,) = [t for t in info.value.tried[asset.name] if "short.bin" in t]
    assert "wrong size" in attempt
    assert not (isolated / asset.target).exists()
    assert _part_files(isolated) == []


def test_http_404_tries_the_next_url(make_asset, http_server):
    payload = _payload(4)
    http_server.routes["/second.bin"] = (200, payload, None)
    asset, _ = make_asset(payload=payload, urls=(http_server.url("/first.bin"), http_server.url("/second.bin")))
    assert assets.fetch(asset.name, quiet=True).read_bytes() == payload
    assert http_server.hits == ["/first.bin", "/second.bin"]
    assert assets._NetworkState.down_reason is None  # an HTTP error is not "network down"


def test_http_404_is_reported_when_no_url_works(make_asset, http_server):
    asset, _ = make_asset(urls=(http_server.url("/gone.bin"),))
    with pytest.raises(AssetUnavailableError) as info:
        assets.fetch(asset.name, quiet=True)
    assert any("HTTP 404" in t for t in info.value.tried[asset.name])


def test_file_url_download(make_asset, tmp_path):
    payload = _payload(5)
    source = _put(tmp_path / "src" / "file.bin", payload)
    asset, _ = make_asset(payload=payload, urls=(source.as_uri(),))
    assert assets.fetch(asset.name, quiet=True).read_bytes() == payload
    assert source.read_bytes() == payload


def test_missing_file_url_does_not_mark_network_down(make_asset, tmp_path):
    asset, _ = make_asset(urls=((tmp_path / "nowhere.bin").as_uri(),))
    with pytest.raises(AssetUnavailableError):
        assets.fetch(asset.name, quiet=True)
    assert assets._NetworkState.down_reason is None


# --- invalid cached files --------------------------------------------------------------------------------

def test_corrupted_cached_file_is_detected_and_replaced_from_mirror(make_asset, mirror, isolated, capsys):
    asset, payload = make_asset()
    _put(mirror / "data" / asset.target, payload)
    flipped = bytearray(payload)
    flipped[100:110] = bytes(b ^ 0xFF for b in flipped[100:110])
    _put(isolated / asset.target, bytes(flipped))
    assert not assets.is_cached(asset.name)
    path = assets.fetch(asset.name)
    assert path.read_bytes() == payload
    err = capsys.readouterr().err
    assert "not valid" in err and "checksum mismatch" in err


def test_partial_cached_file_is_replaced(make_asset, mirror, isolated, capsys):
    asset, payload = make_asset()
    _put(mirror / "data" / asset.target, payload)
    _put(isolated / asset.target, payload[:1000])
    assert assets.fetch(asset.name).read_bytes() == payload
    assert "wrong size" in capsys.readouterr().err


def test_invalid_cached_file_is_removed_even_when_no_source_works(make_asset, isolated, refused_url):
    asset, payload = make_asset(urls=(refused_url,))
    _put(isolated / asset.target, payload[:10])
    with pytest.raises(AssetUnavailableError):
        assets.fetch(asset.name, quiet=True)
    assert not (isolated / asset.target).exists()


# --- offline ---------------------------------------------------------------------------------------------

def test_offline_error_names_asset_target_url_and_prefetch_command(make_asset, refused_url, isolated):
    asset, _ = make_asset(urls=(refused_url,))
    start = time.monotonic()
    with pytest.raises(AssetUnavailableError) as info:
        assets.fetch(asset.name, quiet=True)
    assert time.monotonic() - start < 5
    message = str(info.value)
    assert message.startswith("Could not get 1 file(s)")
    assert asset.name in message
    assert str(isolated / asset.target) in message
    assert refused_url in message
    assert f"python -m course_utils.assets fetch {asset.name}" in message
    assert "COURSE_ASSET_MIRROR is not set" in message
    assert asset.licence in message
    assert any(t.startswith(f"{refused_url}: unreachable") for t in info.value.tried[asset.name])


def test_after_a_connection_failure_later_downloads_are_skipped(make_asset, refused_url, monkeypatch):
    first, _ = make_asset("fake/first", urls=(refused_url,))
    second, _ = make_asset("fake/second", urls=("http://127.0.0.1:9/other.bin",))
    with pytest.raises(AssetUnavailableError):
        assets.fetch(first.name, quiet=True)
    assert assets._NetworkState.down_reason
    monkeypatch.setattr(assets, "_download", lambda *a: pytest.fail("network was tried again"))
    with pytest.raises(AssetUnavailableError) as info:
        assets.fetch(second.name, quiet=True)
    (attempt,) = [t for t in info.value.tried[second.name] if "other.bin" in t]
    assert "skipped, an earlier download found the network unreachable" in attempt


def test_fetch_of_a_group_name_raises_value_error(make_asset):
    make_asset("fake/a")
    make_asset("fake/b")
    with pytest.raises(ValueError, match="group of 2 files.*fetch_all"):
        assets.fetch("fake")


def test_fetch_all_of_a_group_returns_every_path(make_asset, mirror):
    for name in ("fake/a", "fake/b"):
        asset, payload = make_asset(name)
        _put(mirror / "data" / asset.target, payload)
    paths = assets.fetch_all("fake", quiet=True)
    assert [p.name for p in paths] == ["a.bin", "b.bin"]
    assert all(p.is_file() for p in paths)


def test_fetch_all_raises_one_error_listing_only_the_missing_files(make_asset, mirror, tmp_path):
    present, payload = make_asset("fake/present")
    _put(mirror / "data" / present.target, payload)
    gone_url = (tmp_path / "gone.bin").as_uri()
    missing, _ = make_asset("fake/missing", urls=(gone_url,))
    with pytest.raises(AssetUnavailableError) as info:
        assets.fetch_all("fake", quiet=True)
    assert set(info.value.tried) == {missing.name}
    message = str(info.value)
    assert message.startswith("Could not get 1 file(s)")
    assert missing.name in message and present.name not in message
    assert f"tried {gone_url}: unreachable" in message
    assert "tried mirror" in message
    assert "python -m course_utils.assets fetch fake" in message
    assert assets.is_cached(present.name)


def test_fetch_all_without_a_name_fetches_the_whole_registry(make_asset, mirror, monkeypatch):
    monkeypatch.setattr(assets, "REGISTRY", {})
    asset, payload = make_asset()
    _put(mirror / "data" / asset.target, payload)
    assert assets.fetch_all(quiet=True) == [assets.cache_path(asset)]


# --- library caches and torchvision weights ---------------------------------------------------------------

def test_configure_library_caches_defaults_to_the_data_cache(isolated):
    assert assets.configure_library_caches() == {"TORCH_HOME": str(isolated / "torch")}
    assert os.environ["TORCH_HOME"] == str(isolated / "torch")


def test_configure_library_caches_respects_existing_torch_home(monkeypatch, tmp_path):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "mine"))
    assert assets.configure_library_caches() == {"TORCH_HOME": str(tmp_path / "mine")}
    assert os.environ["TORCH_HOME"] == str(tmp_path / "mine")


def _fake_weights(folder: Path, payload: bytes, prefix_len: int = 10, corrupt_name: bool = False):
    digest = hashlib.sha256(payload).hexdigest()[:prefix_len]
    if corrupt_name:
        digest = "0" * prefix_len if not digest.startswith("0") else "1" * prefix_len
    path = _put(folder / f"fakenet-{digest}.pth", payload)
    return SimpleNamespace(url=path.as_uri()), path


def test_torchvision_weights_land_in_user_torch_home(tmp_path, monkeypatch):
    torch_home = tmp_path / "torch_home"
    monkeypatch.setenv("TORCH_HOME", str(torch_home))
    payload = _payload(11)
    weights, source = _fake_weights(tmp_path / "remote", payload)
    assert assets.torchvision_weights(weights) is weights
    landed = torch_home / "hub" / "checkpoints" / source.name
    assert landed.read_bytes() == payload
    assert assets.REGISTRY[f"weights/{source.name}"].urls == (weights.url,)


def test_torchvision_weights_default_torch_home_is_in_the_data_cache(tmp_path, isolated):
    payload = _payload(12)
    weights, source = _fake_weights(tmp_path / "remote", payload)
    assets.torchvision_weights(weights)
    landed = isolated / "torch" / "hub" / "checkpoints" / source.name
    assert landed.read_bytes() == payload
    assert assets.torchvision_weights(weights) is weights  # second call: cached, same registration


def test_torchvision_weights_uses_registered_checksum_for_names_without_hash(make_asset, tmp_path, monkeypatch):
    payload = _payload(13)
    source = _put(tmp_path / "remote" / "tinynet.pth", payload)
    make_asset("weights/tinynet", payload=payload, urls=(source.as_uri(),),
               target="torch/hub/checkpoints/tinynet.pth")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "th"))
    assets.torchvision_weights(SimpleNamespace(url="https://example.invalid/models/tinynet.pth"))
    assert (tmp_path / "th" / "hub" / "checkpoints" / "tinynet.pth").read_bytes() == payload


def test_torchvision_weights_with_wrong_hash_in_name_is_rejected(tmp_path):
    weights, _ = _fake_weights(tmp_path / "remote", _payload(14), corrupt_name=True)
    with pytest.raises(AssetUnavailableError, match="checksum mismatch"):
        assets.torchvision_weights(weights)


def test_torchvision_weights_without_url_raises_type_error():
    with pytest.raises(TypeError, match="weights enum member"):
        assets.torchvision_weights(SimpleNamespace(name="ResNet18_Weights"))


def test_torchvision_weights_unregistered_name_without_hash_raises_value_error():
    with pytest.raises(ValueError, match="cannot verify mystery.pth"):
        assets.torchvision_weights(SimpleNamespace(url="https://example.invalid/mystery.pth"))


# --- command line ----------------------------------------------------------------------------------------

def test_cli_list_prints_names_and_exits_zero(make_asset, mirror, capsys):
    asset, payload = make_asset()
    _put(mirror / "data" / asset.target, payload)
    assets.fetch(asset.name, quiet=True)
    assert assets.main(["list"]) == 0
    out = capsys.readouterr().out
    for name in ("mnist/train-images", "fashion-mnist/test-labels", "weights/resnet18", asset.name):
        assert name in out
    assert re.search(rf"{re.escape(asset.name)}\s+4,096\s+yes", out)
    assert re.search(r"mnist/train-images\s+9,912,422\s+no", out)
    assert f"mirror (COURSE_ASSET_MIRROR): {mirror}" in out


def test_cli_list_shows_unknown_size_and_unset_mirror(make_asset, capsys):
    asset, _ = make_asset(size=None)
    assert assets.main(["list"]) == 0
    out = capsys.readouterr().out
    assert re.search(rf"{re.escape(asset.name)}\s+\?\s+no", out)
    assert "not set" in out


def test_cli_fetch_with_mirror_exits_zero(make_asset, mirror, capsys, isolated):
    asset, payload = make_asset()
    _put(mirror / "data" / asset.target, payload)
    assert assets.main(["fetch", asset.name]) == 0
    assert f"ok  {isolated / asset.target}" in capsys.readouterr().out


def test_cli_fetch_all_with_mirror_exits_zero(make_asset, mirror, monkeypatch, capsys):
    monkeypatch.setattr(assets, "REGISTRY", {})
    for name in ("fake/a", "fake/b"):
        asset, payload = make_asset(name)
        _put(mirror / "data" / asset.target, payload)
    assert assets.main(["fetch", "--all"]) == 0
    assert capsys.readouterr().out.count("ok  ") == 2


def test_cli_fetch_offline_exits_one_with_a_clear_message(make_asset, refused_url, capsys):
    asset, _ = make_asset(urls=(refused_url,))
    assert assets.main(["fetch", asset.name]) == 1
    captured = capsys.readouterr()
    assert "Could not get 1 file(s)" in captured.err
    assert "python -m course_utils.assets fetch" in captured.err
    assert "Traceback" not in captured.err
    assert "ok  " not in captured.out


def test_cli_fetch_unknown_name_exits_one(capsys):
    assert assets.main(["fetch", "imagenet"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("unknown asset 'imagenet'")  # the message, not KeyError's quoted repr


def test_cli_fetch_without_names_is_an_argparse_error(capsys):
    with pytest.raises(SystemExit) as info:
        assets.main(["fetch"])
    assert info.value.code == 2
    assert "fetch needs asset names or --all" in capsys.readouterr().err


def test_cli_without_command_is_an_argparse_error():
    with pytest.raises(SystemExit) as info:
        assets.main([])
    assert info.value.code == 2


def _subprocess_env(cache: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in _ENV_VARS and k.lower() not in ("http_proxy", "https_proxy", "all_proxy", "no_proxy")}
    env.update(COURSE_DATA=str(cache), PYTHONPATH=str(REPO), **extra)
    return env


@pytest.fixture(scope="module")
def cli_runs(tmp_path_factory):
    """Start the real-registry CLI subprocesses together (each pays torch's import time) and wait later."""
    started = {}

    def launch(key, cache, **env):
        process = subprocess.Popen([sys.executable, "-m", "course_utils.assets", "fetch", "mnist"], cwd=REPO,
                                   env=_subprocess_env(cache, **env), stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, text=True)
        started[key] = SimpleNamespace(process=process, cache=cache, start=time.monotonic())

    # The proxy is a closed local port, so even a connected machine cannot reach the real URLs.
    proxy = f"http://127.0.0.1:{_closed_port()}"
    launch("offline", tmp_path_factory.mktemp("offline_cache"), COURSE_DOWNLOAD_TIMEOUT="2",
           http_proxy=proxy, https_proxy=proxy)
    if REAL_MIRROR is not None:
        launch("mirror", tmp_path_factory.mktemp("mirror_cache"), COURSE_ASSET_MIRROR=str(REAL_MIRROR))

    def result(key, timeout):
        run = started[key]
        try:
            out, err = run.process.communicate(timeout=max(0.1, timeout - (time.monotonic() - run.start)))
        except subprocess.TimeoutExpired:
            run.process.kill()
            run.process.communicate()
            pytest.fail(f"'python -m course_utils.assets fetch mnist' ({key}) took more than {timeout} s")
        return SimpleNamespace(returncode=run.process.returncode, stdout=out, stderr=err, cache=run.cache,
                               seconds=time.monotonic() - run.start)

    yield result
    for run in started.values():
        if run.process.poll() is None:
            run.process.kill()
            run.process.communicate()


@pytest.mark.skipif(REAL_MIRROR is None, reason="no offline mirror: set COURSE_ASSET_MIRROR or provide "
                                                "../shared/assets next to the repo")
def test_module_cli_fetches_real_mnist_from_the_mirror(cli_runs):
    result = cli_runs("mirror", timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("ok  ") == 4
    for asset in assets.resolve("mnist"):
        assert assets.verify(asset, result.cache / asset.target) is None


def test_module_cli_without_mirror_or_network_fails_fast_with_a_message(cli_runs):
    result = cli_runs("offline", timeout=15)
    assert result.seconds < 15
    assert result.returncode == 1, result.stderr
    assert "Could not get 4 file(s)" in result.stderr
    assert "python -m course_utils.assets fetch mnist" in result.stderr
    assert "skipped, an earlier download found the network unreachable" in result.stderr
    assert "Traceback" not in result.stderr
    assert not list(result.cache.rglob("*.gz"))


def test_module_main_guard_runs_the_cli(monkeypatch, capsys):
    import runpy
    import warnings

    monkeypatch.setattr(sys, "argv", ["python -m course_utils.assets", "list"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # "found in sys.modules" from re-running a module
        with pytest.raises(SystemExit) as info:
            runpy.run_module("course_utils.assets", run_name="__main__")
    assert info.value.code == 0
    assert "mnist/train-images" in capsys.readouterr().out


# --- failure classification (local errors vs source errors) ---------------------------------------------

def test_cached_files_are_readable_by_everyone(make_asset, mirror, isolated):
    asset, payload = make_asset()
    _put(mirror / "data" / asset.target, payload)
    path = assets.fetch(asset.name)
    assert path.stat().st_mode & 0o777 == 0o644


def test_a_local_disk_error_is_not_mistaken_for_an_offline_network(make_asset, http_server, isolated):
    asset, payload = make_asset()
    http_server.routes["/one.bin"] = (200, payload, None)
    assets.REGISTRY[asset.name] = asset = Asset(**{**asset.__dict__, "urls": (http_server.url("/one.bin"),)})
    _put(isolated / "Fake", b"a file where the cache folder should be")
    with pytest.raises(OSError):
        assets.fetch(asset.name)
    assert assets._NetworkState.down_reason is None


def test_a_broken_chunked_response_is_a_source_failure(make_asset, monkeypatch, tmp_path):
    import http.client

    asset, _ = make_asset(urls=("http://127.0.0.1:9/one.bin",))

    def broken(*args, **kwargs):
        raise http.client.IncompleteRead(b"abc", 10)

    monkeypatch.setattr(assets.urllib.request, "urlopen", broken)
    with pytest.raises(AssetUnavailableError, match="unreachable"):
        assets.fetch(asset.name)


def test_file_urls_are_still_tried_after_the_network_is_marked_down(make_asset, tmp_path, monkeypatch):
    asset, payload = make_asset()
    source = _put(tmp_path / "src" / "one.bin", payload)
    assets.REGISTRY[asset.name] = Asset(**{**asset.__dict__, "urls": (source.as_uri(),)})
    monkeypatch.setattr(assets._NetworkState, "down_reason", "offline")
    assert assets.fetch(asset.name).read_bytes() == payload


@pytest.mark.parametrize("value", ["0", "-3", "soon"])
def test_cli_rejects_a_bad_timeout_up_front(value, monkeypatch, capsys):
    monkeypatch.setenv("COURSE_DOWNLOAD_TIMEOUT", value)
    assert assets.main(["fetch", "mnist"]) == 2
    assert "COURSE_DOWNLOAD_TIMEOUT must be a positive number" in capsys.readouterr().err


def test_ultralytics_weights_come_from_the_registry(make_asset, mirror):
    asset, payload = make_asset(name="weights/tiny-yolo", group="weights", target="weights/tiny-yolo.pt")
    _put(mirror / "data" / asset.target, payload)
    path = assets.ultralytics_weights("tiny-yolo.pt")
    assert path == assets.cache_path(asset) and path.read_bytes() == payload


def test_ultralytics_weights_unregistered_or_bad_names(make_asset):
    with pytest.raises(AssetUnavailableError, match="yolov99x.pt is not in the course's asset registry"):
        assets.ultralytics_weights("yolov99x.pt")
    with pytest.raises(ValueError, match="Ultralytics checkpoint file name"):
        assets.ultralytics_weights("yolov8n")


def test_yolov8n_is_registered_with_a_full_checksum():
    asset = assets.REGISTRY["weights/yolov8n"]
    assert asset.filename == "yolov8n.pt" and len(asset.sha256) == 64 and asset.size == 6549796
    assert all(url.endswith("/yolov8n.pt") for url in asset.urls)


def test_optional_weights_returns_the_value_or_says_what_is_skipped(make_asset, mirror, capsys):
    asset, payload = make_asset(name="weights/tiny-yolo", group="weights", target="weights/tiny-yolo.pt")
    _put(mirror / "data" / asset.target, payload)
    assert assets.optional_weights(lambda: assets.ultralytics_weights("tiny-yolo.pt"), "a demo").exists()
    make_asset(name="weights/absent", group="weights", target="weights/absent.pt")
    assert assets.optional_weights(lambda: assets.fetch("weights/absent"), "the absent demo") is None
    message = capsys.readouterr().out
    assert message.startswith("Skipped: the absent demo, because the weights cannot be had")
    assert "python -m course_utils.assets fetch weights/absent" in message


def test_optional_weights_shows_download_progress_only_when_the_download_worked(capsys):
    def fails_after_announcing():
        print("weights/x: downloading https://example.invalid/x.pt", file=sys.stderr)
        raise assets.AssetUnavailableError("weights/x could not be had", {"weights/x": ["offline"]}, "")

    def works_after_announcing():
        print("weights/y: downloading https://example.invalid/y.pt", file=sys.stderr)
        return "y.pt"

    assert assets.optional_weights(fails_after_announcing, "the x demo") is None
    skipped = capsys.readouterr()
    assert "downloading" not in skipped.err and skipped.out.startswith("Skipped: the x demo")
    assert assets.optional_weights(works_after_announcing, "the y demo") == "y.pt"
    assert "weights/y: downloading" in capsys.readouterr().err


def test_optional_weights_lets_other_errors_through():
    def broken():
        raise ValueError("a bug, not a missing file")

    with pytest.raises(ValueError, match="a bug"):
        assets.optional_weights(broken, "a demo")


def test_hub_reachable_is_quick_and_false_for_a_closed_port(monkeypatch):
    def refuse(address, timeout):
        assert timeout == 0.5
        raise ConnectionRefusedError(address)

    monkeypatch.setattr(assets.socket, "create_connection", refuse)
    assert assets.hub_reachable(timeout=0.5) is False

    class Opened:
        def close(self):
            pass

    monkeypatch.setattr(assets.socket, "create_connection", lambda address, timeout: Opened())
    assert assets.hub_reachable() is True


def test_huggingface_available_uses_the_cache_and_honours_offline(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf"))
    import huggingface_hub.constants as hf_constants

    monkeypatch.setattr(hf_constants, "HF_HUB_CACHE", str(tmp_path / "hf"))
    monkeypatch.setattr(assets, "hub_reachable", lambda: True)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert assets.huggingface_available("facebook/detr-resnet-50") is False
    monkeypatch.delenv("HF_HUB_OFFLINE")
    assert assets.huggingface_available("facebook/detr-resnet-50") is True
    snapshot = tmp_path / "hf" / "models--facebook--detr-resnet-50" / "snapshots" / "abc"
    _put(snapshot / "config.json", b"{}")
    (tmp_path / "hf" / "models--facebook--detr-resnet-50" / "refs").mkdir()
    (tmp_path / "hf" / "models--facebook--detr-resnet-50" / "refs" / "main").write_text("abc")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert assets.huggingface_available("facebook/detr-resnet-50") is True
    assert assets.huggingface_available("facebook/detr-resnet-50", "model_index.json") is False


def test_a_diffusers_pipeline_counts_as_cached_by_its_model_index(monkeypatch, tmp_path):
    import huggingface_hub.constants as hf_constants

    monkeypatch.setattr(hf_constants, "HF_HUB_CACHE", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    repo = tmp_path / "hf" / "models--org--pipeline"
    _put(repo / "snapshots" / "abc" / "model_index.json", b"{}")
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("abc")
    assert assets.huggingface_available("org/pipeline") is True
    assert assets.huggingface_available("org/pipeline", "config.json") is False


def test_torchvision_detection_weights_are_registered_under_their_enum_file_names():
    from torchvision.models.detection import FasterRCNN_ResNet50_FPN_Weights, MaskRCNN_ResNet50_FPN_V2_Weights
    from torchvision.models.segmentation import DeepLabV3_ResNet50_Weights

    for name, weights in [("weights/fasterrcnn_resnet50_fpn", FasterRCNN_ResNet50_FPN_Weights.COCO_V1),
                          ("weights/maskrcnn_resnet50_fpn_v2", MaskRCNN_ResNet50_FPN_V2_Weights.COCO_V1),
                          ("weights/deeplabv3_resnet50", DeepLabV3_ResNet50_Weights.COCO_WITH_VOC_LABELS_V1)]:
        asset = assets.REGISTRY[name]
        assert asset.urls == (weights.url,)
        assert weights.url.rsplit("/", 1)[1].split("-")[-1].startswith(asset.sha256)
