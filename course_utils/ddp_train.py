"""Chapter 08: chapter 02's SmallCNN trained on Fashion-MNIST with DistributedDataParallel, or in one process.

Run it on one machine with two processes (gloo on CPU, NCCL on GPUs)::

    torchrun --nproc_per_node 2 -m course_utils.ddp_train --steps 200 --out ddp.json

and without torchrun for the single-process reference with the same global batch::

    python -m course_utils.ddp_train --steps 200 --out single.json

On several machines the same script runs unchanged; each node starts
``torchrun --nnodes N --node_rank R --nproc_per_node G --rdzv_backend c10d --rdzv_endpoint HOST:29400 -m course_utils.ddp_train``.

Every process draws the same global batch of indices (one seeded generator) and takes its own slice of it,
so the processes together see exactly the single process's batch; DDP averages the gradients, which equals
the gradient of the mean loss over the global batch. With ``--frozen-norm`` (BatchNorm in eval mode and no
dropout) the two runs therefore give the same weights up to floating-point rounding; in ordinary training
BatchNorm normalises each process's half-batch with its own statistics (``SyncBatchNorm`` needs a GPU), so
they agree in accuracy rather than bit for bit.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel

from . import data, models

MODEL = {"widths": (16, 32), "hidden": 128, "dropout": 0.3}


def _setup() -> tuple[int, int, torch.device]:
    """(rank, world size, device); initialises the process group when started by torchrun."""
    if "RANK" not in os.environ:
        return 0, 1, torch.device("cpu")
    use_cuda = torch.cuda.is_available()
    dist.init_process_group("nccl" if use_cuda else "gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    if use_cuda:
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(local_rank)
        return rank, world, torch.device("cuda", local_rank)
    return rank, world, torch.device("cpu")


def train(steps: int, global_batch: int, lr: float, frozen_norm: bool, seed: int = 0,
          evaluate_on: int | None = None) -> dict:
    rank, world, device = _setup()
    if global_batch % world:
        raise ValueError(f"the global batch {global_batch} must divide evenly over {world} processes")
    if device.type == "cpu":
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // world))  # share the cores, do not oversubscribe
    torch.manual_seed(seed)  # every process builds the same initial weights (DDP also broadcasts rank 0's)
    model = models.SmallCNN(**{**MODEL, "dropout": 0.0 if frozen_norm else MODEL["dropout"]}).to(device)
    if world > 1:
        model = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    images, labels = data.tensor_dataset("fashion-mnist", train=True).tensors
    batches = torch.Generator().manual_seed(seed + 1)
    losses, started = [], time.perf_counter()
    for _ in range(steps):
        model.train()
        if frozen_norm:
            model.eval()  # BatchNorm uses its running statistics: no dependence on how the batch is split
        indices = torch.randint(0, len(images), (global_batch,), generator=batches)
        mine = indices[rank::world]  # this process's share of the global batch
        loss = F.cross_entropy(model(images[mine].to(device)), labels[mine].to(device))
        optimizer.zero_grad()
        loss.backward()  # DDP all-reduces (averages) the gradients across processes here
        optimizer.step()
        losses.append(loss.item())
    seconds = time.perf_counter() - started
    network = model.module if world > 1 else model
    result = {"world_size": world, "steps": steps, "global_batch": global_batch, "seconds": seconds,
              "backend": dist.get_backend() if world > 1 else "none", "losses": losses}
    if rank == 0:
        flat = torch.cat([p.detach().cpu().flatten() for p in network.state_dict().values() if p.is_floating_point()])
        result["parameters"] = flat.tolist()
        if evaluate_on:
            test_images, test_labels = data.tensor_dataset("fashion-mnist", train=False).tensors
            network.eval()
            with torch.no_grad():
                predictions = network(test_images[:evaluate_on].to(device)).argmax(1).cpu()
            result["test_accuracy"] = (predictions == test_labels[:evaluate_on]).float().mean().item()
    if world > 1:
        dist.destroy_process_group()
    return result if rank == 0 else {}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--global-batch", type=int, default=128)
    parser.add_argument("--lr", type=float, default=0.05)
    parser.add_argument("--frozen-norm", action="store_true", help="BatchNorm in eval mode, no dropout (exact check)")
    parser.add_argument("--evaluate-on", type=int, default=0, help="test images rank 0 evaluates at the end")
    parser.add_argument("--out", type=Path, required=True, help="JSON file rank 0 writes")
    args = parser.parse_args(argv)
    result = train(args.steps, args.global_batch, args.lr, args.frozen_norm, evaluate_on=args.evaluate_on)
    if result:
        args.out.write_text(json.dumps(result))
        print(f"world size {result['world_size']} ({result['backend']}): {args.steps} steps of {args.global_batch} "
              f"in {result['seconds']:.1f} s, final loss {result['losses'][-1]:.4f}"
              + (f", test accuracy {result['test_accuracy']:.4f}" if "test_accuracy" in result else ""))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
