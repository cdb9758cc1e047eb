"""The ``pytest-ablation`` command and its ``submit`` executor."""
