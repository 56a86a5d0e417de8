"""The measures of notebook 08 on your own checkpoint, as a command and as functions: tables out, no notebook.

    python -m moe_utils.measure routing --model PATH_OR_ID [--texts wiki=a.txt,code=b.txt] [--sigmas 0.1,0.5,1] --out DIR
    python -m moe_utils.measure heads --model PATH_OR_ID [--per-family 150] --out DIR

``routing`` (an MoE model: Mixtral, OLMoE, Qwen-MoE, DeepSeek-V3, …) writes the Jaccard of each router's top-k sets
under x' = x + ε at its input (notebook 04's measure), the relative expert load per domain × layer × expert and MaxVio
(notebook 05's); without ``--texts`` the domains are notebook 05's (WikiText-2, Python code, DM Mathematics), as in
notebook 08. ``heads`` (any supported model) writes notebook 08's head tables and figures: accuracy per task family, both
importance maps, ablations, specificity and the layer profile. The same functions as notebook 08's run them; bad arguments are one
line naming the flag as typed.

    from moe_utils.measure import routing_tables
    tables = routing_tables("path/to/olmoe", texts={"mine": open("a.txt").read()}, sigmas=(0.1, 0.5))
    tables.stability.groupby("sigma")["jaccard"].mean()      # J(σ)
    tables.expert_load.head()                                 # relative load per domain, layer, expert
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .errors import MoeError, parse_floats
from .io import paths

FLAGS = {  # the settings' parameter names -> the command's flags, for one-line errors in the user's own words
    "MODEL": "--model",
    "SIGMAS": "--sigmas",
    "SEED": "--seed",
    "MAX_TOKENS": "--max-tokens",
    "PER_FAMILY": "--per-family",
    "DTYPE": "--dtype",
    "DEVICE": "--device",
}


def settings_for(model: str, **fields):
    """Notebook 08's settings for ``model`` with the given fields (validated as the notebook validates them)."""
    from .studies.real_models.run import check_sources
    from .studies.real_models.settings import RealModelSettings

    settings = RealModelSettings(model=model, **fields)
    check_sources(settings)  # a folder without weights or a tokenizer, an unreachable hub id: one line, before work
    return settings


def text_windows(tokenizer, texts: dict[str, str], max_tokens: int, seq_len: int = 128) -> dict:
    """Per named text: windows [n, seq_len] of at most ``max_tokens`` of its tokens (the model's own tokenizer)."""
    import torch

    from .hf.routing import token_windows

    windows = {}
    for name, text in texts.items():
        ids = torch.tensor(tokenizer(text, add_special_tokens=False)["input_ids"], dtype=torch.long)
        if len(ids) < seq_len:
            raise MoeError(f"--texts: {name!r} gives {len(ids)} tokens; it needs at least {seq_len}")
        windows[name] = token_windows(ids, seq_len, max_tokens)
    return windows


def routing_tables(
    model: str,
    texts: dict[str, str] | None = None,
    sigmas: tuple[float, ...] = (0.05, 0.1, 0.2, 0.5, 1.0),
    *,
    seed: int = 0,
    max_tokens: int = 4096,
    dtype: str = "auto",
    device: str = "auto",
):
    """Notebook 08's routing tables (``RoutingTables``: stability, expert_load, maxvio) of an MoE ``model`` (a
    folder or hub id) on ``texts`` (name -> text; default notebook 05's three domains)."""
    from .hf.routing import routers
    from .studies.real_models.job import domain_token_windows, load_model, routing_tables_on

    settings = settings_for(model, sigmas=tuple(sigmas), seed=seed, max_tokens=max_tokens, dtype=dtype, device=device)
    loaded, tokenizer = load_model(model, settings)
    routers(loaded)  # a dense model: one line saying it has no routers
    max_tokens = settings.sizes["max_tokens"]
    if texts:
        windows = text_windows(tokenizer, texts, max_tokens)
    else:
        windows = domain_token_windows(tokenizer, settings.seed, max_tokens)
    tables = routing_tables_on(loaded, tokenizer, windows, settings)
    tables.prefix = settings.prefix
    return tables


def head_tables(model: str, *, seed: int = 0, per_family: int = 150, dtype: str = "auto", device: str = "auto"):
    """Notebook 08's head tables (``RealModelTables``) of ``model``: its ``run`` on the eight task families."""
    from .studies.real_models.run import run

    settings = settings_for(model, seed=seed, per_family=per_family, dtype=dtype, device=device)
    tables, _ = run(settings)
    return tables


def saving_to(folder: Path):
    """Tables saved meanwhile go to ``folder`` (created), not to ``figures/``."""
    folder.mkdir(parents=True, exist_ok=True)
    return paths.env_set(paths.FIGURES_ENV, str(folder.resolve()))


def parse_texts(text: str) -> dict[str, str]:
    """``name=file,name=file`` -> {name: the file's text}; one line for a bad entry or a missing file."""
    texts = {}
    for entry in [e.strip() for e in text.split(",") if e.strip()]:
        name, sep, file = entry.partition("=")
        if not sep or not name.strip() or not file.strip():
            raise MoeError(f"--texts={text!r} is not allowed; write name=file pairs, e.g. wiki=a.txt,code=b.py")
        path = Path(file.strip()).expanduser()
        if not path.is_file():
            raise MoeError(f"--texts={text!r} is not allowed; {path} is not a readable file")
        texts[name.strip()] = path.read_text(errors="replace")
    if not texts:
        raise MoeError(f"--texts={text!r} is not allowed; it names no file")
    return texts


def in_flag_words(error: MoeError) -> MoeError:
    """The settings' error with each parameter named by the command's flag (``SIGMAS=`` -> ``--sigmas=``)."""
    text = str(error)
    for name, flag in FLAGS.items():
        text = text.replace(f"{name}=", f"{flag}=")
    return MoeError(text)


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(prog="python -m moe_utils.measure", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    routing = commands.add_parser("routing", help="Jaccard under noise, expert load and MaxVio of an MoE model")
    heads = commands.add_parser("heads", help="head importance per task family, ablations, layer profile")
    for sub in (routing, heads):
        sub.add_argument("--model", required=True, help="a saved model folder or a Hugging Face hub id")
        sub.add_argument("--out", required=True, type=Path, help="the folder the tables are written to")
        sub.add_argument("--seed", type=int, default=0)
        sub.add_argument("--dtype", default="auto", help="auto | float32 | bfloat16 | float16")
        sub.add_argument("--device", default="auto", help="auto | cpu | cuda")
    routing.add_argument("--texts", default=None, help="name=file pairs, e.g. wiki=a.txt,code=b.py")
    routing.add_argument("--sigmas", default="0.05,0.1,0.2,0.5,1", help="comma-separated noise levels")
    routing.add_argument("--max-tokens", type=int, default=4096, help="tokens per text")
    heads.add_argument("--per-family", type=int, default=150, help="prompts per task family")
    args = parser.parse_args(argv)
    try:
        common = dict(seed=args.seed, dtype=args.dtype, device=args.device)
        if args.command == "routing":
            sigmas = tuple(parse_floats("--sigmas", args.sigmas))
            texts = parse_texts(args.texts) if args.texts is not None else None
            tables = routing_tables(args.model, texts, sigmas, max_tokens=args.max_tokens, **common)
        else:
            tables = head_tables(args.model, per_family=args.per_family, **common)
        with saving_to(args.out):
            tables.save()
            if args.command == "heads":  # notebook 08's figures beside their tables
                from .studies.real_models.plots import every_figure

                for key, (figure, data) in every_figure(tables).items():
                    tables.save_figure(key, figure, data)
    except MoeError as error:
        print(f"error: {in_flag_words(error)}", file=sys.stderr)
        return 2
    written = sorted(p.name for p in args.out.glob(f"{tables.prefix}_*"))
    print(f"wrote {len(written)} tables to {args.out}: {', '.join(written)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
