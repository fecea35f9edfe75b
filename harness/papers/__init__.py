"""Published tables regenerated beside this project's runs: the registered tables and their
numbers (tables.py and the YAML files here), the reproduced frame (reproduce.py) and its
Markdown, LaTeX and CSV (render.py)."""
