"""What a run produces, as typed records: case outcomes, comparisons, claims, the gate, merge."""
