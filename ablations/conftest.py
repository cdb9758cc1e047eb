"""Fixtures shared by the studies: method generators built on this worker's models.

Each fixture takes the profile's models from ``ablation_models`` (loaded once per worker)
and returns a generator for ``ablation.run``. Studies stay short and read like the
ablation plan; the methods themselves live in ``pytest_ablation.methods``.
"""
