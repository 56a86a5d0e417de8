"""Notebook 02's run, settings -> tables: the four models trained (or loaded when kept), evaluated and compared."""

from __future__ import annotations

from ...exp1.gating_stats import activation_rates
from ...exp1.summary import claim_checks, final_accuracy, rates_beside_source
from ...runtime import resolve_device, run_parallel
from .job import four_models_job, run_splits
from .settings import FourModelsSettings
from .tables import FourModelsTables


def run(settings: FourModelsSettings) -> FourModelsTables:
    """Train the four models on the run's splits (a random share of each in the quick profile), or load them when
    they are kept in data/trained/ for these settings and code, and evaluate them."""
    data, train, test = run_splits(settings)
    device = resolve_device(settings.device)
    job = dict(settings=settings, seed=settings.seed)
    trained = run_parallel(
        four_models_job, [job], workers=1, desc="models", keep=settings.kept_runs(), executor=settings.executor_choice
    )[0]
    models = {name: model.to(device) for name, model in trained.models.items()}  # kept models load on the CPU
    history, seconds = trained.history, trained.seconds
    final = final_accuracy(history)
    rates = activation_rates(models, {"train": train, "test": test})
    info = {"train images": len(train), "test images": len(test), "device": str(device), "train seconds": seconds}
    return FourModelsTables(
        settings,
        data,
        info,
        models,
        history,
        final,
        rates,
        rates_beside_source(rates, source_data=data.is_source_data),
        claim_checks(final),
    )
