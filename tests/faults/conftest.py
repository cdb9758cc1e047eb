"""The fault suite reuses the plugin tests' toy project (a cheap, model-free study)."""

from plugin.conftest import lines, toy  # noqa: F401  (fixtures)
