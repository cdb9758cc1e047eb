"""pytest hooks of pytest-ablation (being written)."""
