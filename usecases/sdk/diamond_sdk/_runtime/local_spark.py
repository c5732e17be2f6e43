"""The one builder of small local SparkSessions (the test harness and the deploy check).

The streaming job does not use it: spark-submit gives the job its master and settings.
"""
from __future__ import annotations

import os
import sys
from typing import Any


def local_spark_session(app_name: str, cores: int, config: dict[str, str] | None = None) -> Any:
    """A loopback-only local session on `cores` cores, UTC, no UI, quiet logs; `config` adds
    settings. An existing session in this process is returned as it is (getOrCreate)."""
    from pyspark.sql import SparkSession

    # Python workers must run this interpreter (the one with pandas and pyarrow).
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    builder = (
        SparkSession.builder.master(f"local[{cores}]").appName(app_name)
        .config("spark.ui.enabled", "false").config("spark.sql.shuffle.partitions", str(cores))
        .config("spark.driver.host", "127.0.0.1").config("spark.driver.bindAddress", "127.0.0.1")
        .config("spark.sql.session.timeZone", "UTC")
    )
    for key, value in (config or {}).items():
        builder = builder.config(key, value)
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel("ERROR")
    return session
