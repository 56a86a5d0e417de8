"""Kept trained models: keyed by settings, seed and code; written atomically; a damaged one is never half-loaded."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from moe_utils.exp1 import models as exp1_models
from moe_utils.exp1 import training as exp1_training
from moe_utils.exp1.settings import FourModelsSettings
from moe_utils.io import trained


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
        assert trained.run_key(changed, 0, CODE) != key, name
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
