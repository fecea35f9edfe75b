"""Building blocks shared by several methods (defined once, here)."""
