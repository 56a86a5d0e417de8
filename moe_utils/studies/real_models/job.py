"""Notebook 08's measurements on one real model: head importance per function, the layer profile over checkpoints,
and an MoE model's routing."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from ...datasets.language_tasks import FAMILIES, make_items, split_halves
from ...errors import MoeError
from ...measures.heads import (
    depth_centroid,
    importance_shares,
    importance_table,
    layer_matched_random_mask,
    mean_abs_by_task,
    task_similarity,
    top_head_overlap,
    top_heads_mask,
    within_across_overlap,
)
from ...measures.probe import probe_accuracy, probe_item_importance, train_probe
from ...runtime import make_generator, progress
from ...stats import bootstrap_p, holm, mean_test, resampled_draws, resampled_interval
from .settings import MASK, MATH, METHODS, PROBE, SHUFFLED, SHUFFLED_TEMPLATE, TEMPLATE, RealModelSettings
from .tables import RealModelTables, RoutingTables


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
    from ...hf.loading import DENSE_ARCHITECTURES, MOE_ARCHITECTURES, load_causal_lm
    from ...hf.pretrained import resolve_model

    return load_causal_lm(
        resolve_model(name),
        revision=revision,
        dtype=settings.dtype,
        device=settings.device,
        architectures=DENSE_ARCHITECTURES + MOE_ARCHITECTURES,
        purpose="notebook 08",
    )


def class_means(values: torch.Tensor, labels: torch.Tensor, n: int = len(FAMILIES)) -> torch.Tensor:
    """Per label (a family unless ``n`` says otherwise), the mean of per-item values [N, L, H] over its items ->
    [n, L, H] (0 without items)."""
    out = torch.zeros(n, *values.shape[1:])
    for c in range(n):
        if (labels == c).any():
            out[c] = values[labels == c].mean(0)
    return out


def depth_interval(values, labels, math: int, others: list[int], n_boot: int, seed: int) -> tuple[float, float]:
    """95 % bootstrap interval (items resampled within each family) of Math's depth centroid minus the mean of
    ``others``' centroids, the maps as importance shares of the per-item ``values`` [N, L, H]."""
    groups = [np.flatnonzero(labels.numpy() == c) for c in range(len(FAMILIES))]

    def math_minus_others(draw) -> float:
        picked = torch.zeros(len(FAMILIES), *values.shape[1:])  # [families, L, H]
        for c, g in enumerate(draw):
            if len(g):
                picked[c] = values[g].mean(0)
        depth = depth_centroid(importance_shares(picked.abs() + 1e-30))
        return float(depth[math] - depth[others].mean())

    return resampled_interval(math_minus_others, groups, n_boot, seed)


def template_control(sel_features, selection, eval_features, evaluation, k: int, sizes: dict, seed: int):
    """The format control: a probe of each prompt's template instead of its family, and one of shuffled template
    labels. Per family with several templates: mean Jaccard of its templates' top-``k`` head sets with each other
    (within) minus with the other families' templates (across), 95 % bootstrap over prompts within each label, Holm
    over families. Returns (table, {each probe: held-out accuracy, "templates": how many})."""
    names = list(dict.fromkeys(i.template for i in sorted(selection, key=lambda i: i.family)))
    family_of = [next(i.family for i in selection if i.template == t) for t in names]  # [T]
    labels = torch.tensor([names.index(i.template) for i in selection])
    shuffled = labels[torch.randperm(len(labels), generator=make_generator(seed + 2))]
    known = [j for j, i in enumerate(evaluation) if i.template in names]
    truth = torch.tensor([names.index(evaluation[j].template) for j in known])
    rows, accuracy = [], {"templates": len(names)}
    for name, y in ((TEMPLATE, labels), (SHUFFLED_TEMPLATE, shuffled)):
        probe = train_probe(sel_features, y, len(names), steps=sizes["probe_steps"], seed=seed)
        accuracy[name] = probe_accuracy(probe, eval_features[known], truth)
        values = probe_item_importance(probe, sel_features, y)  # [N, L, H]

        def margins(index, values=values, y=y):
            shares = importance_shares(class_means(values[index], y[index], len(names)))
            return {g: w - a for g, (w, a) in within_across_overlap(shares, family_of, k).items()}

        point = within_across_overlap(importance_shares(class_means(values, y, len(names))), family_of, k)
        groups = [torch.nonzero(y == t).flatten().numpy() for t in range(len(names))]
        order = list(point)  # the families tested, a column each of ``draws``
        draws = resampled_draws(
            lambda gs, order=order: [margins(np.concatenate(gs))[g] for g in order], groups, sizes["n_boot"], seed + 600
        )  # [n_boot, families tested]
        for g, (within, across) in point.items():
            d = draws[:, order.index(g)]
            rows.append(
                {
                    "probe": name,
                    "family": FAMILIES[g],
                    "templates": family_of.count(g),
                    "within (Jaccard)": within,
                    "across (Jaccard)": across,
                    "within − across": within - across,
                    "low": float(np.percentile(d, 2.5)),
                    "high": float(np.percentile(d, 97.5)),
                    "p": bootstrap_p(d),
                }
            )
    columns = ["probe", "family", "templates", "within (Jaccard)", "across (Jaccard)", "within − across", "low", "high"]
    table = pd.DataFrame(rows, columns=[*columns, "p"])
    table["p (Holm)"] = np.nan
    for _, part in table.groupby("probe"):
        table.loc[part.index, "p (Holm)"] = holm(part["p"].to_numpy())
    return table, accuracy


def family_specificity(records: dict, base: np.ndarray, groups: list, learned: list[int], n_boot: int, seed: int):
    """Per method and learned family A: A's own drop when its top heads are masked minus the mean drop of the other
    learned families, with a 95 % bootstrap interval over prompts and Holm-adjusted two-sided bootstrap p-values."""
    rows = []
    if len(learned) < 2:
        return pd.DataFrame(rows)
    for method in METHODS:
        for a in learned:
            top = records[(method, FAMILIES[a], "top")]

            def statistic(gs, top=top, a=a):
                drops = [base[g].mean() - top[g].mean() for g in gs]  # one per learned family, in ``learned`` order
                own = drops[learned.index(a)]
                return own - np.mean([d for j, d in enumerate(drops) if learned[j] != a])

            learned_groups = [groups[f] for f in learned]
            draws = resampled_draws(statistic, learned_groups, n_boot, seed + 500 + a)
            rows.append(
                {
                    "method": method,
                    "family": FAMILIES[a],
                    "own − others' drop": float(statistic(learned_groups)),
                    "low": float(np.percentile(draws, 2.5)),
                    "high": float(np.percentile(draws, 97.5)),
                    "p": bootstrap_p(draws),
                }
            )
    table = pd.DataFrame(rows)
    table["p (Holm)"] = np.nan
    for _, part in table.groupby("method"):
        table.loc[part.index, "p (Holm)"] = holm(part["p"].to_numpy())
    return table


def head_tables(model, tokenizer, settings: RealModelSettings, log=print) -> RealModelTables:
    """Per-family accuracy, both importance maps (selection half), ablations and the cross-family matrix (evaluation half)."""
    from ...hf.heads import head_shape
    from ...hf.scoring import build_plan, score

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
    shuffled = fam_sel[torch.randperm(len(fam_sel), generator=make_generator(settings.seed + 1))]
    control = train_probe(sel.features, shuffled, len(FAMILIES), steps=sizes["probe_steps"], seed=settings.seed)
    per_item = {  # [N, L, H] per selection item, and the labels its maps average over
        MASK: (sel.mask_grads.abs(), fam_sel),
        PROBE: (probe_item_importance(probe, sel.features, fam_sel), fam_sel),
        SHUFFLED: (probe_item_importance(control, sel.features, shuffled), shuffled),
    }
    shares = {m: importance_shares(class_means(v, labels)) for m, (v, labels) in per_item.items()}
    probe_acc = probe_accuracy(probe, base.features, torch.tensor(fam_eval))
    control_acc = probe_accuracy(control, base.features, torch.tensor(fam_eval))
    templates, template_acc = template_control(
        sel.features, selection, base.features, evaluation, k, sizes, settings.seed
    )
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
        p = mean_test(draws.mean(0) - t)["p"]  # per prompt: drop(top) − drop(random) = correct(random) − correct(top)
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
                "p": p,
                "random draws": sizes["n_random"],
            }
        )
    cross = pd.DataFrame(cross_rows)
    ablation = pd.DataFrame(ablation_rows)
    learned = [f for f in range(len(FAMILIES)) if acc_rows[f]["learned"]]
    ablation["learned"] = ablation["family"].isin([FAMILIES[f] for f in learned])
    ablation["p (Holm, learned)"] = np.nan
    for _, part in ablation[ablation["learned"]].groupby("method"):
        ablation.loc[part.index, "p (Holm, learned)"] = holm(part["p"].to_numpy())
    family_spec = family_specificity(records, base_correct, groups, learned, sizes["n_boot"], settings.seed)
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
        others = [f for f in learned if f != m] or [f for f in range(len(FAMILIES)) if f != m]
        low_d, high_d = depth_interval(*per_item[method], m, others, sizes["n_boot"], settings.seed + 400)
        among = [float(sim[a, b2]) for a in others for b2 in others if a < b2]
        math_rows.append(
            {
                "method": method,
                "math vs others (mean cos)": float(sim[m, others].mean()),
                "among the other seven (mean cos)": float(np.mean(among)),
                "math depth centroid": float(depth[m]),
                "others' depth centroid (mean)": float(depth[others].mean()),
                "max depth centroid of the seven": float(depth[others].max()),
                "math − others depth": float(depth[m] - depth[others].mean()),
                "depth low": low_d,
                "depth high": high_d,
                "others": len(others),
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
        "shuffled-label probe held-out accuracy": control_acc,
        "template probe held-out accuracy": template_acc[TEMPLATE],
        "shuffled-template probe held-out accuracy": template_acc[SHUFFLED_TEMPLATE],
        "templates": template_acc["templates"],
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
        family_spec,
        templates,
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
    from ...hf.heads import head_shape
    from ...hf.scoring import build_plan, score

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
    from ...datasets.corpora.domains import DOMAINS, load_domain_texts
    from ...hf.routing import token_windows

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


def routing_tables(model, tokenizer, settings: RealModelSettings) -> RoutingTables | None:
    """The routing measures on notebook 05's three domains when the model has routers, else None."""
    from ...hf.routing import routers

    try:
        routers(model)
    except MoeError:
        return None
    windows = domain_token_windows(tokenizer, settings.seed, settings.sizes["max_tokens"])
    return routing_tables_on(model, tokenizer, windows, settings)


def routing_tables_on(model, tokenizer, windows: dict[str, torch.Tensor], settings: RealModelSettings) -> RoutingTables:
    """Jaccard vs σ per layer, relative expert load and MaxVio of an MoE model on token ``windows`` per domain
    ([n, seq_len] each; the first domain's length sets the load's)."""
    from ...hf.routing import expert_load_table, maxvio_table, stability_table

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
        seq_len=next(iter(windows.values())).shape[1],
        max_tokens=settings.sizes["max_tokens"],
        label=settings.tag,
    )
    return RoutingTables(stability, load, maxvio_table(load))
