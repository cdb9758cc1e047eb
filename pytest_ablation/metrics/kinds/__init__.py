"""The judges' model kinds (open_clip models, read by the metrics), one module each."""
