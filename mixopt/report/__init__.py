"""The experiment report, built from the warehouse alone: `build_report` writes report.md, report.html
and the plots. One module per part: `markdown.py` (the whole, and the trust checks), `choice.py`
(anchors, scale checks, hedge, stability, pilot, verdict), `runs.py` (held-out curves, paired
differences, achieved mixtures), `interaction.py`, `evals.py`, `hierarchy.py`, `plots.py`, `html.py`
(the self-contained page) and `aioli_plot.py` (mixture trajectories)."""

from mixopt.report.markdown import Report, build_report, comparison_rows, latest_experiment, trust_checks

__all__ = ["Report", "build_report", "comparison_rows", "latest_experiment", "trust_checks"]
