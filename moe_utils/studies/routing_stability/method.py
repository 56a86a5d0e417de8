"""Routing stability under input noise: top-k selection sets, Jaccard, relative Gaussian noise, consistency loss."""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, replace
from typing import NamedTuple

import pandas as pd
import torch
from torch.nn import functional as F

from ...datasets.mnist_cifar import slug
from ...errors import MoeError, check_choice, check_nonnegative, check_positive
from ...measures import hooks
from ...measures.routing import jaccard, relative_noise, selection_sets
from ...moe.router import NOISES, Router
from ...moe.training import train_steps, warmup_cosine
from ...moe.transformer import TransformerConfig, TransformerModel, image_to_patches
from ...runtime import make_generator

SURROGATES = ("probs", "scaled")


def soft_jaccard(p: torch.Tensor, q: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """Differentiable Jaccard Σ min(p,q) / Σ max(p,q) over the last dim -> [...]; 1 when p == q."""
    return torch.minimum(p, q).sum(-1) / torch.maximum(p, q).sum(-1).clamp_min(eps)


def surrogate_probs(
    router: Router, x: torch.Tensor, kind: str, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Router probabilities for the consistency term: "probs" = router scores, "scaled" = softmax of standardised logits."""
    check_choice("surrogate", kind, SURROGATES)
    if kind == "probs":
        return router(x, generator).scores  # [B, S, E]
    logits = router.logits(x, generator).float()  # [B, S, E]
    z = (logits - logits.mean(-1, keepdim=True)) / logits.std(-1, keepdim=True).clamp_min(1e-6)
    return z.softmax(-1)  # temperature fixed: shrinking the gate weights cannot flatten it


def consistency_loss(
    model: TransformerModel, seen: hooks.Recording, sigma: float, generator: torch.Generator, kind: str = "probs"
) -> torch.Tensor:
    """Mean over MoE layers and tokens of 1 - soft_jaccard(p(x), p(x')) on each router's input x in the forward
    ``seen`` recorded (``hooks.record(model.routers())``)."""
    terms = []
    for i, layer in enumerate(model.moe_layers):
        x = seen.input(i)  # [B, S, d]
        p = seen.output(i).scores if kind == "probs" else surrogate_probs(layer.router, x, kind, generator)
        q = surrogate_probs(layer.router, relative_noise(x, sigma, generator), kind, generator)
        terms.append((1 - soft_jaccard(p, q)).mean())
    return torch.stack(terms).mean()


def patch_batches(images: torch.Tensor, patch: int, batch_size: int):
    """Yield (start, patches [b, S, patch²]) over uint8 images [N, H, W] in order."""
    for start in range(0, len(images), batch_size):
        yield start, image_to_patches(images[start : start + batch_size], patch)


@torch.no_grad()
def routing_sets(model: TransformerModel, patches: torch.Tensor) -> list[torch.Tensor]:
    """Per MoE layer, bool selection sets [B, S, E] of the clean input patches [B, S, P] (eval mode)."""
    model.eval()
    with hooks.record(model.routers()) as seen:
        model(patches)
    return [
        selection_sets(layer.router(seen.input(i)).topk_idx, layer.n_experts)
        for i, layer in enumerate(model.moe_layers)
    ]


DATASET_KEYS = ("mnist", "cifar")  # the two datasets' names in tables (``slug`` of the data's names)


def add_jaccards(
    sums: dict, key: tuple[int, float], j: torch.Tensor, is_first: torch.Tensor, keys: tuple[str, str] = DATASET_KEYS
) -> None:
    """Add per-token Jaccards j [b, S] of images flagged ``is_first`` [b] to running sums keyed (layer, dataset, σ)."""
    layer, sigma = key
    for name, rows in ((keys[0], is_first), (keys[1], ~is_first)):
        jj = j[rows]
        acc = sums.setdefault((layer, name, sigma), [0.0, 0.0, 0])
        acc[0] += float(jj.sum())
        acc[1] += float((jj < 1).sum())
        acc[2] += jj.numel()


def jaccard_table(sums: dict) -> pd.DataFrame:
    """Mean Jaccard and changed-set share per (layer, dataset, σ) from ``add_jaccards``'s sums."""
    rows = [
        {"layer": li + 1, "dataset": name, "sigma": sigma, "jaccard": s / n, "changed": c / n, "tokens": n}
        for (li, name, sigma), (s, c, n) in sums.items()
    ]
    return pd.DataFrame(rows).sort_values(["layer", "dataset", "sigma"]).reset_index(drop=True)


def clean_passes(
    model: TransformerModel, images: torch.Tensor, is_first: torch.Tensor, patch: int, batch_size: int, points=None
):
    """Yield (patches [b, S, P], first-dataset flags [b], what the forward recorded) per batch: an eval-mode forward of
    the clean patches under ``hooks.record(points)`` (default: the routers)."""
    model.eval()
    for start, x in patch_batches(images, patch, batch_size):
        with hooks.record(model.routers() if points is None else points) as seen:
            model(x)
        yield x, is_first[start : start + len(x)], seen


@torch.no_grad()
def stability_curves(
    model: TransformerModel,
    images: torch.Tensor,
    is_first: torch.Tensor,
    sigmas: list[float],
    patch: int,
    seed: int,
    batch_size: int = 250,
    keys: tuple[str, str] = DATASET_KEYS,
) -> pd.DataFrame:
    """Mean Jaccard and changed-set fraction per (layer, dataset, σ), perturbing each layer's router input alone."""
    generator = make_generator(seed)
    sums: dict[tuple, list[float]] = {}
    for _, first, seen in clean_passes(model, images, is_first, patch, batch_size):
        for li, layer in enumerate(model.moe_layers):
            h = seen.input(li)  # [b, S, d]
            orig = selection_sets(layer.router(h).topk_idx, layer.n_experts)  # [b, S, E]
            for sigma in sigmas:
                pert = selection_sets(layer.router(relative_noise(h, sigma, generator)).topk_idx, layer.n_experts)
                j = jaccard(orig, pert)  # [b, S]
                add_jaccards(sums, (li, sigma), j, first, keys)
    return jaccard_table(sums)


@torch.no_grad()
def input_noise_curves(
    model: TransformerModel,
    images: torch.Tensor,
    is_first: torch.Tensor,
    sigmas: list[float],
    patch: int,
    seed: int,
    batch_size: int = 250,
    keys: tuple[str, str] = DATASET_KEYS,
) -> pd.DataFrame:
    """The source's variant: x' = x + ε on the model's input (pixel patches, σ relative to each patch's RMS).

    The whole model runs on x and on x'; each MoE layer's top-k sets are compared (mean Jaccard and changed-set
    fraction per layer, dataset and σ), so a layer's change includes everything the noise did below it.
    """
    generator = make_generator(seed)
    sums: dict[tuple, list[float]] = {}
    for x, first, seen in clean_passes(model, images, is_first, patch, batch_size):
        orig = [
            selection_sets(seen.output(li).topk_idx, layer.n_experts) for li, layer in enumerate(model.moe_layers)
        ]  # [b, S, E] each
        for sigma in sigmas:
            with hooks.record(model.routers()) as noisy:
                model(relative_noise(x, sigma, generator))
            for li, layer in enumerate(model.moe_layers):
                j = jaccard(orig[li], selection_sets(noisy.output(li).topk_idx, layer.n_experts))  # [b, S]
                add_jaccards(sums, (li, sigma), j, first, keys)
    return jaccard_table(sums).assign(noise_at="model input")


def sequence_relative_noise(x: torch.Tensor, sigma: float, generator: torch.Generator) -> torch.Tensor:
    """x + ε with ε ~ N(0, (σ·rms(x))² I), the rms over each sequence's tokens and dimensions together: a token whose
    value is zero is perturbed like its neighbours (``relative_noise``'s per-token rms leaves it untouched). x: [B, S, d]."""
    check_nonnegative("sigma", sigma)
    rms = x.pow(2).mean((-2, -1), keepdim=True).sqrt()  # [B, 1, 1]
    z = torch.randn(x.shape, generator=generator, device=generator.device, dtype=x.dtype).to(x.device)  # [B, S, d]
    return x + sigma * rms * z


@torch.no_grad()
def block_input_curves(
    model: TransformerModel,
    images: torch.Tensor,
    is_first: torch.Tensor,
    sigmas: list[float],
    patch: int,
    seed: int,
    batch_size: int = 250,
    keys: tuple[str, str] = DATASET_KEYS,
) -> pd.DataFrame:
    """The source's placement, one block at a time: x' = x + ε on each MoE block's input hidden state (the residual
    stream before its attention; ``sequence_relative_noise``), and only that block runs again on x'. Its top-k sets
    are compared with the clean pass's: mean Jaccard and changed-set fraction per layer, dataset and σ."""
    generator = make_generator(seed)
    blocks = [block for block in model.blocks if block.ffn in model.moe_layers]
    points = {
        **{("block", i): b for i, b in enumerate(blocks)},
        **{("router", i): r for i, r in enumerate(model.routers())},
    }
    sums: dict[tuple, list[float]] = {}
    for _, first, seen in clean_passes(model, images, is_first, patch, batch_size, points):
        for li, (block, layer) in enumerate(zip(blocks, model.moe_layers)):
            orig = selection_sets(seen.output(("router", li)).topk_idx, layer.n_experts)  # [b, S, E]
            for sigma in sigmas:
                with hooks.record([layer.router]) as noisy:
                    block(sequence_relative_noise(seen.input(("block", li)), sigma, generator))
                j = jaccard(orig, selection_sets(noisy.output(0).topk_idx, layer.n_experts))  # [b, S]
                add_jaccards(sums, (li, sigma), j, first, keys)
    return jaccard_table(sums).assign(noise_at="block input")


@torch.no_grad()
def selection_grid(
    model: TransformerModel,
    image: torch.Tensor,
    sigma: float,
    patch: int,
    seed: int,
    layer: int = 1,
    tokens: int = 8,
) -> pd.DataFrame:
    """E_orig, E_pert, E_orig∩E_pert, E_orig∪E_pert of the first ``tokens`` tokens of one image [H, W] at MoE layer
    ``layer`` (long table; layers, tokens and experts numbered from 1)."""
    check_positive("tokens", tokens)
    model.eval()
    with hooks.record(model.routers()) as seen:
        model(image_to_patches(image[None], patch))
    moe = model.moe_layers[layer - 1]
    h = seen.input(layer - 1)  # [1, S, d]
    orig = selection_sets(moe.router(h).topk_idx, moe.n_experts)[0, :tokens]  # [tokens, E]
    pert = selection_sets(moe.router(relative_noise(h, sigma, make_generator(seed))).topk_idx, moe.n_experts)[
        0, :tokens
    ]
    grids = {"E_orig": orig, "E_pert": pert, "intersection": orig & pert, "union": orig | pert}
    rows = []
    for t in range(orig.shape[0]):
        for e in range(moe.n_experts):
            rows.append({"token": t + 1, "expert": e + 1, **{k: int(v[t, e]) for k, v in grids.items()}})
    return pd.DataFrame(rows)


@torch.no_grad()
def accuracy_by_dataset(
    model: TransformerModel,
    images: torch.Tensor,
    labels: torch.Tensor,
    is_first: torch.Tensor,
    patch: int,
    batch_size: int = 500,
    keys: tuple[str, str] = DATASET_KEYS,
) -> dict[str, float]:
    """Test accuracy overall and on each dataset's images (``acc_<key>``)."""
    model.eval()
    correct = torch.cat(
        [model(x).argmax(-1) == labels[s : s + len(x)] for s, x in patch_batches(images, patch, batch_size)]
    )
    return {
        "acc": float(correct.float().mean()),
        f"acc_{keys[0]}": float(correct[is_first].float().mean()),
        f"acc_{keys[1]}": float(correct[~is_first].float().mean()),
    }


@torch.no_grad()
def router_sharpness(
    model: TransformerModel, images: torch.Tensor, patch: int, batch_size: int = 250
) -> dict[str, float]:
    """Mean top-1 router probability, mean logit std (flat routers: small) and effective number of experts used per layer."""
    model.eval()
    top, spread, n = 0.0, 0.0, 0
    loads = [torch.zeros(layer.n_experts) for layer in model.moe_layers]
    for _, x in patch_batches(images, patch, batch_size):
        with hooks.record(model.routers()) as seen:
            model(x)
        for li, layer in enumerate(model.moe_layers):
            logits = layer.router.logits(seen.input(li))  # [b, S, E]
            top += float(logits.softmax(-1).max(-1).values.sum())
            spread += float(logits.std(-1).sum())
            n += logits[..., 0].numel()
            loads[li] += layer.router(seen.input(li)).load
    usage = {
        f"experts_used_layer{li + 1}": float(torch.special.entr(load / load.sum()).sum().exp())
        for li, load in enumerate(loads)
    }
    return {"router_top1_prob": top / n, "router_logit_std": spread / n, **usage}


class RoutingFluctuation:
    """on_step callback: every ``every`` steps, the share of probe tokens whose top-k set changed since the last check."""

    def __init__(self, model: TransformerModel, probe: torch.Tensor, every: int):
        check_positive("every", every)
        self.model, self.probe, self.every = model, probe, every  # probe: [B, S, P] patches
        self.previous: list[torch.Tensor] | None = None
        self.rows: list[dict] = []

    def __call__(self, step: int, row: dict) -> None:
        if (step + 1) % self.every:
            return
        sets = routing_sets(self.model, self.probe)
        self.model.train()
        if self.previous is not None:
            for li, (now, before) in enumerate(zip(sets, self.previous)):
                self.rows.append(
                    {"step": step + 1, "layer": li + 1, "changed": float((now != before).any(-1).float().mean())}
                )
        self.previous = sets

    def frame(self) -> pd.DataFrame:
        """The recorded fluctuation: step, layer, changed."""
        return pd.DataFrame(self.rows, columns=["step", "layer", "changed"])


@dataclass
class RunSpec:
    """One training run: consistency weight λ, training σ, surrogate, router noise and balance-loss weight."""

    name: str
    lam: float = 0.0
    sigma: float = 0.0
    surrogate: str = "probs"
    noise: str = "none"
    balance_alpha: float = 0.0  # > 0: DeepSeek-V3 sequence-wise aux balance loss with this alpha

    def __post_init__(self):
        check_nonnegative("lam", self.lam)
        check_nonnegative("sigma", self.sigma)
        check_choice("surrogate", self.surrogate, SURROGATES)
        check_choice("noise", self.noise, NOISES)
        check_nonnegative("balance_alpha", self.balance_alpha)
        if self.lam > 0 and self.sigma == 0:
            raise MoeError(f"sigma=0 is not allowed with lam={self.lam}; the consistency term needs noise")


def build_run_specs(
    lambdas: list[float],
    train_sigma: float,
    surrogate: str,
    *,
    sigma_sweep: list[float] = (),
    lambda_for_sigma_sweep: float = 1.0,
    extra_surrogate_lambda: float = 0.0,
    balanced_lambda: float = 0.0,
    balance_alpha: float = 0.1,
) -> list[RunSpec]:
    """Notebook 04's runs: λ sweep at ``train_sigma`` (λ = 0 is the baseline), other training σ, the other surrogate,
    noisy top-k gating, and (``balanced_lambda`` > 0) the baseline and one λ with the aux balance loss."""
    if 0.0 not in lambdas:
        raise MoeError(
            f"LAMBDAS={', '.join(f'{v:g}' for v in lambdas)!r} is not allowed; it must include 0 (the baseline)"
        )
    other = "scaled" if surrogate == "probs" else "probs"
    specs = [
        RunSpec(f"λ={lam:g}" if lam else "baseline", lam, train_sigma if lam else 0.0, surrogate) for lam in lambdas
    ]
    specs += [
        RunSpec(f"λ={lambda_for_sigma_sweep:g}, σ_train={s:g}", lambda_for_sigma_sweep, s, surrogate)
        for s in sigma_sweep
        if s != train_sigma
    ]
    if extra_surrogate_lambda:
        specs.append(RunSpec(f"λ={extra_surrogate_lambda:g} ({other})", extra_surrogate_lambda, train_sigma, other))
    specs.append(RunSpec("noisy top-k", surrogate=surrogate, noise="noisy_topk"))
    if balanced_lambda:
        specs.append(RunSpec("baseline + balance", surrogate=surrogate, balance_alpha=balance_alpha))
        specs.append(
            RunSpec(
                f"λ={balanced_lambda:g} + balance", balanced_lambda, train_sigma, surrogate, balance_alpha=balance_alpha
            )
        )
    return specs


def build_seed_specs(lam: float, train_sigma: float, surrogate: str, balance_alpha: float) -> list[RunSpec]:
    """The runs repeated over seeds: baseline, λ, and both with the aux balance loss (names as in ``build_run_specs``)."""
    check_positive("SEED_LAMBDA", lam, integer=False)
    return [
        RunSpec("baseline", surrogate=surrogate),
        RunSpec(f"λ={lam:g}", lam, train_sigma, surrogate),
        RunSpec("baseline + balance", surrogate=surrogate, balance_alpha=balance_alpha),
        RunSpec(f"λ={lam:g} + balance", lam, train_sigma, surrogate, balance_alpha=balance_alpha),
    ]


def make_loss_fn(spec: RunSpec):
    """Cross-entropy + λ·consistency loss for train_steps; logs ce and consistency (1 - soft Jaccard)."""

    def loss_fn(model: TransformerModel, batch, generator: torch.Generator):
        x, y = batch
        with hooks.record(model.routers()) as seen:
            logits = model(x, generator=generator)
        ce = F.cross_entropy(logits, y)
        if spec.lam > 0:
            cons = consistency_loss(model, seen, spec.sigma, generator, spec.surrogate)
            return ce + spec.lam * cons, {"ce": ce.item(), "consistency": cons.item()}
        return ce, {"ce": ce.item()}

    return loss_fn


class TrainedRun(NamedTuple):
    """One trained run: the final model, its history and routing fluctuation, and seconds."""

    model: TransformerModel
    history: pd.DataFrame
    fluctuation: pd.DataFrame
    seconds: float


def train_run(
    spec: RunSpec,
    config: TransformerConfig,
    images: torch.Tensor,
    labels: torch.Tensor,
    probe: torch.Tensor,
    steps: int,
    batch_size: int,
    lr: float,
    patch: int,
    seed: int,
    fluct_every: int,
    n_classes: int = 20,
    warmup: int = 0,
) -> TrainedRun:
    """Train one model on random batches of uint8 images [N, H, W] for exactly ``steps`` AdamW steps, the learning rate
    warmed up linearly over ``warmup`` steps and then decayed (cosine) to 0 at the last step, recording the routing
    fluctuation of ``probe`` every ``fluct_every`` steps."""
    balance = {"balancing": "aux_loss", "aux_loss_alpha": spec.balance_alpha} if spec.balance_alpha else {}
    cfg = replace(config, router=replace(config.router, noise=spec.noise, **balance))
    model = TransformerModel(cfg, input="patches", patch_dim=patch * patch, n_classes=n_classes, seed=seed)
    data_gen = make_generator(seed + 1)  # same batch order for every run
    order = torch.randint(len(images), (steps, batch_size), generator=data_gen)  # [steps, batch]

    def next_batch(step: int):
        idx = order[step]
        return image_to_patches(images[idx], patch), labels[idx]

    fluct = RoutingFluctuation(model, probe, fluct_every)
    started = time.perf_counter()
    history = train_steps(
        model,
        next_batch,
        make_loss_fn(spec),
        steps,
        lr=lr,
        seed=seed,
        on_step=fluct,
        progress=False,
        lr_schedule=lambda step: warmup_cosine(step, steps, warmup),
    )
    return TrainedRun(model, history, fluct.frame(), time.perf_counter() - started)


@contextlib.contextmanager
def noisy_routers(model: TransformerModel, sigma: float, generator: torch.Generator):
    """While active, every MoE router decides on its input plus relative noise (σ · rms per token); the experts still
    get the clean input. Forward pre-hooks on the routers, removed on exit."""

    def perturb(module, args):
        return (relative_noise(args[0], sigma, generator), *args[1:])

    hooks = [layer.router.register_forward_pre_hook(perturb) for layer in model.moe_layers]
    try:
        yield
    finally:
        for hook in hooks:
            hook.remove()


@torch.no_grad()
def prediction_flips(
    model: TransformerModel,
    images: torch.Tensor,
    labels: torch.Tensor,
    sigmas: list[float],
    patch: int,
    seed: int,
    batch_size: int = 500,
) -> pd.DataFrame:
    """What routing instability costs: per σ, the share of test predictions that change and the accuracy when every
    MoE router decides on noisy input (``noisy_routers``) against the clean forward. Columns: sigma, flipped,
    acc_noisy, acc_clean, acc_change."""
    model.eval()

    def predictions() -> torch.Tensor:  # [N]
        return torch.cat([model(x).argmax(-1) for _, x in patch_batches(images, patch, batch_size)])

    clean = predictions()
    generator, rows = make_generator(seed), []
    for sigma in sigmas:
        with noisy_routers(model, sigma, generator):
            noisy = predictions()
        acc_clean, acc_noisy = float((clean == labels).float().mean()), float((noisy == labels).float().mean())
        rows.append(
            {
                "sigma": sigma,
                "flipped": float((noisy != clean).float().mean()),
                "acc_noisy": acc_noisy,
                "acc_clean": acc_clean,
                "acc_change": acc_noisy - acc_clean,
            }
        )
    return pd.DataFrame(rows)


def run_kind(spec: RunSpec) -> str:
    """ "baseline", "consistency" or "noisy_topk", with " + balance" when the aux balance loss is on."""
    kind = "noisy_topk" if spec.noise == "noisy_topk" else ("consistency" if spec.lam > 0 else "baseline")
    return kind + (" + balance" if spec.balance_alpha else "")


def evaluate_run(
    spec: RunSpec,
    model: TransformerModel,
    history: pd.DataFrame,
    seconds: float,
    test,
    probe,
    sigmas: list[float],
    eval_sigma: float,
    patch: int,
    seed: int,
) -> tuple[pd.DataFrame, dict]:
    """One run's accuracy on ``test`` and Jaccard curves on ``probe`` (Splits) -> (curves, trade-off row)."""
    keys = tuple(slug(n) for n in test.dataset_names)
    acc = accuracy_by_dataset(model, test.images, test.labels, test.is_first, patch, keys=keys)
    sigmas = sorted(set(sigmas) | {eval_sigma})
    c = stability_curves(model, probe.images, probe.is_first, sigmas, patch, seed, keys=keys)
    at = c[c.sigma == eval_sigma]
    weights = at.tokens / at.tokens.sum()
    row = {
        "run": spec.name,
        "kind": run_kind(spec),
        "lam": spec.lam,
        "train_sigma": spec.sigma,
        "surrogate": spec.surrogate,
        "noise": spec.noise,
        "balance_alpha": spec.balance_alpha,
        **acc,
        **router_sharpness(model, probe.images, patch),
        "eval_sigma": eval_sigma,
        "jaccard": float((at.jaccard * weights).sum()),
        "changed": float((at.changed * weights).sum()),
        **{f"jaccard_layer{l}": float(g.jaccard @ (g.tokens / g.tokens.sum())) for l, g in at.groupby("layer")},
        **{f"jaccard_{d}": float(g.jaccard @ (g.tokens / g.tokens.sum())) for d, g in at.groupby("dataset")},
        "final_ce": float(history["ce"].tail(50).mean()),
        "train_seconds": seconds,
    }
    return c.assign(run=spec.name), row
