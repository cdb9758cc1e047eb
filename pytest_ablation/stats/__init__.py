"""Statistics of paired deltas: intervals and tests, claims and their verdicts, sample sizes."""
