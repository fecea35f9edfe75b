"""Datasets: where features come from (sources.py, download.py, formats/, synthetic.py), the
canonical feature store (store.py, split_arrays.py), loading and batching (loading.py,
mmap_npz.py, prefetch.py), the missing-modality masks (missing.py), and what a dataset is
(spec.py, torch-free; types.py, the tensor containers)."""
