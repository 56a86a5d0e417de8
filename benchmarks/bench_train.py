"""Seconds per training epoch of Experiment 1's four models: tensor batches vs. a conventional DataLoader.

Fast path: the preprocessed uint8 tensor cache on the device, batches as index slices of a permutation.
Baseline: torchvision ImageFolder datasets over the same images as files, decoded and transformed per
sample every epoch (Resize(32), Grayscale, ToTensor), batched by a DataLoader. Both train the same four
models with the same joint optimiser step and batch size. A third row times the optimiser steps alone on one
fixed batch: the floor that no data pipeline can beat, so baseline / floor bounds any pipeline's speed-up. Prints
the table last and writes it to
benchmarks/results/bench_train.csv.

    python benchmarks/bench_train.py [--batch-size 128] [--workers 2] [--baseline-batches N]
"""

from __future__ import annotations

import argparse
import os
import platform
import tarfile
import time

import pandas as pd
import torch
from torch.utils.data import ConcatDataset, DataLoader
from torchvision import datasets, transforms

from moe_utils.datasets.mnist_cifar import load_mnist_cifar, mirror_archives
from moe_utils.exp1.models import build_four_models
from moe_utils.exp1.training import TrainConfig, build_optimizer, train_epoch, train_step
from moe_utils.io import paths
from moe_utils.io.atomic import atomic_path
from moe_utils.runtime import make_generator, resolve_device

EXTRACTED = paths.RAW_DIR / "mirror-extracted"


def image_folders() -> dict[str, object]:
    """The mirror archives unpacked once into data/raw/mirror-extracted (not timed)."""
    if paths.mirror_dir() is None:
        raise SystemExit(
            f"error: the DataLoader baseline reads the mirror's image files; set {paths.MIRROR_ENV} (e.g. ../shared/datasets)"
        )
    archives = mirror_archives(paths.mirror_dir())
    folders = {}
    for name, archive in (
        ("mnist", archives["first"]),
        ("cifar", archives["second"]),
    ):  # the benchmark is MNIST + CIFAR
        target = EXTRACTED / name
        if not (target / "train").is_dir():
            target.mkdir(parents=True, exist_ok=True)
            with tarfile.open(archive) as tar:
                tar.extractall(target, filter="data")
        folders[name] = target
    return folders


def conventional_loader(batch_size: int, workers: int, seed: int) -> DataLoader:
    """ImageFolder(MNIST) + ImageFolder(CIFAR, labels +10) with per-sample transforms, shuffled."""
    per_sample = transforms.Compose(
        [transforms.Resize((32, 32)), transforms.Grayscale(), transforms.ToTensor(), transforms.Lambda(torch.flatten)]
    )
    folders = image_folders()
    mnist = datasets.ImageFolder(folders["mnist"] / "train", transform=per_sample)
    cifar = datasets.ImageFolder(folders["cifar"] / "train", transform=per_sample, target_transform=lambda t: t + 10)
    return DataLoader(
        ConcatDataset([mnist, cifar]),
        batch_size=batch_size,
        shuffle=True,
        num_workers=workers,
        generator=make_generator(seed),
        persistent_workers=False,
    )


def time_fast_epoch(config: TrainConfig, device: torch.device) -> float:
    """Seconds for one training epoch on the cached tensors (after a short warm-up)."""
    data = load_mnist_cifar("auto", verbose=False)
    train = data.train.flat(device)
    models = {k: m.to(device) for k, m in build_four_models(seed=config.seed).items()}
    optimizer = build_optimizer(models, config)
    generator = make_generator(config.seed, device)
    warm = train.subset(torch.arange(20 * config.batch_size, device=device))
    train_epoch(models, optimizer, warm, config.batch_size, generator)
    if device.type == "cuda":
        torch.cuda.synchronize()
    started = time.perf_counter()
    train_epoch(models, optimizer, train, config.batch_size, generator)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - started


def time_model_only_epoch(config: TrainConfig, device: torch.device, n_train: int) -> float:
    """Seconds per epoch of the optimiser steps alone: one fixed batch reused, no indexing or conversion.

    This is the floor for any data pipeline with these models and this batch size: the speed-up of a pipeline
    over the baseline can be at most baseline / this.
    """
    models = {k: m.to(device) for k, m in build_four_models(seed=config.seed).items()}
    optimizer = build_optimizer(models, config)
    generator = make_generator(config.seed, device)
    x = torch.rand(config.batch_size, 32 * 32, generator=generator, device=device)  # [batch, pixels]
    y = torch.randint(0, 20, (config.batch_size,), generator=generator, device=device)  # [batch]
    steps = 200
    for _ in range(20):  # warm-up
        train_step(models, optimizer, x, y, y < 10)
    if device.type == "cuda":
        torch.cuda.synchronize()
    started = time.perf_counter()
    for _ in range(steps):
        train_step(models, optimizer, x, y, y < 10)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - started) / steps * -(-n_train // config.batch_size)


def time_baseline_epoch(
    config: TrainConfig, device: torch.device, workers: int, max_batches: int | None
) -> tuple[float, int]:
    """Seconds per epoch through the DataLoader (extrapolated from ``max_batches`` if given), and images seen."""
    loader = conventional_loader(config.batch_size, workers, config.seed)
    models = {k: m.to(device) for k, m in build_four_models(seed=config.seed).items()}
    optimizer = build_optimizer(models, config)
    seen = 0
    started = time.perf_counter()
    for i, (x, y) in enumerate(loader):
        x, y = x.to(device), y.to(device)
        train_step(models, optimizer, x, y, y < 10)
        seen += len(y)
        if max_batches is not None and i + 1 >= max_batches:
            break
    if device.type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - started
    return seconds * len(loader.dataset) / seen, seen


def main() -> None:
    """Run both measurements in one process and print their ratio."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--workers", type=int, default=2, help="DataLoader worker processes for the baseline")
    parser.add_argument(
        "--baseline-batches", type=int, default=None, help="time only this many baseline batches and extrapolate"
    )
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    device = resolve_device(args.device)
    config = TrainConfig(epochs=1, batch_size=args.batch_size)
    load_before = os.getloadavg()
    fast = time_fast_epoch(config, device)
    floor = time_model_only_epoch(config, device, 110_000)
    baseline, seen = time_baseline_epoch(config, device, args.workers, args.baseline_batches)
    table = pd.DataFrame(
        [
            {"pipeline": "tensor batches (moe_utils)", "seconds_per_epoch": fast, "images_timed": 110_000},
            {
                "pipeline": "optimiser steps alone, one fixed batch (floor)",
                "seconds_per_epoch": floor,
                "images_timed": 200 * args.batch_size,
            },
            {
                "pipeline": f"DataLoader + per-sample transforms ({args.workers} workers)",
                "seconds_per_epoch": baseline,
                "images_timed": seen,
            },
        ]
    )
    table["speedup_vs_baseline"] = baseline / table["seconds_per_epoch"]
    table["batch_size"] = args.batch_size
    table["device"] = str(device) if device.type == "cpu" else torch.cuda.get_device_name()
    table["machine"] = f"{platform.machine()} {platform.processor() or ''} {torch.get_num_threads()} threads".strip()
    load_after = os.getloadavg()
    table["load_average_1min_before"], table["load_average_1min_after"] = load_before[0], load_after[0]
    with atomic_path(paths.BENCHMARK_RESULTS_DIR / "bench_train.csv") as tmp:
        table.to_csv(tmp, index=False)
    print(table.to_string(index=False))
    print(
        f"load average (1 / 5 / 15 min) before: {' / '.join(f'{v:.2f}' for v in load_before)}, after: "
        f"{' / '.join(f'{v:.2f}' for v in load_after)} on {os.cpu_count()} cores (a quiet machine sits near 0 before)"
    )
    print(
        f"ratio (baseline / tensor batches): {baseline / fast:.1f}x; "
        f"data handling is {1 - floor / fast:.0%} of the tensor-batch epoch; ceiling for any pipeline: {baseline / floor:.1f}x"
    )


if __name__ == "__main__":
    main()
