"""DuckDB settings are database-wide: the extract's temporary ones must not outlive its statement."""

from __future__ import annotations

import duckdb

from resources.warehouse import Warehouse


def test_duckdb_settings_apply_for_the_block_and_are_put_back(tmp_path):
    path = tmp_path / "wh.duckdb"
    warehouse = Warehouse(url=f"duckdb:///{path}", duckdb_memory_limit="300MB")
    with warehouse.connect() as conn:
        other = duckdb.connect(str(path))  # same file, same process: the same database
        try:

            def seen() -> tuple:
                return other.execute(
                    "select current_setting('memory_limit'), current_setting('disabled_optimizers')"
                ).fetchone()

            before = seen()
            assert before == ("286.1 MiB", "")  # 300MB, as DuckDB shows it
            with conn.duckdb_settings(memory_limit="128MB", disabled_optimizers="build_side_probe_side"):
                assert seen()[1] == "build_side_probe_side"
                assert seen()[0] != before[0]
            assert seen() == before
        finally:
            other.close()
