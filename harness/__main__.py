"""`python -m harness` is the same as the `msabench` console script."""

from harness.cli import main

raise SystemExit(main())
