"""Provision Superset for `pricing-ops bi`, in one process of Superset's own environment.

Run by `resources/superset.py` with Superset's interpreter (never imported by the platform: it
needs Superset and its SQLAlchemy 1.4). One process instead of four CLI calls (`db upgrade`,
`fab create-admin`, `init`, `import-dashboards`): Superset's app loads once.

- The metadata DB (`$PRICING_OPS_BI_HOME/superset.db`) starts as a copy of a cached base (migrated
  and initialised, no user, no database: the same for every data folder of this Superset version),
  made once when missing.
- The admin user is created, or its password reset to the one given.
- The dashboard bundle is imported with the warehouse's URI and schema put in (from the
  environment: the URI may hold bi_reader's password and never reaches argv or a file), and the
  datasets' columns are read from the tables.

Progress goes to stderr, one line a step; exit 1 with one line on failure.
"""

from __future__ import annotations

import os
import shutil
import sys
import time
import uuid
from pathlib import Path

import yaml

HOME = Path(os.environ["PRICING_OPS_BI_HOME"])
BASE_DB = Path(os.environ["PRICING_OPS_BI_BASE_DB"])
BUNDLE = Path(os.environ["PRICING_OPS_BI_BUNDLE"])
ADMIN_USER = os.environ["PRICING_OPS_BI_ADMIN_USER"]
ADMIN_PASSWORD = os.environ["PRICING_OPS_BI_ADMIN_PASSWORD"]
DATABASE_URI = os.environ["PRICING_OPS_BI_DATABASE_URI"]
SCHEMA = os.environ["PRICING_OPS_BI_SCHEMA"]
# Extra options of the database (JSON): DuckDB opens the BI copy read-only.
READ_ONLY_DUCKDB = DATABASE_URI.startswith("duckdb:")


def say(message: str) -> None:
    print(f"superset: {message}", file=sys.stderr, flush=True)


def bundle_contents() -> dict[str, str]:
    """The bundle's YAML files keyed as Superset's importer wants them (paths inside the bundle),
    with the warehouse's URI and schema put in."""
    contents: dict[str, str] = {}
    for path in sorted(BUNDLE.rglob("*.yaml")):
        key = path.relative_to(BUNDLE).as_posix()
        doc = yaml.safe_load(path.read_text())
        if key.startswith("databases/"):
            doc["sqlalchemy_uri"] = DATABASE_URI
            extra = dict(doc.get("extra") or {})
            if READ_ONLY_DUCKDB:
                # duckdb-engine passes connect_args to duckdb.connect: a reader never locks the copy.
                extra["engine_params"] = {"connect_args": {"read_only": True}}
            doc["extra"] = extra
        elif key.startswith("datasets/"):
            doc["schema"] = SCHEMA
        contents[key] = yaml.safe_dump(doc, sort_keys=False)
    return contents


def fresh_metadata_db(target: Path) -> None:
    """`target` (the app's metadata DB, absent) as the cached base: migrated, roles and permissions
    in place. The base is made once, here, when missing."""
    if BASE_DB.exists():
        shutil.copyfile(BASE_DB, target)
        say(f"metadata DB from the cached base {BASE_DB}")
        return
    with _app().app_context():
        _upgrade()
        from superset import appbuilder, security_manager

        started = time.monotonic()
        appbuilder.add_permissions(update_perms=True)
        security_manager.sync_role_definitions()
        say(f"roles and permissions ({time.monotonic() - started:.0f} s)")
    BASE_DB.parent.mkdir(parents=True, exist_ok=True)
    tmp = BASE_DB.with_name(f".{BASE_DB.name}.{uuid.uuid4().hex[:8]}")
    shutil.copyfile(target, tmp)
    os.replace(tmp, BASE_DB)  # two provisionings at once make the same file: the last one wins


_APP = None


def _app():
    global _APP
    if _APP is None:
        from superset.app import create_app

        started = time.monotonic()
        _APP = create_app()
        say(f"app loaded ({time.monotonic() - started:.0f} s)")
    return _APP


def _upgrade() -> None:
    import superset
    from flask_migrate import upgrade

    started = time.monotonic()
    upgrade(directory=str(Path(superset.__file__).parent / "migrations"))
    say(f"metadata DB migrated ({time.monotonic() - started:.0f} s)")


def ensure_admin() -> None:
    from superset import security_manager

    user = security_manager.find_user(username=ADMIN_USER)
    if user is None:
        role = security_manager.find_role("Admin")
        created = security_manager.add_user(ADMIN_USER, "BI", "Admin", f"{ADMIN_USER}@pricing-ops.local", role,
                                            password=ADMIN_PASSWORD)
        if not created:
            raise SystemExit(f"superset: could not create the admin user {ADMIN_USER!r} (see Superset's log above)")
        say(f"admin user {ADMIN_USER!r} created")
    else:
        security_manager.reset_password(user.id, ADMIN_PASSWORD)
        say(f"admin user {ADMIN_USER!r}: password set")


def import_bundle() -> None:
    from flask import g
    from superset import db, security_manager
    from superset.commands.importers.v1.assets import ImportAssetsCommand
    from superset.connectors.sqla.models import SqlaTable

    started = time.monotonic()
    g.user = security_manager.find_user(username=ADMIN_USER)
    # Everything overwritten (a dashboard import would keep charts and databases as first imported).
    ImportAssetsCommand(bundle_contents()).run()
    # The bundle names the tables; their columns (names, types, time columns) come from the warehouse.
    for dataset in db.session.query(SqlaTable).all():
        dataset.fetch_metadata()
    db.session.commit()
    say(f"dashboard bundle imported ({time.monotonic() - started:.0f} s)")


def main() -> int:
    HOME.mkdir(parents=True, exist_ok=True)
    # The launcher removes a metadata DB whose provisioning never finished.
    target = HOME / "superset.db"
    if not target.exists():
        fresh_metadata_db(target)
    with _app().app_context():
        _upgrade()  # a no-op at head; migrates a metadata DB made by an older Superset
        ensure_admin()
        import_bundle()
    return 0


if __name__ == "__main__":
    sys.exit(main())
