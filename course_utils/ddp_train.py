"""Chapter 08: chapter 02's SmallCNN trained on Fashion-MNIST with DistributedDataParallel, or in one process.

Run it on one machine with two processes (gloo on CPU, NCCL on GPUs)::

    torchrun --nproc_per_node 2 -m course_utils.ddp_train --steps 200 --out ddp.json

and without torchrun for the single-process reference with the same global batch::

    python -m course_utils.ddp_train --steps 200 --out single.json

With GPUs add ``--backend nccl`` (one process per GPU). On several machines the same script runs unchanged;
every node starts ``torchrun --nnodes N --nproc_per_node G --rdzv_id JOB --rdzv_backend c10d
--rdzv_endpoint HOST:29400 -m course_utils.ddp_train --backend nccl ...`` (with the c10d rendezvous the ranks
are assigned on arrival; ``--node_rank`` is only for the static ``--master_addr`` form).

Every process draws the same global batch of indices (one seeded generator) and takes its own slice of it,
so the processes together see exactly the single process's batch; DDP averages the gradients, which equals
the gradient of the mean loss over the global batch. With ``--frozen-norm`` (BatchNorm in eval mode and no
dropout) the two runs therefore give the same weights up to floating-point rounding; in ordinary training
BatchNorm normalises each process's half-batch with its own statistics (``SyncBatchNorm`` needs a GPU), so
they agree in accuracy rather than bit for bit. Rounding differences grow as training moves the weights; with
``--dtype float64`` (and, say, ``--optimizer adam --lr 1e-3``) the two runs agree to about 1e-15 even after the
loss has fallen a long way.

The loop each process runs is :func:`train_steps`; ``--loop FILE`` replaces it with the ``train_steps`` a file
defines (chapter 08's notebook writes its loop there from a cell, ``%%writefile``), while this module sets up the
process group, the model, the data and the result file.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import runpy
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel

from . import data, models

MODEL = {"widths": (16, 32), "hidden": 128, "dropout": 0.3}


def _setup(backend: str = "gloo") -> tuple[int, int, torch.device]:
    """(rank, world size, device); initialises the process group when started by torchrun.

    ``gloo`` runs on CPUs (also on a GPU machine, so the comparison with one CPU process stays exact);
    ``nccl`` puts each process on its own GPU (``LOCAL_RANK``).
    """
    if backend not in ("gloo", "nccl"):
        raise ValueError(f"backend must be 'gloo' (CPU) or 'nccl' (GPUs), got {backend!r}")
    if backend == "nccl" and not torch.cuda.is_available():
        raise RuntimeError("the nccl backend needs CUDA GPUs; use --backend gloo on CPUs")
    if "RANK" not in os.environ:
        return 0, 1, torch.device("cuda" if backend == "nccl" else "cpu")
    dist.init_process_group(backend)
    rank, world = dist.get_rank(), dist.get_world_size()
    if backend == "nccl":
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        if local_rank >= torch.cuda.device_count():
            raise RuntimeError(f"process {local_rank} has no GPU of its own ({torch.cuda.device_count()} visible)")
        torch.cuda.set_device(local_rank)
        return rank, world, torch.device("cuda", local_rank)
    return rank, world, torch.device("cpu")


def _available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))  # respects CPU affinity (containers, taskset)
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def train_steps(model, optimizer, images, labels, *, steps: int, global_batch: int, rank: int, world: int,
                frozen_norm: bool, seed: int = 0) -> list[float]:
    """The loop every process runs: its share of each global batch; DDP averages the gradients in backward()."""
    device = next(model.parameters()).device
    batches = torch.Generator().manual_seed(seed + 1)  # the same global batches in every process
    losses = []
    for _ in range(steps):
        model.train(not frozen_norm)  # frozen: BatchNorm on its running statistics, whatever the split
        indices = torch.randint(0, len(images), (global_batch,), generator=batches)  # with replacement
        mine = indices[rank::world]  # this process's share of the global batch
        loss = F.cross_entropy(model(images[mine].to(device)), labels[mine].to(device))
        optimizer.zero_grad()
        loss.backward()  # DDP all-reduces (averages) the gradients across the processes here
        optimizer.step()
        logged = loss.detach()
        if world > 1:  # the loss of the whole global batch, for the log (not for the gradients)
            dist.all_reduce(logged)  # a sum over the processes
            logged = logged / world
        losses.append(logged.item())
    return losses


OPTIMIZERS = {"sgd": lambda parameters, lr: torch.optim.SGD(parameters, lr=lr, momentum=0.9),
              "adam": lambda parameters, lr: torch.optim.Adam(parameters, lr=lr)}
DTYPES = {"float32": torch.float32, "float64": torch.float64}


def train(steps: int, global_batch: int, lr: float, frozen_norm: bool, seed: int = 0,
          evaluate_on: int | None = None, backend: str = "gloo", optimizer: str = "sgd", dtype: str = "float32",
          loop: Callable[..., list[float]] | None = None) -> dict:
    """Set up this process, build the model and the data, run ``loop`` (default :func:`train_steps`), report.

    ``dtype="float64"`` trains in double precision: the single-process and the DDP runs then differ only by
    float64 rounding, which stays tiny even when training amplifies it. ``loop`` lets a script of its own
    (chapter 08's notebook writes one) replace the training loop.
    """
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"optimizer must be one of {sorted(OPTIMIZERS)}, got {optimizer!r}")
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {sorted(DTYPES)}, got {dtype!r}")
    rank, world, device = _setup(backend)
    if global_batch % world:
        raise ValueError(f"the global batch {global_batch} must divide evenly over {world} processes")
    if device.type == "cpu":
        torch.set_num_threads(max(1, _available_cores() // world))  # share the cores, do not oversubscribe
    torch.manual_seed(seed)  # every process builds the same initial weights (DDP also broadcasts rank 0's)
    model = models.SmallCNN(**{**MODEL, "dropout": 0.0 if frozen_norm else MODEL["dropout"]})
    model = model.to(device=device, dtype=DTYPES[dtype])
    torch.manual_seed(seed + 1000 * rank)  # but each process draws its own dropout masks
    if world > 1:
        model = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    if world > 1 and rank != 0:
        dist.barrier()  # let rank 0 download and cache the data first
    images, labels = data.tensor_dataset("fashion-mnist", train=True).tensors
    images = images.to(DTYPES[dtype])
    if world > 1 and rank == 0:
        dist.barrier()
    started = time.perf_counter()
    losses = (loop or train_steps)(model, OPTIMIZERS[optimizer](model.parameters(), lr), images, labels,
                                   steps=steps, global_batch=global_batch, rank=rank, world=world,
                                   frozen_norm=frozen_norm, seed=seed)
    seconds = time.perf_counter() - started
    network = model.module if world > 1 else model
    result = {"world_size": world, "steps": steps, "global_batch": global_batch, "seconds": seconds,
              "backend": dist.get_backend() if world > 1 else "none", "optimizer": optimizer, "lr": lr,
              "dtype": dtype, "losses": losses}
    if rank == 0:
        flat = torch.cat([p.detach().cpu().flatten() for p in network.state_dict().values() if p.is_floating_point()])
        result["parameters"] = flat.tolist()
        if evaluate_on:
            test_images, test_labels = data.tensor_dataset("fashion-mnist", train=False).tensors
            network.eval()
            with torch.no_grad():
                predictions = network(test_images[:evaluate_on].to(device, DTYPES[dtype])).argmax(1).cpu()
            result["test_accuracy"] = (predictions == test_labels[:evaluate_on]).float().mean().item()
    if world > 1:
        # The DDP wrapper holds the process group. Free it while the group is still up: destroyed later (when
        # train() returns), gloo's destructor waits for its worker threads while holding the GIL, and a worker
        # that needs the GIL to free the last all-reduced tensor then never finishes, so the process hangs.
        del model
        gc.collect()
        dist.destroy_process_group()
    return result if rank == 0 else {}


def main(argv: list[str] | None = None, loop: Callable[..., list[float]] | None = None) -> int:
    """The command line (``--loop FILE``: a file's ``train_steps`` replaces the built-in loop; so does ``loop``)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--global-batch", type=int, default=128)
    parser.add_argument("--lr", type=float, default=0.05)
    parser.add_argument("--optimizer", choices=sorted(OPTIMIZERS), default="sgd", help="SGD with momentum 0.9, or Adam")
    parser.add_argument("--dtype", choices=sorted(DTYPES), default="float32",
                        help="float64: DDP and one process then differ only by float64 rounding")
    parser.add_argument("--frozen-norm", action="store_true", help="BatchNorm in eval mode, no dropout (exact check)")
    parser.add_argument("--evaluate-on", type=int, default=0, help="test images rank 0 evaluates at the end")
    parser.add_argument("--backend", choices=("gloo", "nccl"), default="gloo", help="gloo: CPU; nccl: one GPU per process")
    parser.add_argument("--out", type=Path, required=True, help="JSON file rank 0 writes")
    parser.add_argument("--loop", type=Path, help="a Python file whose train_steps(...) replaces the built-in loop "
                        "(chapter 08 writes one from a cell)")
    args = parser.parse_args(argv)
    if args.loop is not None:
        loop = runpy.run_path(str(args.loop))["train_steps"]
    result = train(args.steps, args.global_batch, args.lr, args.frozen_norm, evaluate_on=args.evaluate_on,
                   backend=args.backend, optimizer=args.optimizer, dtype=args.dtype, loop=loop)
    if result:
        args.out.write_text(json.dumps(result))
        print(f"world size {result['world_size']} ({result['backend']}): {args.steps} steps of {args.global_batch} "
              f"in {result['seconds']:.1f} s, final loss {result['losses'][-1]:.4f}"
              + (f", test accuracy {result['test_accuracy']:.4f}" if "test_accuracy" in result else ""))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
