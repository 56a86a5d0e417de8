"""The measure command and API on one's own checkpoint: notebook 08's routing tables for tiny saved OLMoE and
DeepSeek-V3 models (equal values), on one's own texts, and one line per bad argument."""

from __future__ import annotations

import pandas as pd
import pytest

pytest.importorskip("transformers", reason="transformers not installed: pip install -e '.[hf]'")

from test_hf import saved_model  # noqa: E402

from moe_utils import measure  # noqa: E402
from moe_utils.io import paths  # noqa: E402

TEXT = "The river flows north past the old mill, and the town grew up around the bridge. " * 20


def written(folder, prefix: str) -> dict[str, pd.DataFrame]:
    return {p.name.removeprefix(prefix): pd.read_csv(p) for p in sorted(folder.glob(f"{prefix}*.csv"))}


@pytest.mark.skipif(paths.mirror_dir() is None, reason="notebook 05's domains need the data mirror (WikiText-2)")
@pytest.mark.parametrize("kind", ["olmoe", "deepseek_v3"])
def test_the_routing_command_writes_notebook_08s_tables(kind, tmp_path, capsys):
    from moe_utils.studies.real_models.job import load_model, routing_tables
    from moe_utils.studies.real_models.settings import RealModelSettings

    folder = saved_model(kind, tmp_path / kind)
    capsys.readouterr()
    out = tmp_path / "out"
    args = ["routing", "--model", str(folder), "--sigmas", "0.1,0.5", "--max-tokens", "512", "--out", str(out)]
    assert measure.main(args) == 0
    assert capsys.readouterr().out.startswith(f"wrote 3 tables to {out}: 08_{kind}_expert_load.csv")
    settings = RealModelSettings(model=str(folder), sigmas=(0.1, 0.5), max_tokens=512)
    model, tokenizer = load_model(str(folder), settings)
    notebook = routing_tables(model, tokenizer, settings)  # what notebook 08 computes for this model
    got = written(out, f"08_{kind}_")
    for key in ("stability", "expert_load", "maxvio"):
        expected = getattr(notebook, key).reset_index(drop=True)
        stem = notebook.FILES[key].split("}_")[1]
        pd.testing.assert_frame_equal(got[f"{stem}.csv"], expected, check_dtype=False, obj=key)


def test_the_routing_api_on_ones_own_texts(tmp_path):
    folder = saved_model("olmoe", tmp_path / "olmoe")
    tables = measure.routing_tables(str(folder), texts={"story": TEXT, "numbers": "1 + 2 = 3. " * 150}, sigmas=(0.5,))
    assert set(tables.stability["dataset"]) == {"story", "numbers"} and set(tables.stability["sigma"]) == {0.5}
    assert set(tables.expert_load["domain"]) == {"story", "numbers"} and len(tables.maxvio) >= 1


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--sigmas", "0.1,-1"], "error: --sigmas='0.1,-1' is not allowed"),
        (["--texts", "wiki"], "error: --texts='wiki' is not allowed; write name=file pairs"),
        (["--texts", "wiki=/no/such/file.txt"], "error: --texts='wiki=/no/such/file.txt' is not allowed; "),
        (["--max-tokens", "0"], "error: --max-tokens=0 is not allowed"),
    ],
)
def test_a_bad_argument_is_one_line_naming_its_flag(extra, message, tmp_path, capsys):
    folder = saved_model("olmoe", tmp_path / "olmoe")
    capsys.readouterr()  # saving the model prints its progress
    assert measure.main(["routing", "--model", str(folder), "--out", str(tmp_path / "out"), *extra]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(message) and "\n" not in err, err
    assert not (tmp_path / "out").exists()


def test_a_dense_model_or_a_missing_folder_is_one_line(tmp_path, capsys):
    dense = saved_model("llama", tmp_path / "llama")
    capsys.readouterr()
    assert measure.main(["routing", "--model", str(dense), "--texts", f"a={tmp_path / 't.txt'}", "--out", "x"]) == 2
    assert "is not a readable file" in capsys.readouterr().err
    (tmp_path / "t.txt").write_text(TEXT)
    assert measure.main(["routing", "--model", str(dense), "--texts", f"a={tmp_path / 't.txt'}", "--out", "x"]) == 2
    assert "has no MoE routers" in capsys.readouterr().err
    assert measure.main(["routing", "--model", str(tmp_path / "nowhere"), "--out", "x"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: --model={str(tmp_path / 'nowhere')!r}") and "\n" not in err


def test_the_heads_command_writes_notebook_08s_tables_and_figures(tmp_path, capsys):
    folder = saved_model("llama", tmp_path / "llama")
    out = tmp_path / "out"
    assert measure.main(["heads", "--model", str(folder), "--per-family", "10", "--out", str(out)]) == 0
    assert "wrote " in capsys.readouterr().out.splitlines()[-1]
    from moe_utils.studies.real_models import Tables

    for key in ("accuracy", "mask_importance", "probe_importance", "ablation", "cross", "layers"):
        stem = Tables.FILES[key].format(prefix="08_llama")
        assert (out / f"{stem}.png").exists() and (out / f"{stem}.csv").exists(), stem
