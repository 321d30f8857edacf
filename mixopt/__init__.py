"""mixopt: choose the data mixture of a language model's pretraining corpus empirically."""
__version__ = "0.1.0"


def open(path, timeout=None):  # noqa: A001 - the read-only API: `mixopt.open(path).runs()` (see mixopt/api.py)
    """Open a warehouse (file or postgresql:// URL) read-only, also while a run writes; `.runs()`,
    `.fits()`, `.proposals()`, `.sql(...)` return polars DataFrames."""
    from mixopt.api import open as _open

    return _open(path, timeout)
