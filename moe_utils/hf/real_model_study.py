"""Notebook 08's study: the source analyses (head importance per function, layer profile, and for MoE models routing
stability and expert load) on a real pretrained LM. Settings -> run -> tables -> findings."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from ..datasets.language_tasks import FAMILIES, make_items, split_halves
from ..errors import MoeError, check_choice, check_int, check_positive
from ..measures.heads import (
    depth_centroid,
    importance_shares,
    importance_table,
    layer_matched_random_mask,
    mean_abs_by_task,
    task_similarity,
    top_head_overlap,
    top_heads_mask,
)
from ..measures.probe import probe_accuracy, probe_importance, train_probe
from ..runtime import PROFILES, make_generator, progress
from ..settings import StudySettings
from ..stats import resampled_interval
from .loading import DTYPES
from .pretrained import REAL_MODELS

QUICK_SIZES = {
    "per_family": 10,
    "n_random": 2,
    "n_boot": 100,
    "probe_steps": 30,
    "max_tokens": 512,
}  # caps of the quick profile (tests)
MASK, PROBE = "head-mask gradient", "probe gradient × activation"
METHODS = (MASK, PROBE)
MATH = "Math Calculation"


@dataclass(frozen=True)
class RealModelSettings(StudySettings):
    """Notebook 08's parameters, validated on construction under the names the user typed."""

    NOTEBOOK = "08_real_models"

    model: str = "smollm2"
    dtype: str = "auto"
    revisions: str = ""
    seed: int = 0
    device: str = "auto"
    profile: str = "full"
    per_family: int = 150
    top_share: float = 0.05
    n_random: int = 10
    n_boot: int = 1000
    probe_steps: int = 300
    threads: int = 0
    batch_size: int = 32
    max_tokens: int = 4096
    sigmas: tuple = (0.05, 0.1, 0.2, 0.5, 1.0)

    QUICK_SIZES = QUICK_SIZES

    def __post_init__(self):
        if not isinstance(self.model, str) or not self.model.strip():
            raise MoeError(
                f"MODEL={self.model!r} is not allowed; write {' | '.join(map(repr, REAL_MODELS))}, "
                "a Hugging Face hub id or a local folder (comma-separated folders: checkpoints)"
            )
        check_choice("DTYPE", self.dtype, DTYPES)
        if not isinstance(self.revisions, str):
            raise MoeError(f'REVISIONS={self.revisions!r} is not allowed; write "" or comma-separated hub revisions')
        check_int("SEED", self.seed)
        check_choice("DEVICE", self.device, ("auto", "cpu", "cuda"))
        check_choice("PROFILE", self.profile, PROFILES)
        for name in ("per_family", "n_random", "n_boot", "probe_steps", "batch_size", "max_tokens"):
            check_positive(name.upper(), getattr(self, name))
        if not isinstance(self.threads, int) or isinstance(self.threads, bool) or self.threads < 0:
            raise MoeError(f"THREADS={self.threads!r} is not allowed; it must be 0 (all cores) or a positive integer")
        share = self.top_share
        if (
            isinstance(share, bool)
            or not isinstance(share, (int, float))
            or not math.isfinite(share)
            or not 0 < share < 1
        ):
            raise MoeError(f"TOP_SHARE={share!r} is not allowed; it must be a number strictly between 0 and 1")
        names = self.checkpoint_names
        if self.revisions and len(names) > 1:
            raise MoeError("REVISIONS is not allowed with several folders in MODEL; give one or the other")
        if self.revisions and (names[0] in REAL_MODELS or Path(names[0]).expanduser().is_dir()):
            raise MoeError(
                f"REVISIONS={self.revisions!r} is not allowed with MODEL={self.model!r}, a local model: "
                "revisions are hub revisions; give checkpoints as comma-separated folders in MODEL instead"
            )

    @property
    def checkpoint_names(self) -> list[str]:
        """MODEL split at commas (one name unless several checkpoint folders are given)."""
        return [m.strip() for m in self.model.split(",") if m.strip()]

    @property
    def tag(self) -> str:
        """The figure-name tag: the real model's key, else a slug of the model's name."""
        name = self.checkpoint_names[0]
        if name in REAL_MODELS:
            return name
        slug = "".join(c if c.isalnum() else "_" for c in Path(name).name.lower()).strip("_")
        return slug or "model"


@dataclass
class RealModelTables:
    """Everything notebook 08 plots and reports; every DataFrame is saved beside its figure."""

    info: dict
    accuracy: pd.DataFrame  # family, n, accuracy, chance, low, high, learned
    shares: dict[str, torch.Tensor]  # method -> [families, L, H]
    importance: pd.DataFrame  # method, family, layer, head, share
    ablation: pd.DataFrame  # method, family, top drop, random drop, margin, low, high
    cross: pd.DataFrame  # method, masked, measured, drop
    specificity: pd.DataFrame  # method, diagonal, off-diagonal, difference, low, high, families
    overlap: pd.DataFrame  # method, family a, family b, shared heads
    similarity: pd.DataFrame  # method, family a, family b, cosine
    math: pd.DataFrame  # method, math cos vs others, others among themselves, depths
    layers: pd.DataFrame  # checkpoint, layer, share, raw grad, relative residual update
    items: pd.DataFrame = field(default_factory=pd.DataFrame)  # per evaluation item and condition: correct


def checked_halves(settings: RealModelSettings):
    """(selection, evaluation) items; a one-line MoeError when PER_FAMILY leaves a family without one half."""
    selection, evaluation = split_halves(make_items(settings.seed, settings.sizes["per_family"]))
    for half, name in ((selection, "selection"), (evaluation, "evaluation")):
        empty = sorted(set(range(len(FAMILIES))) - {i.family for i in half})
        if empty:
            raise MoeError(
                f"PER_FAMILY={settings.per_family} is not allowed; it leaves {FAMILIES[empty[0]]} without "
                f"{name} prompts (use at least 10)"
            )
    return selection, evaluation


def load_model(name: str, settings: RealModelSettings, revision: str | None = None):
    """(model, tokenizer) of one checkpoint, real models resolved to their converted folders."""
    from .loading import DENSE_ARCHITECTURES, MOE_ARCHITECTURES, load_causal_lm
    from .pretrained import resolve_model

    return load_causal_lm(
        resolve_model(name),
        revision=revision,
        dtype=settings.dtype,
        device=settings.device,
        architectures=DENSE_ARCHITECTURES + MOE_ARCHITECTURES,
        purpose="notebook 08",
    )


def head_tables(model, tokenizer, settings: RealModelSettings, log=print) -> RealModelTables:
    """Per-family accuracy, both importance maps (selection half), ablations and the cross-family matrix (evaluation half)."""
    from .heads import head_shape
    from .scoring import build_plan, score

    sizes = settings.sizes
    selection, evaluation = checked_halves(settings)
    fam_sel = torch.tensor([i.family for i in selection])
    fam_eval = np.array([i.family for i in evaluation])
    layers, heads = head_shape(model)
    k = max(1, round(settings.top_share * layers * heads))
    bs = settings.batch_size
    started = time.perf_counter()
    sel_plan, eval_plan = build_plan(tokenizer, selection), build_plan(tokenizer, evaluation)
    sel = score(model, sel_plan, gradients=True, features=True, residual=True, batch_size=bs)
    base = score(model, eval_plan, features=True, batch_size=bs)
    log(
        f"{len(selection)} selection / {len(evaluation)} evaluation prompts; gradient and baseline passes in "
        f"{time.perf_counter() - started:.0f} s; top heads per family k = {k} of {layers * heads}"
    )
    base_correct = base.correct.numpy()
    chance = np.array(
        [np.mean([1 / len(i.candidates) for i in evaluation if i.family == f]) for f in range(len(FAMILIES))]
    )
    groups = [np.flatnonzero(fam_eval == f) for f in range(len(FAMILIES))]
    acc_rows = []
    for f, family in enumerate(FAMILIES):
        idx = groups[f]
        low, high = resampled_interval(lambda g: base_correct[g[0]].mean(), [idx], sizes["n_boot"], settings.seed + f)
        acc = float(base_correct[idx].mean())
        acc_rows.append(
            {
                "family": family,
                "n": len(idx),
                "accuracy": acc,
                "chance": float(chance[f]),
                "low": low,
                "high": high,
                "learned": bool(low > chance[f]),
            }
        )
    accuracy = pd.DataFrame(acc_rows)
    probe = train_probe(sel.features, fam_sel, len(FAMILIES), steps=sizes["probe_steps"], seed=settings.seed)
    shares = {
        MASK: importance_shares(mean_abs_by_task(sel.mask_grads, fam_sel, len(FAMILIES))),
        PROBE: importance_shares(probe_importance(probe, sel.features, fam_sel, len(FAMILIES))),
    }
    probe_acc = probe_accuracy(probe, base.features, torch.tensor(fam_eval))
    generator = make_generator(settings.seed)
    records = {("baseline", "", ""): base_correct}
    cross_rows, ablation_rows = [], []
    conditions = [(m, f) for m in METHODS for f in range(len(FAMILIES))]
    for method, f in progress(conditions, desc="ablations"):
        top = top_heads_mask(shares[method][f], k)
        top_correct = score(model, eval_plan, top, batch_size=bs).correct.numpy()
        records[(method, FAMILIES[f], "top")] = top_correct
        for g in range(len(FAMILIES)):
            cross_rows.append(
                {
                    "method": method,
                    "masked": FAMILIES[f],
                    "measured": FAMILIES[g],
                    "drop": float(base_correct[groups[g]].mean() - top_correct[groups[g]].mean()),
                }
            )
        own = [evaluation[i] for i in groups[f]]
        own_plan = build_plan(tokenizer, own)
        draws = []
        for _ in range(sizes["n_random"]):
            draws.append(
                score(model, own_plan, layer_matched_random_mask(top, generator), batch_size=bs).correct.numpy()
            )
        draws = np.stack(draws)  # [R, items of f]
        records[(method, FAMILIES[f], "random")] = draws.mean(0)
        b = base_correct[groups[f]]
        t = top_correct[groups[f]]

        def margin(g, b=b, t=t, draws=draws):
            i = g[0]
            return (b[i].mean() - t[i].mean()) - (b[i].mean() - draws[:, i].mean())

        point = margin([np.arange(len(b))])
        low, high = resampled_interval(margin, [np.arange(len(b))], sizes["n_boot"], settings.seed + 100 + f)
        ablation_rows.append(
            {
                "method": method,
                "family": FAMILIES[f],
                "k": k,
                "top drop": float(b.mean() - t.mean()),
                "random drop (layer-matched)": float(b.mean() - draws.mean()),
                "margin": float(point),
                "low": low,
                "high": high,
                "random draws": sizes["n_random"],
            }
        )
    cross = pd.DataFrame(cross_rows)
    ablation = pd.DataFrame(ablation_rows)
    learned = [f for f in range(len(FAMILIES)) if acc_rows[f]["learned"]]
    spec_rows = []
    for method in METHODS:
        tops = np.stack([records[(method, FAMILIES[f], "top")] for f in range(len(FAMILIES))])  # [masked, items]

        def specificity(gs, tops=tops):
            if len(learned) < 2:
                return float("nan")
            drop = np.array(
                [[base_correct[gs[j]].mean() - tops[a][gs[j]].mean() for j in range(len(learned))] for a in learned]
            )  # [masked learned, measured learned]
            eye = np.eye(len(learned), dtype=bool)
            return float(drop[eye].mean() - drop[~eye].mean())

        learned_groups = [groups[f] for f in learned]
        point = specificity([np.asarray(g) for g in learned_groups])
        low, high = (
            resampled_interval(specificity, learned_groups, sizes["n_boot"], settings.seed + 200)
            if len(learned) >= 2
            else (float("nan"), float("nan"))
        )
        part = cross[
            (cross.method == method)
            & cross.masked.isin([FAMILIES[f] for f in learned])
            & cross.measured.isin([FAMILIES[f] for f in learned])
        ]
        diag = part[part.masked == part.measured]["drop"]
        off = part[part.masked != part.measured]["drop"]
        spec_rows.append(
            {
                "method": method,
                "families": len(learned),
                "diagonal": float(diag.mean()) if len(diag) else float("nan"),
                "off-diagonal": float(off.mean()) if len(off) else float("nan"),
                "difference": point,
                "low": low,
                "high": high,
            }
        )
    overlap_rows, sim_rows, math_rows = [], [], []
    for method, s in shares.items():
        ov, sim, depth = top_head_overlap(s, k), task_similarity(s), depth_centroid(s)
        for a in range(len(FAMILIES)):
            for b2 in range(len(FAMILIES)):
                overlap_rows.append(
                    {
                        "method": method,
                        "family a": FAMILIES[a],
                        "family b": FAMILIES[b2],
                        "shared heads": int(ov[a, b2]),
                    }
                )
                sim_rows.append(
                    {"method": method, "family a": FAMILIES[a], "family b": FAMILIES[b2], "cosine": float(sim[a, b2])}
                )
        m = FAMILIES.index(MATH)
        others = [f for f in range(len(FAMILIES)) if f != m]
        among = [float(sim[a, b2]) for a in others for b2 in others if a < b2]
        math_rows.append(
            {
                "method": method,
                "math vs others (mean cos)": float(sim[m, others].mean()),
                "among the other seven (mean cos)": float(np.mean(among)),
                "math depth centroid": float(depth[m]),
                "others' depth centroid (mean)": float(depth[others].mean()),
                "max depth centroid of the seven": float(depth[others].max()),
                "layers": layers,
            }
        )
    items_rows = [
        {
            "condition": " · ".join(x for x in key if x),
            "item": i,
            "family": FAMILIES[fam_eval[i]],
            "correct": float(v[i]),
        }
        for key, v in records.items()
        if len(v) == len(evaluation)
        for i in range(len(evaluation))
    ]
    layer_table = layer_profile(sel, shares[MASK], "final")
    info = {
        "layers": layers,
        "heads": heads,
        "k": k,
        "probe held-out accuracy": probe_acc,
        "selection prompts": len(selection),
        "evaluation prompts": len(evaluation),
        "seconds": time.perf_counter() - started,
        "single-pass items": int(sum(eval_plan.single_pass) + sum(sel_plan.single_pass)),
    }
    return RealModelTables(
        info,
        accuracy,
        shares,
        importance_table(shares, list(FAMILIES), "family"),
        ablation,
        cross,
        pd.DataFrame(spec_rows),
        pd.DataFrame(overlap_rows),
        pd.DataFrame(sim_rows),
        pd.DataFrame(math_rows),
        layer_table,
        pd.DataFrame(items_rows),
    )


def layer_profile(sel, mask_shares: torch.Tensor, checkpoint: str) -> pd.DataFrame:
    """Per layer (from 1): head-importance share per head, raw mean |∂L/∂m_h| and mean ‖update‖/‖input‖."""
    share = mask_shares.mean(0)  # [L, H], the families' maps averaged
    raw = sel.mask_grads.abs().mean(0)  # [L, H]
    return pd.DataFrame(
        {
            "checkpoint": checkpoint,
            "layer": np.arange(1, share.shape[0] + 1),
            "importance share per head": (share.sum(-1) / share.sum() / share.shape[1]).numpy(),
            "raw mean |head-mask gradient|": raw.mean(-1).numpy(),
            "relative residual update": sel.residual.numpy(),
        }
    )


def checkpoint_layers(settings: RealModelSettings, log=print) -> pd.DataFrame:
    """The layer profile at each checkpoint (hub revisions of MODEL, or MODEL's comma-separated folders), in the
    order given; every checkpoint must have the same layers × heads."""
    from .heads import head_shape
    from .scoring import build_plan, score

    names = settings.checkpoint_names
    revisions = [r.strip() for r in settings.revisions.split(",") if r.strip()]
    checkpoints = [(names[0], r, r) for r in revisions] if revisions else [(n, None, Path(n).name or n) for n in names]
    items = checked_halves(settings)[0]
    fam = torch.tensor([i.family for i in items])
    tables, shape = [], None
    for name, revision, label in progress(checkpoints, desc="checkpoints"):
        model, tokenizer = load_model(name, settings, revision)
        if shape is not None and head_shape(model) != shape:
            raise MoeError(f"checkpoint {label!r} has {head_shape(model)} layers × heads, not {shape}; all must match")
        shape = head_shape(model)
        sel = score(model, build_plan(tokenizer, items), gradients=True, residual=True, batch_size=settings.batch_size)
        tables.append(
            layer_profile(sel, importance_shares(mean_abs_by_task(sel.mask_grads, fam, len(FAMILIES))), label)
        )
        del model
    table = pd.concat(tables, ignore_index=True)
    table["checkpoint"] = pd.Categorical(table["checkpoint"], categories=[c[2] for c in checkpoints], ordered=True)
    return table


def domain_token_windows(tokenizer, seed: int, max_tokens: int, seq_len: int = 128) -> dict[str, torch.Tensor]:
    """Per domain of notebook 05 (Wikipedia, code, DM Mathematics): windows [n, seq_len] of exactly
    ``max_tokens // seq_len`` windows, tokenised by the model's own tokenizer from enough held-out text."""
    from ..datasets.corpora.domains import DOMAINS, load_domain_texts
    from .routing import token_windows

    out = {}
    for domain in DOMAINS:
        text = "\n\n".join(load_domain_texts(domain, seed=seed, max_chars=max_tokens * 12).documents)
        ids = torch.tensor(tokenizer(text, add_special_tokens=False)["input_ids"], dtype=torch.long)
        if len(ids) < max_tokens:
            raise MoeError(
                f"MAX_TOKENS={max_tokens} is not allowed here; the {domain} text gives only {len(ids)} tokens"
            )
        out[domain] = token_windows(ids, min(seq_len, max_tokens), max_tokens)
    return out


@dataclass
class RoutingTables:
    """Notebooks 04's and 05's measures on an MoE model: Jaccard vs σ per layer, relative load, MaxVio."""

    stability: pd.DataFrame
    load: pd.DataFrame
    maxvio: pd.DataFrame


def routing_tables(model, tokenizer, settings: RealModelSettings) -> RoutingTables | None:
    """The routing measures when the model has routers, else None."""
    from .routing import expert_load_table, maxvio_table, routers, stability_table

    try:
        routers(model)
    except MoeError:
        return None
    windows = domain_token_windows(tokenizer, settings.seed, settings.sizes["max_tokens"])
    stability = pd.concat(
        [
            stability_table(model, w, list(settings.sigmas), seed=settings.seed, label=d).assign(dataset=d)
            for d, w in windows.items()
        ],
        ignore_index=True,
    )
    texts = {d: tokenizer.decode(w.flatten()) for d, w in windows.items()}
    load = expert_load_table(
        model,
        tokenizer,
        texts,
        seq_len=windows["wikipedia"].shape[1],
        max_tokens=settings.sizes["max_tokens"],
        label=settings.tag,
    )
    return RoutingTables(stability, load, maxvio_table(load))


def check_sources(settings: RealModelSettings) -> None:
    """Before any work: every MODEL name resolves (real model key, complete folder, or a reachable hub id)."""
    from .loading import check_model_source

    for name in settings.checkpoint_names:
        if name not in REAL_MODELS:
            check_model_source(name)


def run(settings: RealModelSettings, log=print) -> tuple[RealModelTables, RoutingTables | None]:
    """The whole study on the last checkpoint (the only one unless several are given), plus the layer profile over
    checkpoints when REVISIONS or several folders are given."""
    if settings.threads:
        torch.set_num_threads(settings.threads)
    names = settings.checkpoint_names
    revisions = [r.strip() for r in settings.revisions.split(",") if r.strip()]
    started = time.perf_counter()
    model, tokenizer = load_model(names[-1], settings, revisions[-1] if revisions else None)
    log(f"loaded {settings.model} in {time.perf_counter() - started:.0f} s on {torch.get_num_threads()} threads")
    tables = head_tables(model, tokenizer, settings, log)
    title = REAL_MODELS[names[-1]].title if names[-1] in REAL_MODELS else names[-1]
    tables.info.update(model=title, tag=settings.tag)
    routing = routing_tables(model, tokenizer, settings)
    del model
    if len(names) > 1 or revisions:
        tables.layers = checkpoint_layers(settings, log)
    tables.info["total seconds"] = time.perf_counter() - started
    return tables, routing
