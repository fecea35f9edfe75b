"""Rendering, computing nothing: comparison tables in Markdown, LaTeX and CSV (tables.py), the
robustness report (robustness.py), figures (figures.py, comparison_figures.py, cd_diagram.py)."""
