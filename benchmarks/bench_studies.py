"""How much of this CPU the studies' training uses, and what stacking seeds would buy (issue #22's time question).

For the model of each study (04–07, their committed settings), one training step's FLOPs are counted with
``torch.utils.flop_counter.FlopCounterMode`` (forward + backward matmuls and attention), the step is timed on one
thread (how the studies train: one thread per process), and the achieved FLOP/s is set against this CPU's one-thread
matmul peak measured in the same run (one large ``torch.mm``). For the dense models of 06 and 07, S seeds trained as
one stacked model (``stacked_training.py``: batched matmuls, per-seed clipping) are timed against S models trained one
after another. Prints the load average beside the table: figures taken while another job shares the cores are off.

Notebook 09's step (SmolLM2 upcycled, its MoE layers and the LM head from cached inputs) is timed on the threads
the notebook uses (2) against the matmul peak on as many threads; its FLOPs are counted with the experts run by the
"eager" implementation (plain matmuls the counter sees; ``torch._grouped_mm`` is not counted), then the step is timed
with the implementation the notebook trains with.

    .venv/bin/python benchmarks/bench_studies.py [--steps 30]
"""

from __future__ import annotations

import argparse
import copy
import os
import time
from pathlib import Path

import pandas as pd
import torch
from stacked_training import answer_losses, train_stacked
from torch.nn import functional as F
from torch.utils.flop_counter import FlopCounterMode

from moe_utils.datasets.cognitive_tasks import ASCII_VOCAB_SIZE, balanced_batch, make_task_data
from moe_utils.datasets.corpora import BYTE_VOCAB_SIZE
from moe_utils.io.atomic import atomic_path
from moe_utils.measures.hooks import record
from moe_utils.moe.transformer import TransformerModel
from moe_utils.runtime import make_generator
from moe_utils.studies.expert_load.settings import ExpertLoadSettings
from moe_utils.studies.head_importance.settings import HeadImportanceSettings
from moe_utils.studies.layer_activation.settings import LayerActivationSettings
from moe_utils.studies.routing_stability.settings import StabilitySettings

RESULTS = Path(__file__).resolve().parent / "results"


def matmul_peak(n: int = 1024, repeats: int = 10) -> float:
    """FLOP/s of one n×n by n×n ``torch.mm`` on this thread (best of ``repeats``)."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    torch.mm(a, b)
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - started)
    return 2 * n**3 / best


def study_models():
    """(study, model, batch function, loss function) for the committed settings of 04–07."""
    s04, s05 = StabilitySettings(), ExpertLoadSettings()
    s06, s07 = HeadImportanceSettings(), LayerActivationSettings()
    g = make_generator(0)
    m04 = TransformerModel(s04.model, input="patches", patch_dim=s04.patch**2, n_classes=20, seed=0)
    tokens04 = (32 // s04.patch) ** 2

    def batch04():
        return torch.rand(s04.batch_size, tokens04, s04.patch**2, generator=g), torch.randint(20, (s04.batch_size,))

    def with_aux(model, forward):
        """The forward's output and the routers' aux loss of that forward (as ``train_steps`` adds it)."""
        with record(model.routers()) as seen:
            out = forward()
        return out, model.aux_loss([seen.output(i) for i in range(len(model.moe_layers))])

    def loss04(model, batch):
        logits, aux = with_aux(model, lambda: model(batch[0]))
        return F.cross_entropy(logits, batch[1]) + aux

    m05 = TransformerModel(s05.config("standard", "aux_loss"), "tokens", BYTE_VOCAB_SIZE, head="lm", seed=0)
    n05 = s05.seqs_per_domain * 3  # three domains per batch

    def batch05():
        return (torch.randint(BYTE_VOCAB_SIZE, (n05, s05.seq_len + 1), generator=g),)

    def loss05(model, batch):
        x = batch[0]
        logits, aux = with_aux(model, lambda: model(x[:, :-1]))  # [B, S, V]
        return F.cross_entropy(logits.flatten(0, 1), x[:, 1:].flatten()) + aux

    out = [("04 routing stability", m04, batch04, loss04), ("05 expert load", m05, batch05, loss05)]
    for name, s in (("06 head importance", s06), ("07 layer activation", s07)):
        train = make_task_data(0, s.sizes["n_train"], s.sizes["n_held_out"], seq_len=s.seq_len)[0]
        model = TransformerModel(s.model, input="tokens", vocab_size=ASCII_VOCAB_SIZE, head="lm", seed=0)
        out.append((name, model, lambda s=s, t=train: balanced_batch(t, s.batch_size, g), answer_loss))
    return out


def upcycled_step(steps: int) -> dict:
    """Notebook 09's training step at its committed settings: FLOPs (eager experts), seconds (its implementation)."""
    from moe_utils.hf.partial import cached_layer_output
    from moe_utils.studies.upcycled_moe.job import EXPERTS_IMPLEMENTATION, build_model, first_moe_layer
    from moe_utils.studies.upcycled_moe.method import train_step, trainable_parameters
    from moe_utils.studies.upcycled_moe.settings import UpcycledSettings

    settings = UpcycledSettings()
    torch.set_num_threads(settings.threads)
    peak = matmul_peak()
    model, first = build_model(settings, "aux_free", settings.seed), first_moe_layer(settings)
    optimizer = torch.optim.AdamW(trainable_parameters(model, first), lr=settings.lr)
    n = 3 * settings.per_domain
    windows = torch.randint(
        0, model.config.vocab_size, (n, settings.seq_len), generator=torch.Generator().manual_seed(0)
    )
    hidden = cached_layer_output(model, windows, first)  # [B, S, d]
    ids = torch.arange(3).repeat_interleave(settings.per_domain)

    def step():
        return train_step(model, optimizer, hidden, windows, ids, first, "aux_free", settings.gamma)

    model.set_experts_implementation("eager")
    with FlopCounterMode(display=False) as counter:
        step()
    model.set_experts_implementation(EXPERTS_IMPLEMENTATION)
    for _ in range(2):
        step()
    started = time.perf_counter()
    for _ in range(steps):
        step()
    seconds = (time.perf_counter() - started) / steps
    flops = counter.get_total_flops()
    torch.set_num_threads(1)
    return {"study": "09 upcycled MoE", "measure": f"one training step ({settings.threads} threads, "
            f"{n * settings.seq_len} tokens)", "MFLOP per step": flops / 1e6, "ms per step": seconds * 1e3,
            "GFLOP/s": flops / seconds / 1e9, "of peak": flops / seconds / peak, "tokens/s": n * settings.seq_len / seconds,
            "peak_gflops_same_threads": peak / 1e9}  # fmt: skip


def answer_loss(model, batch):
    """The answer byte's cross-entropy (06 and 07's training loss)."""
    return F.cross_entropy(model(batch[0])[:, -1], batch[1])


def step_flops_and_seconds(model, batch_fn, loss_fn, steps: int) -> tuple[float, float]:
    """(FLOPs of one forward + backward, seconds of one AdamW step, the mean over ``steps``)."""
    with FlopCounterMode(display=False) as counter:
        loss_fn(model, batch_fn()).backward()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    batches = [batch_fn() for _ in range(steps + 3)]
    for i, batch in enumerate(batches):
        if i == 3:
            started = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        loss_fn(model, batch).backward()
        optimizer.step()
    return counter.get_total_flops(), (time.perf_counter() - started) / steps


def stacked_ratio(settings, n_seeds: int, steps: int) -> tuple[float, float]:
    """(seconds per seed-step one after another, stacked) for ``n_seeds`` models of ``settings``."""
    trains = [make_task_data(s, settings.sizes["n_train"], 10, seq_len=settings.seq_len)[0] for s in range(n_seeds)]
    models = [
        TransformerModel(settings.model, input="tokens", vocab_size=ASCII_VOCAB_SIZE, head="lm", seed=s)
        for s in range(n_seeds)
    ]
    loop = copy.deepcopy(models)
    gens = [make_generator(s + 1) for s in range(n_seeds)]
    optimizers = [torch.optim.AdamW(m.parameters(), lr=settings.lr) for m in loop]
    started = time.perf_counter()
    for _ in range(steps):
        for model, optimizer, train, gen in zip(loop, optimizers, trains, gens):
            optimizer.zero_grad(set_to_none=True)
            answer_loss(model, balanced_batch(train, settings.batch_size, gen)).backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
    one_by_one = (time.perf_counter() - started) / steps / n_seeds
    gens = [make_generator(s + 1) for s in range(n_seeds)]

    def next_batch(step):
        xs, ys = zip(*[balanced_batch(t, settings.batch_size, g) for t, g in zip(trains, gens)])
        return torch.stack(xs), torch.stack(ys)

    started = time.perf_counter()
    train_stacked(models, next_batch, answer_losses, steps, lr=settings.lr, max_grad_norm=1.0)
    return one_by_one, (time.perf_counter() - started) / steps / n_seeds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30, help="timed steps per measurement")
    parser.add_argument("--out", default=str(RESULTS / "bench_studies.csv"), help="where the table is written")
    args = parser.parse_args()
    rows = []
    torch.set_num_threads(1)  # the studies train one thread per process
    load = os.getloadavg()
    peak = matmul_peak()
    print(f"load average {load[0]:.2f} / {load[1]:.2f} / {load[2]:.2f}; torch {torch.__version__}, 1 thread")
    print(f"matmul peak (1024² torch.mm, 1 thread): {peak / 1e9:.1f} GFLOP/s\n")
    print(f"{'study':24s} {'MFLOP/step':>11s} {'ms/step':>8s} {'GFLOP/s':>8s} {'of peak':>8s}")
    for name, model, batch_fn, loss_fn in study_models():
        flops, seconds = step_flops_and_seconds(model, batch_fn, loss_fn, args.steps)
        rate = flops / seconds
        rows.append({"study": name, "measure": "one training step", "MFLOP per step": flops / 1e6,
                     "ms per step": seconds * 1e3, "GFLOP/s": rate / 1e9, "of peak": rate / peak})  # fmt: skip
        print(
            f"{name:24s} {flops / 1e6:11.0f} {seconds * 1e3:8.1f} {flops / seconds / 1e9:8.2f} {flops / seconds / peak:8.1%}"
        )
    row = upcycled_step(max(3, args.steps // 5))
    rows.append(row)
    print(f"{row['study']:24s} {row['MFLOP per step']:11.0f} {row['ms per step']:8.1f} {row['GFLOP/s']:8.2f} "
          f"{row['of peak']:8.1%}  ({row['measure']}; peak on those threads {row['peak_gflops_same_threads']:.1f} GFLOP/s, "
          f"{row['tokens/s']:.0f} tokens/s)")  # fmt: skip
    print("\nseeds stacked into one model (batched matmuls) against one after another, per seed-step:")
    for name, settings in (
        ("06 head importance", HeadImportanceSettings()),
        ("07 layer activation", LayerActivationSettings()),
    ):
        for n_seeds in (3, 6):
            alone, stacked = stacked_ratio(settings, n_seeds, args.steps)
            rows.append({"study": name, "measure": f"{n_seeds} seeds stacked", "ms per seed-step alone": alone * 1e3,
                         "ms per seed-step stacked": stacked * 1e3, "speed-up": alone / stacked})  # fmt: skip
            print(f"{name:24s} {n_seeds} seeds: {alone * 1e3:6.1f} ms alone, {stacked * 1e3:6.1f} ms stacked, "
                  f"speed-up {alone / stacked:.2f}x")  # fmt: skip
    end = os.getloadavg()[0]
    print(f"\nload average at the end {end:.2f}")
    table = pd.DataFrame(rows).assign(
        peak_gflops=peak / 1e9, load_average_start=load[0], load_average_end=end, torch=torch.__version__
    )
    with atomic_path(args.out) as tmp:
        table.to_csv(tmp, index=False)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
