"""Explorers: each view is a plain function of (tables or model, choices) that draws a figure from the committed
tables; bad choices are one line; where nothing runs live the cell shows one static image with alt text."""

from __future__ import annotations

import json

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from moe_utils.errors import MoeError  # noqa: E402
from moe_utils.io import explorer, paths  # noqa: E402
from moe_utils.measures.hooks import record
from moe_utils.moe.transformer import TransformerModel  # noqa: E402
from moe_utils.pipeline import list_notebooks  # noqa: E402
from moe_utils.studies.expert_load import explore as expert_load_explore  # noqa: E402
from moe_utils.studies.expert_load.settings import ExpertLoadSettings  # noqa: E402
from moe_utils.studies.head_importance import explore as head_importance_explore  # noqa: E402
from moe_utils.studies.layer_activation import explore as layer_activation_explore  # noqa: E402
from moe_utils.studies.routing_stability import explore as routing_stability_explore  # noqa: E402
from moe_utils.studies.upcycled_moe import explore as upcycled_moe_explore  # noqa: E402

COMMITTED = paths.REPO_ROOT / "figures"  # the committed full run's tables
VIEWS = {
    "04": (routing_stability_explore, routing_stability_explore.stability_view),
    "05": (expert_load_explore, expert_load_explore.load_view),
    "06": (head_importance_explore, head_importance_explore.head_view),
    "07": (layer_activation_explore, layer_activation_explore.layer_view),
    "09": (upcycled_moe_explore, upcycled_moe_explore.load_view),
}


def sample_choices(options: dict, n: int, seed: int = 0) -> list[dict]:
    """The default choices and ``n - 1`` other combinations drawn from the options."""
    rng = np.random.default_rng(seed)
    chosen = [explorer.default_choices(options, {})]
    for _ in range(n - 1):
        chosen.append({k: v if isinstance(v, str) else v[rng.integers(len(v))] for k, v in options.items()})
    return chosen


@pytest.mark.parametrize("notebook", sorted(VIEWS))
def test_each_view_draws_a_figure_on_the_committed_tables(notebook):
    module, view = VIEWS[notebook]
    tables = module.explore_tables(COMMITTED)
    options = module.controls(tables)
    assert all(len(v) >= 1 for v in options.values()), options
    for choices in sample_choices(options, 6):
        fig = view(tables, **choices)
        assert isinstance(fig, plt.Figure) and fig.axes, choices
        plt.close(fig)


def png_of(fig) -> bytes:
    return explorer.figure_png(fig)


def test_a_different_choice_draws_a_different_image():
    tables = expert_load_explore.explore_tables(COMMITTED)
    options = expert_load_explore.controls(tables)
    first = explorer.default_choices(options, {})
    other = {**first, "layer": options["layer"][-1]}
    assert png_of(expert_load_explore.load_view(tables, **first)) != png_of(
        expert_load_explore.load_view(tables, **other)
    )


def tiny_byte_models(settings: ExpertLoadSettings, shown: bool = True) -> dict:
    """Untrained models of each run, keyed by (shape, method) as the controls show them (or as the runs name them)."""
    from moe_utils.studies.expert_load.method import METHOD_LABELS

    return {
        (shape, METHOD_LABELS[method] if shown else method): TransformerModel(
            settings.config(shape, method), "tokens", 256, head="lm", seed=1
        ).eval()
        for shape, method in settings.runs
    }


def test_the_text_view_colours_every_byte_by_the_models_first_choice():
    settings = ExpertLoadSettings()
    model = tiny_byte_models(settings)[("standard", "Aux-Loss-Free")]
    data, experts = expert_load_explore.routed_bytes(model, "héllo, 3 + 4 = 7", layer=2)
    assert data == "héllo, 3 + 4 = 7".encode() and experts.shape == (len(data),)  # é is two bytes
    with torch.no_grad(), record(model.routers()) as seen:
        model(torch.tensor(list(data))[None])
    top = seen.output(1).topk_idx[0, :, 0].numpy()
    assert np.array_equal(experts, top)
    long, _ = expert_load_explore.routed_bytes(model, "x" * 1000, layer=1)
    assert len(long) == model.config.max_len  # cut to the model's context, not refused
    tables = expert_load_explore.explore_tables(COMMITTED)
    options = expert_load_explore.controls(tables, with_text=True)
    assert options["text"] == expert_load_explore.DEFAULT_TEXT
    fig = expert_load_explore.load_view(
        tables, models=tiny_byte_models(settings), **explorer.default_choices(options, {})
    )
    assert len(fig.axes) == 2
    plt.close(fig)


def test_the_controls_show_the_names_the_figures_use():
    options = expert_load_explore.controls(expert_load_explore.explore_tables(COMMITTED))
    assert options["method"] == ["Aux-Loss-Based", "Aux-Loss-Free"] and "DM Mathematics" in options["domain"]


def test_a_bad_choice_is_one_line_naming_the_control_and_its_options():
    options = {"layer": [1, 2], "text": "abc"}
    with pytest.raises(MoeError, match=r"^layer=7 is not allowed; allowed: 1, 2$"):
        explorer.check_choices(options, {"layer": 7})
    with pytest.raises(MoeError, match="'sigma' is not a control of this explorer; its controls: layer, text"):
        explorer.check_choices(options, {"sigma": 0.1})
    with pytest.raises(MoeError, match="text=3 is not allowed; it must be a text"):
        explorer.check_choices(options, {"text": 3})
    explorer.check_choices(options, {"layer": 2, "text": "any text"})


def test_under_the_pipeline_the_explorer_is_static(monkeypatch):
    monkeypatch.setenv(paths.FIGURES_ENV, "/somewhere")
    assert not explorer.live()
    monkeypatch.delenv(paths.FIGURES_ENV)
    monkeypatch.setenv(explorer.STATIC_ENV, "1")
    assert not explorer.live()
    monkeypatch.delenv(explorer.STATIC_ENV)
    assert not explorer.live()  # plain Python (no kernel): no controls either
    drawn = []
    result = explorer.explore(lambda **c: drawn.append(c) or plt.figure(), {"a": [1, 2]}, lambda c: "alt", a=2)
    assert result is None and drawn == [{"a": 2}]


def explorer_outputs(notebook) -> list[dict]:
    """The saved outputs of the code cell under a notebook's "## Explore" heading."""
    cells = json.loads(notebook.read_text())["cells"]
    index = next(i for i, c in enumerate(cells) if "".join(c["source"]).startswith("## Explore"))
    return cells[index + 1]["outputs"]


@pytest.mark.parametrize(
    "notebook", [p for p in list_notebooks() if p.name[:2] in ("04", "05", "06", "07", "08", "09", "10")]
)
def test_the_committed_explorer_cell_shows_a_static_image_with_alt_text(notebook):
    shown = [o for o in explorer_outputs(notebook) if o["output_type"] in ("display_data", "execute_result")]
    assert len(shown) == 1, notebook.name
    html = "".join(shown[0]["data"]["text/html"])
    assert html.startswith("<img") and 'src="data:image/png;base64,' in html, notebook.name
    alt = html.split('alt="')[1].split('"')[0]
    assert len(alt) > 40 and "open the notebook in JupyterLab for the controls" in alt, notebook.name
    text = json.dumps(explorer_outputs(notebook))
    assert "widget-view" not in text and "Widget Javascript" not in text, notebook.name


def test_the_text_box_uses_the_first_seeds_kept_models_and_only_when_all_are_kept(tmp_path, monkeypatch):
    from moe_utils.io.trained import KeptTables
    from moe_utils.studies.expert_load.job import expert_load_job

    monkeypatch.setenv(paths.TRAINED_ENV, str(tmp_path / "trained"))
    settings = ExpertLoadSettings(profile="quick")
    assert expert_load_explore.kept_models(settings) == {}  # nothing kept: the bars alone
    models = tiny_byte_models(settings, shown=False)
    keep = settings.kept_runs()
    for (shape, method), model in models.items():
        job = dict(settings=settings, seed=settings.seed, label=shape, method=method)
        keep.save(expert_load_job, job, KeptTables({}, {"model": model.state_dict()}))
        if (shape, method) == settings.runs[0]:
            assert expert_load_explore.kept_models(settings) == {}  # one of four kept: not a partial set
    loaded = expert_load_explore.kept_models(settings)
    assert set(loaded) == set(tiny_byte_models(settings))  # keyed as the controls show the methods
    for (shape, method), model in tiny_byte_models(settings).items():
        kept = loaded[(shape, method)].state_dict().values()
        assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), kept))
    assert expert_load_explore.kept_models(ExpertLoadSettings(profile="quick", seed=1)) == {}  # other settings


BAD_CHOICES = {
    "04": [({"layer": 99}, "layer=99 is not allowed; allowed: "), ({"run": "bogus"}, "run='bogus' is not allowed")],
    "05": [({"layer": 99}, "layer=99 is not allowed"), ({"method": "aux_free"}, "method='aux_free' is not allowed")],
    "06": [({"task": "bogus"}, "task='bogus' is not allowed"), ({"head": "L99 H99"}, "head='L99 H99' is not allowed")],
    "07": [({"quantity": "bogus"}, "quantity='bogus' is not allowed"), ({"layer": 99}, "layer=99 is not allowed")],
    "09": [({"layer": 99}, "layer=99 is not allowed"), ({"method": "aux_free"}, "method='aux_free' is not allowed")],
}


@pytest.mark.parametrize("notebook", sorted(VIEWS))
def test_a_view_called_from_python_refuses_a_choice_its_controls_do_not_offer(notebook):
    module, view = VIEWS[notebook]
    tables = module.explore_tables(COMMITTED)
    defaults = explorer.default_choices(module.controls(tables), {})
    for bad, message in BAD_CHOICES[notebook]:
        with pytest.raises(MoeError) as err:
            view(tables, **{**defaults, **bad})
        assert str(err.value).startswith(message) and "\n" not in str(err.value), err.value
    plt.close("all")


def test_the_prompt_view_refuses_an_empty_prompt_and_an_unknown_family_and_caps_a_long_prompt(tmp_path):
    pytest.importorskip("transformers")
    import pandas as pd
    from test_hf import saved_model

    from moe_utils.hf.loading import load_causal_lm
    from moe_utils.studies.real_models import explore as real_model_explore

    model, tokenizer = load_causal_lm(str(saved_model("llama", tmp_path / "llama")), device="cpu")
    shares = pd.DataFrame(
        [
            {"family": f, "layer": layer, "head": h, "share": 0.125}
            for f in ("Retrieval", "Math")
            for layer in (1, 2)
            for h in (1, 2, 3, 4)
        ]
    )
    view = real_model_explore.prompt_view
    with pytest.raises(MoeError, match=r"^prompt='' is not allowed; type a prompt"):
        view(shares, model, tokenizer, "Math", "  ", "")
    with pytest.raises(MoeError, match=r"^family='bogus' is not allowed; allowed: 'Retrieval', 'Math'$"):
        view(shares, model, tokenizer, "bogus", "abc", "")
    long = "word " * 1000  # 5,000 characters
    fig = view(shares, model, tokenizer, "Math", long, "")
    title = fig.axes[0].get_title()
    assert f"its last {real_model_explore.MAX_PROMPT_TOKENS} of " in title and len(title) < 160
    alt = real_model_explore.alt_text({"family": "Math", "prompt": long, "answer": ""})
    assert len(alt) < 300
    plt.close(fig)


def test_a_new_prompt_clears_the_answer_in_one_redraw(monkeypatch):
    pytest.importorskip("ipywidgets")
    import IPython.display

    made, calls = {}, []

    def widget(name, options, value):
        made[name] = explorer_control(name, options, value)
        return made[name]

    explorer_control = explorer.control_widget
    monkeypatch.setattr(explorer, "control_widget", widget)
    monkeypatch.setattr(explorer, "live", lambda: True)
    monkeypatch.setattr(IPython.display, "display", lambda *a, **k: None)
    monkeypatch.setattr(explorer, "show_png", lambda *a, **k: None)

    def view(family, prompt, answer):
        calls.append((family, prompt, answer))
        fig, ax = plt.subplots(figsize=(2, 2))
        return fig

    controls = {"family": ["Math", "Retrieval"], "prompt": "2 + 2 =", "answer": " 4"}
    explorer.explore(view, controls, lambda c: "alt", clears={"prompt": "answer"})
    assert calls == [("Math", "2 + 2 =", " 4")]
    made["prompt"].value = "The capital of Italy is"
    assert made["answer"].value == "" and calls[-1] == ("Math", "The capital of Italy is", "") and len(calls) == 2
    made["family"].value = "Retrieval"  # another control keeps the answer
    made["answer"].value = " Rome"
    assert calls[-1] == ("Retrieval", "The capital of Italy is", " Rome")
    plt.close("all")
