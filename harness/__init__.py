"""msabench: a reproducibility benchmark harness for multimodal sentiment analysis.

Read it as the pipeline (docs/architecture.md):

    cli.py          `msabench <command>`: imports only the module of the stage it runs
    stages/         one module per DVC stage: fetch, tune, train, probe, robustness, compare,
                    rank, paper (each `run(params, ...)`)
    config/         params.yaml -> typed, strictly checked `Params`; profiles
    data/           sources and formats -> the canonical feature store -> batches
    training/       the one training loop, seeds in worker processes, checkpoints
    tuning/         Optuna studies on the validation split, their storage and histories
    evaluation/     the missing-modality protocol and linear probes on trained models
    statistics/     pure functions: comparisons, paired tests, resampling, ranks
    reports/        rendering only: tables, figures, the robustness report
    papers/         published tables and their regeneration beside this project's runs
    records/        typed, versioned records of runs, studies and robustness sweeps
    tracking.py     MLflow (the only module that imports it) and the standard run tags
    code_identity.py  the code a stage runs, found by walking imports (keys studies, checks
                    dvc.yaml's deps)
"""

__version__ = "0.1.0"
