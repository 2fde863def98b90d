"""Every file the course downloads, in one registry, fetched into one checksum-verified cache.

Lookup order for each file: the cache (``data/``, see :func:`course_utils.config.data_dir`), then the
offline mirror named by ``COURSE_ASSET_MIRROR``, then the network with short timeouts. A file counts as
present only when its size and sha256 match the registry; partial or corrupted files are replaced.
When a file cannot be had, :class:`AssetUnavailableError` says what is missing, where it comes from and
how to pre-fetch it.

Command line (for classrooms and CI)::

    python -m course_utils.assets list
    python -m course_utils.assets fetch mnist          # a group or a single file
    python -m course_utils.assets fetch --all
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import http.client
import io
import os
import re
import shutil
import socket
import sys
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from .config import data_dir

MIRROR_ENV = "COURSE_ASSET_MIRROR"
TIMEOUT_ENV = "COURSE_DOWNLOAD_TIMEOUT"
DEFAULT_TIMEOUT_S = 5.0
PREFETCH_HINT = "python -m course_utils.assets fetch {name}"


class AssetUnavailableError(RuntimeError):
    """A registered file is not in the cache or the mirror and could not be downloaded.

    ``tried`` maps each missing asset's name to the sources that were tried and why each failed;
    ``prefetch`` is the command that fetches them on a connected machine (empty when there is none).
    """

    def __init__(self, message: str, tried: dict[str, list[str]] | None = None, prefetch: str = ""):
        super().__init__(message)
        self.tried = tried or {}
        self.prefetch = prefetch


@dataclass(frozen=True)
class Asset:
    """One downloadable file: where it comes from, how to verify it and where it lands in the cache."""

    name: str
    group: str
    target: str  # path relative to the data cache (and to ``<mirror>/data``)
    urls: tuple[str, ...]
    sha256: str  # full digest, or the prefix that torchvision/torch.hub put in file names
    size: int | None
    licence: str
    description: str

    @property
    def filename(self) -> str:
        return Path(self.target).name


_MNIST_URLS = ("https://ossci-datasets.s3.amazonaws.com/mnist/", "http://yann.lecun.com/exdb/mnist/")
_FASHION_URLS = ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",)
_IDX_FILES = {
    # name: (file, MNIST sha256, MNIST size, Fashion-MNIST sha256, Fashion-MNIST size)
    "train-images": ("train-images-idx3-ubyte.gz",
                     "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609", 9912422,
                     "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84", 26421880),
    "train-labels": ("train-labels-idx1-ubyte.gz",
                     "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c", 28881,
                     "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845", 29515),
    "test-images": ("t10k-images-idx3-ubyte.gz",
                    "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6", 1648877,
                    "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073", 4422102),
    "test-labels": ("t10k-labels-idx1-ubyte.gz",
                    "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6", 4542,
                    "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5", 5148),
}


def _dataset_assets() -> list[Asset]:
    assets = []
    for part, (filename, mnist_sha, mnist_size, fashion_sha, fashion_size) in _IDX_FILES.items():
        assets.append(Asset(
            f"mnist/{part}", "mnist", f"MNIST/raw/{filename}", tuple(u + filename for u in _MNIST_URLS),
            mnist_sha, mnist_size, "CC BY-SA 3.0 (Y. LeCun, C. Cortes)", f"MNIST {part.replace('-', ' ')}"))
        assets.append(Asset(
            f"fashion-mnist/{part}", "fashion-mnist", f"FashionMNIST/raw/{filename}",
            tuple(u + filename for u in _FASHION_URLS), fashion_sha, fashion_size, "MIT (Zalando Research)",
            f"Fashion-MNIST {part.replace('-', ' ')}"))
    return assets


_WEIGHT_ASSETS = [
    Asset("weights/resnet18", "weights", "torch/hub/checkpoints/resnet18-f37072fd.pth",
          ("https://download.pytorch.org/models/resnet18-f37072fd.pth",),
          "f37072fd47e89c5e827621c5baffa7500819f7896bbacec160b1a16c560e07ec", 46830571,
          "BSD-3-Clause (torchvision)", "torchvision ResNet-18, ImageNet-1k weights"),
    Asset("weights/mobile_sam", "weights", "weights/mobile_sam.pt",
          ("https://github.com/ChaoningZhang/MobileSAM/raw/master/weights/mobile_sam.pt",),
          "6dbb90523a35330fedd7f1d3dfc66f995213d81b29a5ca8108dbcdd4e37d6c2f", 40728226,
          "Apache-2.0 (MobileSAM)", "MobileSAM checkpoint (SAM with a TinyViT image encoder)"),
    *(Asset(f"weights/{name}", "weights", f"torch/hub/checkpoints/{filename}",
            (f"https://download.pytorch.org/models/{filename}",), filename.rsplit("-", 1)[1].split(".")[0], None,
            "BSD-3-Clause (torchvision)", f"torchvision {description} (checked by the hash prefix in its name)")
      for name, filename, description in [
          ("fasterrcnn_resnet50_fpn", "fasterrcnn_resnet50_fpn_coco-258fb6c6.pth", "Faster R-CNN ResNet-50 FPN, COCO"),
          ("maskrcnn_resnet50_fpn_v2", "maskrcnn_resnet50_fpn_v2_coco-73cbd019.pth", "Mask R-CNN ResNet-50 FPN v2, COCO"),
          ("deeplabv3_resnet50", "deeplabv3_resnet50_coco-cd0a2569.pth", "DeepLabV3 ResNet-50, COCO (VOC labels)")]),
    Asset("weights/mobilenet_v2", "weights", "torch/hub/checkpoints/mobilenet_v2-b0353104.pth",
          ("https://download.pytorch.org/models/mobilenet_v2-b0353104.pth",),
          "b03531047ffacf1e2488318dcd2aba1126cde36e3bfe1aa5cb07700aeeee9889", 14212972,
          "BSD-3-Clause (torchvision); ImageNet terms",
          "torchvision MobileNetV2, ImageNet-1k weights (MobileNet_V2_Weights.IMAGENET1K_V1)"),
    *(Asset(f"weights/mtcnn_{net}", "weights", f"weights/mtcnn/{net}.pt",
            (f"https://raw.githubusercontent.com/timesler/facenet-pytorch/master/data/{net}.pt",), digest, size,
            "MIT (facenet-pytorch)", f"MTCNN {net[0].upper()}-Net face detector state dict (Zhang et al. 2016)")
      for net, digest, size in [
          ("pnet", "a2a71925e0b9996a42f63e47efc1ca19043e69558b5c523b978d611dfae49c8f", 28570),
          ("rnet", "bbb937de72efc9ef83b186c49f5f558467a1d7e3453a8ece0d71a886633f6a86", 403147),
          ("onet", "165bfbe42940416ccfb977545cf0e976d5bf321f67083ae2aaaa5c764280118d", 1559269)]),
    Asset("weights/sam_vit_b", "weights", "weights/sam_vit_b_01ec64.pth",
          ("https://dl.fbaipublicfiles.com/segment_anything/sam_vit_b_01ec64.pth",),
          "ec2df62732614e57411cdcf32a23ffdf28910380d03139ee0f4fcbe91eb8c912", 375042383,
          "Apache-2.0 (Segment Anything)", "SAM ViT-B checkpoint (Segment Anything, Kirillov et al. 2023)"),
    Asset("weights/yolov8n", "weights", "weights/yolov8n.pt",
          ("https://github.com/ultralytics/assets/releases/download/v8.4.0/yolov8n.pt",
           "https://github.com/ultralytics/assets/releases/download/v8.3.0/yolov8n.pt"),
          "f59b3d833e2ff32e194b5bb8e08d211dc7c5bdf144b90d2c8412c47ccfc83b36", 6549796,
          "AGPL-3.0 (Ultralytics)", "Ultralytics YOLOv8n, COCO-pretrained detector"),
]

REGISTRY: dict[str, Asset] = {a.name: a for a in _dataset_assets() + _WEIGHT_ASSETS}


def register(asset: Asset) -> Asset:
    """Add an asset to the registry (used for torchvision weights discovered at run time)."""
    known = REGISTRY.get(asset.name)
    if known is not None and known != asset:
        raise ValueError(f"asset {asset.name!r} is already registered with different details")
    REGISTRY[asset.name] = asset
    return asset


def resolve(name: str) -> list[Asset]:
    """The assets behind ``name``: one asset, or every asset of a group such as ``mnist``."""
    if not isinstance(name, str):
        raise TypeError(f"asset name must be a str, got {type(name).__name__}")
    if name in REGISTRY:
        return [REGISTRY[name]]
    members = [a for a in REGISTRY.values() if a.group == name]
    if not members:
        groups = sorted({a.group for a in REGISTRY.values()})
        raise KeyError(f"unknown asset {name!r}; groups: {groups}; run "
                       f"'python -m course_utils.assets list' for every name")
    return members


def cache_path(asset: Asset) -> Path:
    return data_dir() / asset.target


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verify(asset: Asset, path: Path) -> str | None:
    """``None`` when ``path`` is the asset, else the reason it is not (missing, truncated, corrupted)."""
    if not path.is_file():
        return "missing"
    size = path.stat().st_size
    if asset.size is not None and size != asset.size:
        return f"wrong size: {size:,} bytes, expected {asset.size:,} (partial or corrupted)"
    digest = sha256_of(path)
    if not digest.startswith(asset.sha256):
        return f"checksum mismatch: sha256 {digest[:16]}…, expected {asset.sha256[:16]}…"
    return None


def is_cached(name: str) -> bool:
    return all(verify(a, cache_path(a)) is None for a in resolve(name))


def mirror_candidates(asset: Asset) -> list[Path]:
    mirror = os.environ.get(MIRROR_ENV)
    if not mirror:
        return []
    root = Path(mirror).expanduser()
    return [root / "data" / asset.target, root / asset.target]


def _timeout() -> float:
    raw = os.environ.get(TIMEOUT_ENV)
    try:
        value = float(raw) if raw else DEFAULT_TIMEOUT_S
    except ValueError:
        value = -1.0
    if not value > 0:
        raise ValueError(f"{TIMEOUT_ENV} must be a positive number of seconds, got {raw!r}")
    return value


class _NetworkState:
    # After one connection-level failure we stop trying the network in this process, so an offline
    # machine gets its answer in seconds rather than one timeout per file.
    down_reason: str | None = None


class _SourceFailed(Exception):
    """A download source failed; ``network_down`` says whether the network itself seems unreachable."""

    def __init__(self, problem: str, network_down: bool = False):
        super().__init__(problem)
        self.problem, self.network_down = problem, network_down


def _download(url: str, destination: Path) -> None:
    """Copy ``url`` into ``destination``; source failures become :class:`_SourceFailed`.

    Local errors (a full disk, an unwritable cache) are not caught here: they are not the source's
    fault and must not be mistaken for an offline network.
    """
    request = urllib.request.Request(url, headers={"User-Agent": "course-utils"})
    try:
        response = urllib.request.urlopen(request, timeout=_timeout())
    except urllib.error.HTTPError as err:
        raise _SourceFailed(f"HTTP {err.code}") from None
    except (urllib.error.URLError, ConnectionError, TimeoutError, http.client.HTTPException) as err:
        reason = getattr(err, "reason", err)
        raise _SourceFailed(f"unreachable ({reason})", network_down=not url.startswith("file:")) from None
    with response, open(destination, "wb") as out:
        try:
            shutil.copyfileobj(response, out, 1 << 20)
        except (ConnectionError, TimeoutError, http.client.HTTPException) as err:
            raise _SourceFailed(f"transfer broke off ({type(err).__name__}: {err})") from None


def _install(asset: Asset, fill) -> str | None:
    """Fill a temporary file next to the target, verify it, then move it into place atomically."""
    target = cache_path(asset)
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temp_name = tempfile.mkstemp(prefix=f".{asset.filename}.", suffix=".part", dir=target.parent)
    os.close(handle)
    temp = Path(temp_name)
    try:
        fill(temp)
        problem = verify(asset, temp)
        if problem is None:
            os.chmod(temp, 0o644)  # mkstemp makes files private; a shared class cache must be readable
            os.replace(temp, target)
        return problem
    finally:
        temp.unlink(missing_ok=True)


def fetch(name: str, quiet: bool = False) -> Path:
    """Make one asset present in the cache and return its path (see the module doc for the order)."""
    (asset,) = _single(name)
    target = cache_path(asset)
    cached_problem = verify(asset, target)
    if cached_problem is None:
        return target
    say = (lambda msg: None) if quiet else (lambda msg: print(msg, file=sys.stderr))
    if cached_problem != "missing":
        say(f"{asset.name}: cached file is not valid ({cached_problem}); replacing it")
        target.unlink()
    tried = []
    for candidate in mirror_candidates(asset):
        if candidate.is_file():
            problem = _install(asset, lambda tmp, src=candidate: shutil.copyfile(src, tmp))
            if problem is None:
                return target
            tried.append(f"mirror {candidate}: {problem}")
        else:
            tried.append(f"mirror {candidate}: missing")
    if not mirror_candidates(asset):
        tried.append(f"mirror: {MIRROR_ENV} is not set")
    for url in asset.urls:
        if _NetworkState.down_reason and not url.startswith("file:"):
            tried.append(f"{url}: skipped, an earlier download found the network {_NetworkState.down_reason}")
            continue
        try:
            say(f"{asset.name}: downloading {url}")
            problem = _install(asset, lambda tmp, u=url: _download(u, tmp))
        except _SourceFailed as failure:
            problem = failure.problem
            if failure.network_down:
                _NetworkState.down_reason = failure.problem
        if problem is None:
            return target
        tried.append(f"{url}: {problem}")
    raise AssetUnavailableError(_unavailable_message([asset], {asset.name: tried}, name), {asset.name: tried},
                                PREFETCH_HINT.format(name=name))


def fetch_all(name: str | None = None, quiet: bool = False) -> list[Path]:
    """Fetch every asset of ``name`` (a group or one asset), or the whole registry when ``None``.

    Raises one :class:`AssetUnavailableError` naming every file that could not be had.
    """
    assets = list(REGISTRY.values()) if name is None else resolve(name)
    paths, failures = [], {}
    for asset in assets:
        try:
            paths.append(fetch(asset.name, quiet=quiet))
        except AssetUnavailableError as err:
            failures.update(err.tried)
    if failures:
        missing = [a for a in assets if a.name in failures]
        raise AssetUnavailableError(_unavailable_message(missing, failures, name or "--all"), failures,
                                    PREFETCH_HINT.format(name=name or "--all"))
    return paths


def _single(name: str) -> list[Asset]:
    assets = resolve(name)
    if len(assets) != 1:
        raise ValueError(f"{name!r} is a group of {len(assets)} files; use fetch_all({name!r})")
    return assets


def _unavailable_message(assets: list[Asset], tried: dict | None, prefetch_name: str) -> str:
    lines = [f"Could not get {len(assets)} file(s) the course needs:"]
    for asset in assets:
        lines.append(f"  - {asset.name}: {asset.description} -> {cache_path(asset)}")
        lines.append(f"    from {', '.join(asset.urls)} (licence: {asset.licence})")
        for attempt in (tried or {}).get(asset.name, []):
            lines.append(f"    tried {attempt}")
    lines.append(f"Pre-fetch on a connected machine with: {PREFETCH_HINT.format(name=prefetch_name)}")
    lines.append(f"or point {MIRROR_ENV} at a folder that holds data/<path> copies of these files.")
    return "\n".join(lines)


# --- library caches and pretrained weights ---------------------------------------------------------

def configure_library_caches() -> dict[str, str]:
    """Point torch.hub (and so torchvision weights) at the course cache, unless the user chose a place."""
    os.environ.setdefault("TORCH_HOME", str(data_dir() / "torch"))
    return {"TORCH_HOME": os.environ["TORCH_HOME"]}


_HASH_IN_NAME = re.compile(r"-([0-9a-f]{8,64})\.(?:pth|pt)$")


def torchvision_weights(weights):
    """Make a torchvision ``WeightsEnum`` member's file available through the registry and return it.

    The file goes to ``$TORCH_HOME/hub/checkpoints`` where torchvision looks for it. Registered
    files are checked against their full sha256; others against the hash prefix in their name.
    """
    url = getattr(weights, "url", None)
    if not isinstance(url, str):
        raise TypeError(f"expected a torchvision weights enum member (e.g. ResNet18_Weights.DEFAULT), "
                        f"got {weights!r}")
    configure_library_caches()
    filename = url.rsplit("/", 1)[-1]
    hub_target = Path(os.environ["TORCH_HOME"]) / "hub" / "checkpoints" / filename
    asset = next((a for a in REGISTRY.values() if a.filename == filename), None)
    if asset is None:
        match = _HASH_IN_NAME.search(filename)
        if not match:
            raise ValueError(f"cannot verify {filename}: no sha256 registered and none in the file name")
        asset = register(Asset(f"weights/{filename}", "weights", f"torch/hub/checkpoints/{filename}",
                               (url,), match.group(1), None, "see the model's documentation",
                               f"torchvision weights {weights}"))
    path = fetch(asset.name)
    if path.resolve() != hub_target.resolve():
        hub_target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, hub_target)
    return weights


def ultralytics_weights(filename: str) -> Path:
    """The local path of an Ultralytics checkpoint (e.g. ``"yolov8n.pt"``) fetched through the registry.

    Pass the returned path to ``ultralytics.YOLO(path)`` so Ultralytics never downloads on its own.
    Only registered (checksum-pinned) files are fetched; anything else is reported, not downloaded.
    """
    if not isinstance(filename, str) or not filename.endswith(".pt"):
        raise ValueError(f"expected an Ultralytics checkpoint file name such as 'yolov8n.pt', got {filename!r}")
    asset = next((a for a in REGISTRY.values() if a.group == "weights" and a.filename == filename), None)
    if asset is None:
        raise AssetUnavailableError(
            f"{filename} is not in the course's asset registry, so its checksum cannot be verified.\n"
            f"Registered weights: {sorted(a.filename for a in REGISTRY.values() if a.group == 'weights')}.\n"
            "Add a registry entry (URL, sha256, size, licence) in course_utils/assets.py to use it.")
    return fetch(asset.name)


def optional_weights(get, what: str):
    """``get()`` (a weights fetch), or ``None`` with one message saying that ``what`` is skipped and why.

    For the pretrained demos of a chapter: offline they print what they skip instead of failing.
    """
    progress = io.StringIO()  # the fetch's "downloading …" lines: shown only when the download worked
    try:
        with contextlib.redirect_stderr(progress):
            weights = get()
    except AssetUnavailableError as err:
        attempts = [a for tried in err.tried.values() for a in tried]
        reason = attempts[-1] if attempts else str(err).splitlines()[0]
        print(f"Skipped: {what}, because the weights cannot be had on this machine ({reason})."
              + (f"\nTo run it, pre-fetch them on a connected machine: {err.prefetch}" if err.prefetch else ""))
        return None
    except BaseException:
        sys.stderr.write(progress.getvalue())
        raise
    sys.stderr.write(progress.getvalue())
    return weights


def hub_reachable(host: str = "huggingface.co", timeout: float = 5.0) -> bool:
    """Whether a TCP connection to ``host``:443 opens within ``timeout`` s (instead of long retries)."""
    try:
        socket.create_connection((host, 443), timeout=timeout).close()
        return True
    except OSError:
        return False


def huggingface_available(repo_id: str, filenames: str | tuple[str, ...] = ("config.json", "model_index.json")) -> bool:
    """Whether a Hugging Face model can be loaded: already in the local HF cache, or the hub is reachable.

    The cache counts when any of ``filenames`` is there: a model repo has ``config.json``, a diffusers
    pipeline repo ``model_index.json``. ``HF_HUB_OFFLINE=1`` (set by CI) means cache only.
    """
    from huggingface_hub import try_to_load_from_cache

    if isinstance(filenames, str):
        filenames = (filenames,)
    if any(isinstance(try_to_load_from_cache(repo_id, filename), str) for filename in filenames):
        return True
    offline = os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}
    return not offline and hub_reachable()


# --- command line ------------------------------------------------------------------------------------

def _list() -> int:
    print(f"{'name':28} {'size':>12}  {'cached':6}  target")
    for asset in REGISTRY.values():
        size = f"{asset.size:,}" if asset.size else "?"
        cached = "yes" if verify(asset, cache_path(asset)) is None else "no"
        print(f"{asset.name:28} {size:>12}  {cached:6}  {asset.target}")
    print(f"cache: {data_dir()}   mirror ({MIRROR_ENV}): {os.environ.get(MIRROR_ENV) or 'not set'}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m course_utils.assets", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="every registered file and whether it is cached")
    fetch_parser = sub.add_parser("fetch", help="fetch files or groups into the cache")
    fetch_parser.add_argument("names", nargs="*", help="asset or group names (see 'list')")
    fetch_parser.add_argument("--all", action="store_true", help="fetch every registered file")
    args = parser.parse_args(argv)
    if args.command == "list":
        return _list()
    if not args.all and not args.names:
        parser.error("fetch needs asset names or --all")
    try:
        _timeout()  # a bad setting is reported once, up front
    except ValueError as err:
        print(err, file=sys.stderr)
        return 2
    try:
        targets = [None] if args.all else args.names
        for name in targets:
            for path in fetch_all(name):
                print(f"ok  {path}")
    except (AssetUnavailableError, KeyError) as err:
        print(err.args[0] if err.args else err, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
