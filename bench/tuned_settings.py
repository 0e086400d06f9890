"""Sara's settings with the changes the benchmarks measured, for bench runs only.

    DJANGO_SETTINGS_MODULE=bench.tuned_settings BENCH_TUNING=persistent,prepared ...

Never imported by the project: it exists so a recommendation in bench/RESULTS.md is measured on
the real code before anyone edits config/settings.py. Each name in BENCH_TUNING adds one change:

  persistent  web processes keep one connection (CONN_MAX_AGE) instead of taking one from the
              psycopg pool on every request — a sync worker serves one request at a time;
  prepared    server-side binding with prepared statements: PostgreSQL parses and plans the hot
              statements once per connection instead of on every request.
"""

import os

from config.settings import *  # noqa: F403
from config.settings import DATABASES

_tuning = {name.strip() for name in os.environ.get("BENCH_TUNING", "").split(",") if name.strip()}
_db = DATABASES["default"]

if "persistent" in _tuning:
    _db.setdefault("OPTIONS", {}).pop("pool", None)
    _db["CONN_MAX_AGE"] = 600
    _db["CONN_HEALTH_CHECKS"] = True

if "prepared" in _tuning:
    _db.setdefault("OPTIONS", {})["server_side_binding"] = True
    _db["OPTIONS"]["prepare_threshold"] = 2
