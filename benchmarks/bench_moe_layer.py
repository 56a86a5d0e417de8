"""Tokens/s of forward + backward through our MoE feed-forward layer against Hugging Face's Mixtral MoE block.

In one run and one configuration (hidden size, expert hidden size, experts, top-k, tokens, dtype) it times
- ours: ``moe_utils.moe_layer.MoEFeedForward`` (stacked SwiGLU experts, sort-based dispatch; torch._grouped_mm
  where supported), and ours-loop: the same layer forced onto its per-expert slice loop (``dispatch="loop"``);
- hf: transformers' ``MixtralSparseMoeBlock`` with the experts implementation that ``from_pretrained`` picks by
  default ("grouped_mm"), hf-eager: the same block with its per-expert Python loop ("eager"), and hf-batched: its
  "batched_mm" (each token's experts' weights gathered, then one bmm), run only where that gather fits in
  ``BATCHED_MM_LIMIT_GB`` (at SmolLM2's shapes it would need tens of GB);
- dense: a dense SwiGLU feed-forward with the same active parameters per token (hidden = top_k * d_expert),
  the floor for the expert math with no routing or dispatch.
It first copies our weights into the peer (``to_mixtral_state_dict``) and prints the relative error of the
outputs and of the input gradients, so that both sides compute the same function. Each timed step is
forward + ``backward(probe)`` with parameter gradients reset; the implementations take turns each round (so
a noisy shared machine slows all of them alike) and the median of the rounds is reported after warm-up rounds.
The table is printed last and written to benchmarks/results/bench_moe_layer[_<preset>].csv (or --csv), with the machine.
On CPU the preset uses 1 thread (--threads): on a shared machine, 2-thread OpenMP matmuls stall on a descheduled
thread (a time slice per call), which measures the neighbours rather than the layers.

    python benchmarks/bench_moe_layer.py --preset cpu     # float32, small: ~20 s of CPU time, 1 min on a busy box
    python benchmarks/bench_moe_layer.py --preset gpu     # bfloat16, Mixtral-like sizes; needs CUDA
    python benchmarks/bench_moe_layer.py --preset smollm2 # float32, notebook 09's experts (d 576, width 1536), 2 threads
    python benchmarks/bench_moe_layer.py --preset cpu --threads 0 --iters 9   # torch's default thread count

Needs transformers (the ``bench`` extra): pip install -e ".[bench]".
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace

import pandas as pd
import torch
from torch import nn

from moe_utils.io import paths
from moe_utils.io.atomic import atomic_path
from moe_utils.moe.layer import DenseFeedForward, MoEFeedForward
from moe_utils.moe.router import RouterConfig

try:
    import transformers
    from transformers import MixtralConfig
    from transformers.models.mixtral.modeling_mixtral import MixtralSparseMoeBlock
except ImportError as error:  # one line instead of a traceback
    raise SystemExit(
        f"bench_moe_layer needs transformers ({error}); install it with: pip install -e '.[bench]'"
    ) from None


@dataclass(frozen=True)
class Shape:
    """One benchmark configuration."""

    d_model: int
    d_expert: int
    n_experts: int
    top_k: int
    tokens: int


@dataclass(frozen=True)
class Preset:
    """Device, dtype, shapes and iteration counts of one --preset."""

    device: str
    dtype: torch.dtype
    shapes: tuple[Shape, ...]
    warmup: int
    iters: int
    check_tokens: int  # tokens used for the equivalence check
    threads: int = 0  # torch.set_num_threads; 0 keeps torch's default


PRESETS = {
    "cpu": Preset(
        "cpu",
        torch.float32,
        (Shape(256, 512, 8, 2, 2048), Shape(256, 256, 32, 4, 1024)),
        warmup=1,
        iters=5,
        check_tokens=256,
        threads=1,
    ),
    "smollm2": Preset(
        "cpu",
        torch.float32,
        (Shape(576, 1536, 8, 2, 2048), Shape(576, 1536, 8, 2, 8192)),
        warmup=1,
        iters=5,
        check_tokens=256,
        threads=2,  # notebook 09 trains on 2 threads
    ),
    "gpu": Preset(
        "cuda",
        torch.bfloat16,
        (Shape(1024, 2048, 8, 2, 65536), Shape(1024, 2048, 8, 2, 16384), Shape(1024, 1024, 64, 8, 16384)),
        warmup=5,
        iters=20,
        check_tokens=4096,
    ),
}


BATCHED_MM_LIMIT_GB = 2.0  # hf-batched runs only where its gathered expert weights fit in this


def batched_mm_gb(shape: Shape, dtype: torch.dtype) -> float:
    """GB that "batched_mm" gathers: each (token, slot)'s gate, up and down weights."""
    return shape.tokens * shape.top_k * 3 * shape.d_model * shape.d_expert * torch.finfo(dtype).bits / 8 / 1e9


def peer_block(shape: Shape, implementation: str) -> MixtralSparseMoeBlock:
    """transformers' MixtralSparseMoeBlock for ``shape`` whose experts run ``implementation`` ("eager", "grouped_mm")."""
    config = MixtralConfig(
        hidden_size=shape.d_model,
        intermediate_size=shape.d_expert,
        num_local_experts=shape.n_experts,
        num_experts_per_tok=shape.top_k,
        router_jitter_noise=0.0,
    )
    config._experts_implementation = implementation  # what from_pretrained(experts_implementation=...) sets
    return MixtralSparseMoeBlock(config)


def peer_layout(block: nn.Module) -> str:
    """The peer's expert weight layout: "stacked" (gate_up_proj/down_proj) or "legacy" (experts.{e}.w1)."""
    return "stacked" if "experts.gate_up_proj" in block.state_dict() else "legacy"


def build_layers(shape: Shape, device: str, dtype: torch.dtype, seed: int = 0) -> dict[str, nn.Module]:
    """Ours, the peer (both experts implementations) with our weights copied in, and the dense floor."""
    generator = torch.Generator().manual_seed(seed)
    router = RouterConfig(n_experts=shape.n_experts, top_k=shape.top_k)
    ours = MoEFeedForward(shape.d_model, shape.d_expert, router, generator=generator)
    loop = MoEFeedForward(shape.d_model, shape.d_expert, router, dispatch="loop")
    loop.load_state_dict(ours.state_dict())
    layers = {"ours": ours, "ours-loop": loop}
    peers = [("hf", "grouped_mm"), ("hf-eager", "eager")]
    if batched_mm_gb(shape, dtype) <= BATCHED_MM_LIMIT_GB:
        peers.append(("hf-batched", "batched_mm"))
    for name, implementation in peers:
        block = peer_block(shape, implementation)
        block.load_state_dict(ours.to_mixtral_state_dict(peer_layout(block)))
        layers[name] = block
    layers["dense"] = DenseFeedForward(shape.d_model, shape.top_k * shape.d_expert, generator=generator)
    return {name: layer.to(device=device, dtype=dtype).train() for name, layer in layers.items()}


def forward_backward(layer: nn.Module, x: torch.Tensor, probe: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """One training step's layer work: output and d(output·probe)/dx, parameter gradients freshly allocated."""
    layer.zero_grad(set_to_none=True)
    x = x.detach().requires_grad_()
    out = layer(x)
    out.backward(probe)
    return out.detach(), x.grad


def relative_error(got: torch.Tensor, want: torch.Tensor) -> float:
    """||got - want|| / ||want|| in float64."""
    got, want = got.double(), want.double()
    return float((got - want).norm() / want.norm())


def check_same_function(
    layers: dict[str, nn.Module], shape: Shape, tokens: int, device: str, dtype: torch.dtype
) -> dict[str, float]:
    """Relative error of each peer's output and input gradient against ours, on shared weights and inputs."""
    generator = torch.Generator().manual_seed(1)
    x = torch.randn(1, tokens, shape.d_model, generator=generator).to(device, dtype)
    probe = torch.randn(1, tokens, shape.d_model, generator=generator).to(device, dtype)
    out, grad = forward_backward(layers["ours"], x, probe)
    errors = {}
    for name in [n for n in ("ours-loop", "hf", "hf-eager", "hf-batched") if n in layers]:
        peer_out, peer_grad = forward_backward(layers[name], x, probe)
        errors[f"rel_err_out_{name}"] = relative_error(out, peer_out)
        errors[f"rel_err_grad_{name}"] = relative_error(grad, peer_grad)
    return errors


def synchronize(device: str) -> None:
    """Wait for queued GPU work (no-op on CPU)."""
    if device == "cuda":
        torch.cuda.synchronize()


def timed(step: Callable[[], object], device: str) -> float:
    """Wall-clock seconds of one call of ``step``, device work included."""
    synchronize(device)
    started = time.perf_counter()
    step()
    synchronize(device)
    return time.perf_counter() - started


def median_seconds(
    layers: dict[str, nn.Module], x: torch.Tensor, probe: torch.Tensor, warmup: int, iters: int, device: str
) -> dict[str, float]:
    """Median seconds per forward + backward of each layer; layers take turns within every round."""
    samples: dict[str, list[float]] = {name: [] for name in layers}
    for round_ in range(warmup + iters):
        for name, layer in layers.items():
            seconds = timed(lambda layer=layer: forward_backward(layer, x, probe), device)
            if round_ >= warmup:
                samples[name].append(seconds)
    for layer in layers.values():
        layer.zero_grad(set_to_none=True)
    return {name: statistics.median(s) for name, s in samples.items()}


def machine_name(device: str) -> str:
    """GPU name, or CPU model and torch thread count."""
    if device == "cuda":
        return torch.cuda.get_device_name()
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            model = next(line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{model} ({torch.get_num_threads()} torch threads of {os.cpu_count()} CPUs)"


def run_shape(shape: Shape, preset: Preset) -> dict[str, object]:
    """Check equivalence, then time every implementation on ``shape``; one table row."""
    layers = build_layers(shape, preset.device, preset.dtype)
    errors = check_same_function(layers, shape, min(preset.check_tokens, shape.tokens), preset.device, preset.dtype)
    print(f"{shape}: same function? " + ", ".join(f"{k}={v:.1e}" for k, v in errors.items()), flush=True)
    generator = torch.Generator().manual_seed(2)
    x = torch.randn(1, shape.tokens, shape.d_model, generator=generator).to(preset.device, preset.dtype)
    probe = torch.randn(1, shape.tokens, shape.d_model, generator=generator).to(preset.device, preset.dtype)
    seconds = median_seconds(layers, x, probe, preset.warmup, preset.iters, preset.device)
    rate = {name: shape.tokens / s for name, s in seconds.items()}
    row: dict[str, object] = asdict(shape) | {"dtype": str(preset.dtype).removeprefix("torch.")}
    row |= {f"tok_s_{name}": round(r) for name, r in rate.items()}
    for other in ("hf", "hf-eager", "hf-batched", "dense", "ours-loop"):
        row[f"ours/{other}"] = round(rate["ours"] / rate[other], 2) if other in rate else None
    fastest = max((n for n in rate if n.startswith("hf")), key=rate.get)
    row["fastest transformers"] = fastest
    row["ours/fastest transformers"] = round(rate["ours"] / rate[fastest], 2)
    if "hf-batched" not in rate:
        row["hf-batched"] = f"not run: would gather {batched_mm_gb(shape, preset.dtype):.0f} GB"
    row |= {k: float(f"{v:.1e}") for k, v in errors.items()}
    return row


def main() -> None:
    """Parse arguments, run every shape of the preset, print the table last and write the CSV."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", choices=sorted(PRESETS), default="cpu")
    parser.add_argument("--iters", type=int, default=None, help="timed rounds (median reported); preset default")
    parser.add_argument("--warmup", type=int, default=None, help="untimed rounds first; preset default")
    parser.add_argument(
        "--threads", type=int, default=None, help="torch CPU threads (0: torch's default); preset default"
    )
    parser.add_argument("--csv", default=None, help="default: results/bench_moe_layer[_<preset>].csv (cpu: no suffix)")
    args = parser.parse_args()
    preset = PRESETS[args.preset]
    suffix = "" if args.preset == "cpu" else f"_{args.preset}"
    args.csv = args.csv or str(paths.BENCHMARK_RESULTS_DIR / f"bench_moe_layer{suffix}.csv")
    if preset.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit(f"--preset {args.preset} needs a CUDA GPU and this machine has none; use --preset cpu")
    overrides = {"warmup": args.warmup, "iters": args.iters, "threads": args.threads}
    preset = replace(preset, **{k: v for k, v in overrides.items() if v is not None})
    if preset.threads:
        torch.set_num_threads(preset.threads)
    torch.manual_seed(0)
    rows = [run_shape(shape, preset) for shape in preset.shapes]
    table = pd.DataFrame(rows)
    table["machine"] = machine_name(preset.device)
    table["torch"] = torch.__version__
    table["transformers"] = transformers.__version__
    with atomic_path(args.csv) as tmp:
        table.to_csv(tmp, index=False)
    print(
        f"\nforward+backward tokens/s, median of {preset.iters} rounds after {preset.warmup} warm-up; torch "
        f"{torch.__version__}, transformers {transformers.__version__}; all columns in {args.csv}"
    )
    shown = [c for c in table.columns if not c.startswith("rel_err") and c not in ("torch", "transformers")]
    print(table[shown].to_string(index=False))


if __name__ == "__main__":
    main()
