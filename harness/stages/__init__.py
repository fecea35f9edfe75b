"""The pipeline, one module per DVC stage (dvc.yaml): fetch -> tune -> train -> probe,
robustness -> compare -> rank -> paper. Each module's `run` is what `msabench <stage>` calls;
each imports only what its stage runs, and its `deps` in dvc.yaml list exactly those modules
(harness/code_identity.py walks the imports; tests/test_dvc_layout.py checks the two agree)."""
