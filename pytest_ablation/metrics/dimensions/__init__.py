"""One module per metric dimension, each with ``evaluate(MetricInput) -> Score`` and its
public function(s). Kept apart from the package's top level so that the function
``pytest_ablation.metrics.clip_score`` is never shadowed by a module of the same name."""
