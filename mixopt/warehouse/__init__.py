"""The warehouse: the one package that reads and writes mixopt's results (a DuckDB file, or the
shared PostgreSQL store).

- `schema.py`: the tables, as ordered migrations applied once each (`schema_version`);
- `store.py`: `Warehouse`, the writer (and the lookups its tasks need), `writer()`;
- `reads.py`: every read of the report and the public API, by name, as polars DataFrames;
- `readonly.py`: the read-only guard of `mixopt sql`, `mixopt report` and `mixopt.open`;
- `snapshot.py`: how a DuckDB file is read while a run writes it (the writer's read snapshot);
- `postgres.py`: the shared store (dialect translation, connections, migrations).

Names are imported on first use, so `mixopt sql` starts without loading polars or the writer.
"""

from importlib import import_module

_EXPORTS = {"ReadOnlyWarehouse": "readonly", "WarehouseError": "readonly", "check_read_only": "readonly",
            "read_only_query": "readonly", "Warehouse": "store", "close_writer": "store", "writer": "store",
            "reads": None}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module = import_module(f"{__name__}.{_EXPORTS[name] or name}")
    return module if _EXPORTS[name] is None else getattr(module, name)
