"""Kept trained models: keyed by settings, seed and code; written atomically; a damaged one is never half-loaded."""

from __future__ import annotations

import dataclasses

import pandas as pd
import pytest
import torch

from moe_utils.exp1 import models as exp1_models
from moe_utils.exp1 import training as exp1_training
from moe_utils.io import paths, trained
from moe_utils.studies.four_models.settings import FourModelsSettings


@pytest.fixture
def kept(tmp_path, monkeypatch):
    monkeypatch.setenv("MOE_TRAINED_DIR", str(tmp_path / "trained"))
    return tmp_path / "trained"


CODE = [exp1_models, exp1_training]


def test_the_key_changes_with_any_setting_the_seed_or_the_code(tmp_path):
    base = FourModelsSettings()
    key = trained.run_key(base, 0, CODE)
    assert key == trained.run_key(FourModelsSettings(), 0, CODE) and len(key) == 16
    assert trained.run_key(dataclasses.asdict(base), 0, CODE) == key  # a dataclass or its fields: the same key
    for name, value in dataclasses.asdict(base).items():
        changed = {**dataclasses.asdict(base), name: f"{value}-changed"}
        same = name in trained.NOT_IN_KEY  # RETRAIN and WORKERS never change what is trained
        assert (trained.run_key(changed, 0, CODE) == key) == same, name
    assert trained.run_key(base, 1, CODE) != key
    source = tmp_path / "fake_module.py"
    source.write_text("x = 1\n")
    module = type(exp1_models)("fake_module")
    module.__file__ = str(source)
    before = trained.run_key(base, 0, [module])
    source.write_text("x = 2\n")
    assert trained.run_key(base, 0, [module]) != before


def test_a_kept_run_loads_back_exactly(kept):
    states = {"single expert": {"w": torch.arange(6.0).reshape(2, 3)}}
    folder = trained.save_trained("02_four_models", "abc", states, FourModelsSettings())
    assert folder == kept / "02_four_models" / "abc" and not list(folder.parent.glob(".*"))
    loaded, info = trained.load_trained("02_four_models", "abc")
    assert torch.equal(loaded["single expert"]["w"], states["single expert"]["w"])
    assert info["settings"]["epochs"] == 30 and "saved" in info
    assert trained.load_trained("02_four_models", "other") is None


def test_a_damaged_or_partial_kept_run_is_set_aside_not_half_loaded(kept):
    folder = trained.save_trained("02_four_models", "abc", {"m": {"w": torch.ones(100)}}, FourModelsSettings())
    state = folder / trained.STATE_FILE
    state.write_bytes(state.read_bytes()[:-10])  # truncated
    lines = []
    assert trained.load_trained("02_four_models", "abc", log=lines.append) is None
    assert len(lines) == 1 and "is damaged" in lines[0] and not folder.exists()
    partial = trained.save_trained("02_four_models", "def", {"m": {"w": torch.ones(3)}}, FourModelsSettings())
    (partial / ".check.json").unlink()  # killed between writing the state and its record
    assert trained.load_trained("02_four_models", "def", log=lines.append) is None
    assert "no size/checksum record" in lines[-1]


CALLS: list = []


def toy_job(settings, seed: int, name: str) -> trained.KeptTables:
    """A tiny training job: a seeded linear model fitted for a few steps."""
    CALLS.append((seed, name))
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    model = torch.nn.Linear(3, 2)
    x, y = torch.randn(16, 3, generator=generator), torch.randn(16, 2, generator=generator)
    optimiser = torch.optim.SGD(model.parameters(), lr=0.1)
    for _ in range(5):
        optimiser.zero_grad()
        torch.nn.functional.mse_loss(model(x), y).backward()
        optimiser.step()
    return trained.KeptTables({"weights": model.weight.detach().flatten().tolist()}, {"model": model.state_dict()})


def run_toy(settings, lines=None):
    from moe_utils.runtime import run_parallel

    CALLS.clear()
    keep = trained.KeptRuns("99_toy", settings, log=(lines if lines is not None else []).append)
    jobs = [dict(settings=settings, seed=s, name="toy") for s in (0, 1)]
    return run_parallel(toy_job, jobs, workers=1, keep=keep), keep


def test_a_second_run_with_the_same_settings_loads_and_gives_the_same_results(kept, capsys):
    from moe_utils.studies.routing_stability.settings import StabilitySettings

    settings = StabilitySettings()
    first, keep = run_toy(settings)
    assert CALLS == [(0, "toy"), (1, "toy")] and keep.trained == 2 and "trained 2 run(s)" in capsys.readouterr().out
    second, keep = run_toy(settings)
    assert CALLS == [] and keep.trained == 0 and len(keep.loaded) == 2
    assert [r.tables["weights"] for r in second] == [r.tables["weights"] for r in first]
    assert torch.equal(second[1].states["model"]["weight"], first[1].states["model"]["weight"])
    assert "loaded 2 kept run(s) trained" in capsys.readouterr().out  # with the saved runs' date
    run_toy(dataclasses.replace(settings, workers=1))  # how many processes changes nothing that is trained
    assert CALLS == []
    run_toy(dataclasses.replace(settings, steps=settings.steps + 1))  # any other setting: trained again
    assert len(CALLS) == 2


def test_retrain_and_the_pipeline_train_again(kept, monkeypatch):
    from moe_utils.pipeline import retrain_policy
    from moe_utils.studies.routing_stability.settings import StabilitySettings

    settings = StabilitySettings()
    run_toy(settings)
    run_toy(dataclasses.replace(settings, retrain=True))
    assert len(CALLS) == 2  # RETRAIN = True: trained although kept (and the same key: RETRAIN decides nothing)
    with retrain_policy(reuse=False):
        run_toy(settings)
        assert len(CALLS) == 2  # the pipeline without --reuse: an executed notebook is a real run
    with retrain_policy(reuse=True):
        run_toy(settings)
        assert CALLS == []
    assert paths.RETRAIN_ENV not in __import__("os").environ


def test_a_damaged_kept_run_is_retrained_not_half_loaded(kept):
    from moe_utils.studies.routing_stability.settings import StabilitySettings

    settings = StabilitySettings()
    first, keep = run_toy(settings)
    folder = trained.run_folder("99_toy", keep.key(toy_job, dict(settings=settings, seed=1, name="toy")))
    state = folder / f"{trained.RESULT_STEM}.tensors.pt"
    state.write_bytes(state.read_bytes()[:-20])  # truncated
    lines = []
    again, keep = run_toy(settings, lines)
    assert CALLS == [(1, "toy")] and len(keep.loaded) == 1 and keep.trained == 1
    assert len(lines) == 1 and "is damaged" in lines[0]
    assert [r.tables["weights"] for r in again] == [
        r.tables["weights"] for r in first
    ]  # retrained: the same seeded result


def test_notebook_02_keeps_its_models_and_a_second_run_loads_them(tiny_mirror, kept, capsys):
    from moe_utils.studies.four_models import job, run

    settings = FourModelsSettings(profile="quick", data_source="mirror")
    first = run(settings)
    assert "trained 1 run(s)" in capsys.readouterr().out
    job.run_splits.cache_clear()
    second = run(settings)
    assert "loaded 1 kept run(s)" in capsys.readouterr().out
    pd.testing.assert_frame_equal(first.history, second.history)
    pd.testing.assert_frame_equal(first.rates, second.rates)  # computed again from the loaded models
    for name, model in first.models.items():
        for key, value in model.state_dict().items():
            assert torch.equal(value, second.models[name].state_dict()[key]), (name, key)
    kept_states = torch.load(next((kept / "02_four_models").iterdir()) / trained.STATE_FILE)
    assert set(kept_states) == set(first.models)  # every model's state dict, by name


class Payload:
    """A pickle that runs code when unpickled."""

    def __reduce__(self):
        return (exec, ("import pathlib; pathlib.Path(__import__('os').environ['PWNED']).write_text('ran')",))


@pytest.mark.parametrize("swapped", ["state.pt", "result.tensors.pt"])
def test_a_swapped_pickle_with_a_rewritten_record_is_refused_and_runs_nothing(kept, tmp_path, monkeypatch, swapped):
    import pickle

    from moe_utils.io.cache_check import record
    from moe_utils.studies.routing_stability.settings import StabilitySettings

    settings = StabilitySettings()
    run_toy(settings)
    folder = trained.run_folder(
        "99_toy", trained.KeptRuns("99_toy", settings).key(toy_job, dict(settings=settings, seed=1, name="toy"))
    )
    marker = tmp_path / "pwned"
    monkeypatch.setenv("PWNED", str(marker))
    (folder / swapped).write_bytes(pickle.dumps(Payload()))
    record(folder)  # the attacker rewrites the checksum record too: the record guards against damage, not substitution
    lines = []
    again, keep = run_toy(settings, lines)
    assert not marker.exists()  # the payload never ran
    assert CALLS == [(1, "toy")] and keep.trained == 1  # refused, set aside with one line, trained again
    assert len(lines) == 1 and "does not load" in lines[0] and folder.with_name(folder.name + ".damaged").exists()
    assert again[1].tables["weights"] == run_toy(settings)[0][1].tables["weights"]


def test_a_kept_result_names_only_moe_utils_classes(tmp_path):
    import json

    from moe_utils.errors import MoeError
    from moe_utils.io.safe_store import load_object, save_object

    save_object(trained.KeptTables({"a": 1}, {}), tmp_path, "result")
    tree = json.loads((tmp_path / "result.json").read_text())
    tree["__dataclass__"] = "os.system"
    (tmp_path / "result.json").write_text(json.dumps(tree))
    with pytest.raises(MoeError, match="refusing to load it"):
        load_object(tmp_path, "result")
    with pytest.raises(TypeError, match="without pickling"):
        save_object(object(), tmp_path, "other")


def test_kept_results_round_trip_exactly(tmp_path):
    import numpy as np

    from moe_utils.io.safe_store import load_object, save_object
    from moe_utils.moe.transformer import TransformerConfig, TransformerModel

    frame = pd.DataFrame({"name": ["a", "b"], "x": [1.5, float("nan")], "n": [1, 2], "o": ["p", 3]})
    frame["name"] = frame["name"].astype(object)
    model = TransformerModel(TransformerConfig(), input="tokens", head="lm", seed=3).eval()
    value = {
        1: (np.float32(0.25), np.arange(6).reshape(2, 3), frame, frame.set_index(["name", "n"]), tmp_path),
        "model": model,
        "series": frame["x"],
        "kept": trained.KeptTables({"nan": float("nan")}, {"m": {"w": torch.ones(2, dtype=torch.bfloat16)}}),
    }
    save_object(value, tmp_path, "result")
    back = load_object(tmp_path, "result")
    scalar, array, plain, indexed, path = back[1]
    assert type(scalar) is np.float32 and scalar == 0.25 and array.dtype == np.int64 and array.shape == (2, 3)
    pd.testing.assert_frame_equal(plain, frame, check_exact=True)
    pd.testing.assert_frame_equal(indexed, frame.set_index(["name", "n"]), check_exact=True)
    pd.testing.assert_series_equal(back["series"], frame["x"], check_exact=True)
    assert path == tmp_path and not back["model"].training
    tokens = torch.randint(0, 256, (2, 8))
    assert torch.equal(back["model"](tokens), model(tokens))
    assert back["kept"].states["m"]["w"].dtype == torch.bfloat16 and np.isnan(back["kept"].tables["nan"])
