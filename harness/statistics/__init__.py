"""Statistics as pure functions, arrays in and numbers out: the comparison frame (comparison.py),
paired tests and Holm's correction (significance.py), bootstrap, ASO and the test-set bootstrap
(resampling.py, batch_metrics.py), Friedman and Nemenyi across datasets (ranks.py)."""
