"""The DuckDB warehouse: the one package that reads and writes mixopt's results.

- `schema.py`: the tables, as ordered migrations applied once each (`schema_version`);
- `store.py`: `Warehouse`, the flow's single writer (and the lookups its tasks need), `writer()`;
- `reads.py`: every read of the report and the public API, by name, as polars DataFrames;
- `readonly.py`: the read-only guard of `mixopt sql` and `mixopt.open`.
"""

from mixopt.warehouse.readonly import ReadOnlyWarehouse, WarehouseError, check_read_only, read_only_query
from mixopt.warehouse.store import Warehouse, close_writer, writer

__all__ = ["ReadOnlyWarehouse", "Warehouse", "WarehouseError", "check_read_only", "close_writer",
           "read_only_query", "writer"]
