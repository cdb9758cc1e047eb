"""What a reader sees of a run: the terminal tables and summary, report.md, report.html and
the JUnit properties. report.json itself, the results' serialisation, is
``pytest_ablation.results.report_json``.

Importing this package imports none of its modules (the plugin's end-of-run summary lives
here, and a run without studies must not pay for the rest).
"""

from ..lazy import lazy_exports

_EXPORTS = {
    "markdown": ("render_markdown",),
    "terminal": ("render_results_table",),
    "write": ("write_reports",),
}

__getattr__, __dir__, __all__ = lazy_exports(__name__, _EXPORTS)
