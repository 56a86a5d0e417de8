"""Every notebook's settings object: built from the parameters cell in one call, frozen, validated on construction
with the parameter's name as the user typed it, and the quick profile's sizes as caps of the full ones."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from moe_utils.errors import MoeError
from moe_utils.studies.data_setup.settings import DataSetupSettings
from moe_utils.studies.expert_load.settings import PAPER_SHAPE, ExpertLoadSettings
from moe_utils.studies.four_models.settings import FourModelsSettings
from moe_utils.studies.gate_analysis.settings import GateAnalysisSettings
from moe_utils.studies.head_importance.settings import HeadImportanceSettings
from moe_utils.studies.layer_activation.settings import LayerActivationSettings
from moe_utils.studies.routing_stability.settings import StabilitySettings

ALL = [
    DataSetupSettings,
    FourModelsSettings,
    GateAnalysisSettings,
    StabilitySettings,
    ExpertLoadSettings,
    HeadImportanceSettings,
    LayerActivationSettings,
]


@pytest.mark.parametrize("cls", ALL)
def test_defaults_are_valid_frozen_and_built_from_a_namespace(cls):
    settings = cls()
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.seed = 1
    namespace = {"SEED": 3, "PROFILE": "quick", "other": object(), "lowercase_is_ignored": 1}
    built = cls.from_parameters(namespace)
    assert built.seed == 3 and built.profile == "quick" and built == dataclasses.replace(cls(), seed=3, profile="quick")


@pytest.mark.parametrize("cls", ALL)
def test_the_common_parameters_are_checked_by_name(cls):
    with pytest.raises(MoeError, match="SEED='0' is not allowed"):
        cls(seed="0")
    with pytest.raises(MoeError, match="PROFILE='fast' is not allowed; choose one of 'full', 'quick'"):
        cls(profile="fast")
    with pytest.raises(MoeError, match="DEVICE='gpu' is not allowed"):
        cls(device="gpu")
    if not torch.cuda.is_available():
        with pytest.raises(MoeError, match="DEVICE='cuda' is not allowed; this machine has no CUDA device"):
            cls(device="cuda")


@pytest.mark.parametrize(
    ("cls", "field", "value", "message"),
    [
        (FourModelsSettings, "lr", float("inf"), "LR=inf is not allowed; it must be a finite number"),
        (FourModelsSettings, "optimizer", "adamw", "OPTIMIZER='adamw' is not allowed"),
        (GateAnalysisSettings, "sweep_experts", "1,x", "SWEEP_EXPERTS='1,x'"),
        (GateAnalysisSettings, "study_fraction", 0.0, "STUDY_FRACTION=0.0 is not allowed"),
        (StabilitySettings, "lambdas", "1, 3", "LAMBDAS='1, 3' is not allowed; it must include 0"),
        (StabilitySettings, "eval_sigmas", "0, inf", "EVAL_SIGMAS='0, inf'"),
        (StabilitySettings, "top_k", 9, "TOP_K=9 is not allowed; it must be at most N_EXPERTS=8"),
        (StabilitySettings, "train_sigma", float("nan"), "TRAIN_SIGMA=nan is not allowed; it must be a finite number"),
        (ExpertLoadSettings, "fine_top_k", 40, "FINE_TOP_K=40 is not allowed; it must be at most FINE_N_EXPERTS=32"),
        (ExpertLoadSettings, "gamma", -0.1, "GAMMA=-0.1 is not allowed"),
        (
            ExpertLoadSettings,
            "paper_rates_seeds",
            11,
            "PAPER_RATES_SEEDS=11 is not allowed; it must be at most N_SEEDS=10",
        ),
        (StabilitySettings, "steps", 40, "WARMUP_STEPS=50 is not allowed; it must be below STEPS=40"),
        (HeadImportanceSettings, "seq_len", 11, "SEQ_LEN=11 is not allowed; it must be an int of at least 12"),
        (
            HeadImportanceSettings,
            "top_heads",
            33,
            "TOP_HEADS=33 is not allowed; it must be at most N_LAYERS × N_HEADS=32",
        ),
        (
            LayerActivationSettings,
            "n_checkpoints",
            7,
            "N_CHECKPOINTS=7 is not allowed; it must divide the number of steps",
        ),
        (LayerActivationSettings, "n_heads", 5, "N_HEADS=5 is not allowed; it must divide D_MODEL=48"),
        (GateAnalysisSettings, "executor", "ray", "EXECUTOR='ray' is not allowed; use 'processes', 'dask:local'"),
        (ExpertLoadSettings, "executor", "slurm:", "EXECUTOR='slurm:' is not allowed"),
    ],
)
def test_a_bad_value_is_one_line_naming_the_parameter(cls, field, value, message):
    with pytest.raises(MoeError, match=message.replace("(", r"\(").replace(")", r"\)")) as err:
        cls(**{field: value})
    assert "\n" not in str(err.value)


def test_the_quick_profile_caps_sizes_and_the_full_profile_keeps_them():
    full, quick = StabilitySettings(), StabilitySettings(profile="quick")
    assert full.size("steps") == 500 and quick.size("steps") == 15 and quick.seeds == [0, 1]
    assert StabilitySettings(profile="quick", steps=5).size("steps") == 5  # a smaller value stays
    assert (
        FourModelsSettings(profile="quick").size("train_share") == 0.1 and FourModelsSettings().size("train_share") == 1
    )
    assert GateAnalysisSettings(seed=7).seeds == [7, 8, 9, 10, 11] and GateAnalysisSettings(seed=7).hard_seeds == [
        7,
        8,
        9,
    ]


def test_settings_build_the_models_they_describe():
    model = StabilitySettings(n_experts=4, top_k=1, patch=16).model
    assert model.router.n_experts == 4 and model.router.top_k == 1 and model.max_len == 4
    assert [s.name for s in StabilitySettings().seed_specs] == [
        "baseline",
        "λ=3",
        "baseline + balance",
        "λ=3 + balance",
    ]
    load = ExpertLoadSettings(fine_n_experts=0, paper_rates=0)
    assert list(load.shapes) == ["standard"] and load.runs == [("standard", "aux_loss"), ("standard", "aux_free")]
    assert load.config("standard", "aux_free").router.balancing == "aux_free"
    papers = ExpertLoadSettings(fine_n_experts=0)  # the standard shape again at the papers' α = γ
    assert list(papers.shapes) == ["standard", PAPER_SHAPE]
    assert papers.config(PAPER_SHAPE, "aux_free").router.bias_update_rate == 0.001
    assert papers.config(PAPER_SHAPE, "aux_loss").router.aux_loss_alpha == 0.001
    assert papers.config("standard", "aux_loss").router.aux_loss_alpha == 0.01
    assert HeadImportanceSettings(ffn="moe").model.ffn == "moe"
    assert LayerActivationSettings().model.n_layers == 12


@pytest.mark.parametrize("cls", ALL)
def test_every_float_parameter_of_a_notebook_refuses_non_finite_numbers(cls):
    import math

    import papermill as pm

    from moe_utils.io import paths

    parameters = pm.inspect_notebook(str(paths.NOTEBOOKS_DIR / f"{cls.NOTEBOOK}.ipynb"))
    floats = [f.name for f in dataclasses.fields(cls) if isinstance(f.default, float) and f.name.upper() in parameters]
    assert floats or cls is DataSetupSettings
    for name in floats:
        for bad in (math.inf, -math.inf, math.nan, 1e999):
            with pytest.raises(MoeError, match=f"{name.upper()}=.* is not allowed"):
                cls(**{name: bad})


def test_the_data_notebooks_name_their_datasets_alike():
    for cls in (DataSetupSettings, FourModelsSettings, GateAnalysisSettings, StabilitySettings):
        assert cls().dataset_names == "auto"
        with pytest.raises(MoeError, match="DATASET_NAMES='one' is not allowed; write \"auto\" or two"):
            cls(dataset_names="one")


@pytest.mark.parametrize("cls", ALL)
def test_building_settings_has_no_side_effect(cls, capsys, monkeypatch):
    from moe_utils.io import paths

    monkeypatch.delenv(paths.FIGURES_ENV, raising=False)
    before = paths.figures_dir()
    cls.from_parameters({"SEED": 7, "PROFILE": "quick"})  # not the committed run, yet nothing is chosen or printed
    assert paths.figures_dir() == before and capsys.readouterr().out == ""


@pytest.mark.parametrize("cls", [c for c in ALL if "executor" in {f.name for f in dataclasses.fields(c)}])
def test_where_jobs_run_changes_neither_the_kept_runs_nor_the_output_folder(cls):
    from moe_utils.io.trained import run_key

    here, there = cls(), cls(executor="processes")
    assert here.executor_choice is None and there.executor_choice == "processes"
    assert run_key(here, 0, []) == run_key(there, 0, []) and there.differences() == []


def test_the_papers_rates_configuration_uses_the_first_seeds():
    s = ExpertLoadSettings(seed=3)
    assert s.seeds_of("standard") == list(range(3, 13)) and s.seeds_of(PAPER_SHAPE) == [3, 4, 5, 6, 7]
    assert ExpertLoadSettings(profile="quick").seeds_of(PAPER_SHAPE) == [0, 1]
