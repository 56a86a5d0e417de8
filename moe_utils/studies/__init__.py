"""One package per study, each with the same files and the same entry points (the study protocol):

    settings.py  Settings: the notebook's parameters as one frozen, validated dataclass (the defaults live here)
    job.py       the unit of work (one seed, one model) that ``runtime.run_parallel`` sends to a worker
    run.py       run(settings) -> Tables: every job, then the tables over seeds
    tables.py    Tables: the results, its file names, save()/load() (the only contract with notebooks and docs)
    report.py    findings(tables) -> Markdown: every number in the prose comes from the tables
    plots.py     the figures, each drawn from one table
    explore.py   explorer(): the notebook's interactive view over the saved tables
    method.py    what the study trains and measures that no other study uses (optional)

A notebook imports ``Settings, run, findings, plots, explorer`` from its study's package. Studies import measures,
models (``moe``, ``exp1``, ``hf``), datasets and io, never each other.
"""
