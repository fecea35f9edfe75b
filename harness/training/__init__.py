"""The one training loop (loop.py: fit, evaluate, predict, seeding), training seeds in worker
processes (seed_runs.py), checkpoints of trained models (checkpoints.py) and the allocator
setting that keeps a CPU step free of page faults (allocator.py)."""
