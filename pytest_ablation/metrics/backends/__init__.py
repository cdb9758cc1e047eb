"""Model-loading code of the metrics that bring their own model (their weights: ../weights.py)."""
