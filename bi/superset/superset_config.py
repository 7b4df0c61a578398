"""Superset's configuration for `pricing-ops bi` (read by Superset through SUPERSET_CONFIG_PATH).

Every value that differs per data folder comes from the environment the launcher
(`resources/superset.py`) sets: where the metadata DB and the secret key are. Nothing here reaches
the network: no examples, no telemetry, no async queries, caches in memory.
"""

import os
from pathlib import Path

_HOME = Path(os.environ["PRICING_OPS_BI_HOME"])

SQLALCHEMY_DATABASE_URI = f"sqlite:///{_HOME / 'superset.db'}"
# Generated once per data folder (mode 0600): it encrypts the warehouse password Superset keeps.
SECRET_KEY = (_HOME / "secret-key").read_text().strip()

# The dashboard is imported from the repository; Superset's own examples are not loaded.
SUPERSET_LOAD_EXAMPLES = False
# Filters by slug are native filters; nothing else is switched on.
FEATURE_FLAGS = {"DASHBOARD_NATIVE_FILTERS": True, "ALERT_REPORTS": False, "THUMBNAILS": False}
# One person on a laptop or a BI host behind a proxy: no rate-limit store, no CSP reporting service.
RATELIMIT_ENABLED = False
TALISMAN_ENABLED = False
# Charts query the warehouse each time: the marts change with every refresh.
CACHE_CONFIG = {"CACHE_TYPE": "SimpleCache", "CACHE_DEFAULT_TIMEOUT": 300}
DATA_CACHE_CONFIG = {"CACHE_TYPE": "NullCache"}
# The dashboard's data is read-only; nobody uploads files into the warehouse from here.
PREVENT_UNSAFE_DB_CONNECTIONS = True
SQLLAB_CTAS_NO_LIMIT = False
WTF_CSRF_ENABLED = True
