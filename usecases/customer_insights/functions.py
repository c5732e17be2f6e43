"""customer_summary: what one customer did since a time, from history (views records, feedback)."""
from __future__ import annotations

from typing import Any

from pyspark.sql import SparkSession
from pyspark.sql import functions as F


def customer_summary(spark: SparkSession, params: dict[str, Any], ctx: Any) -> dict[str, Any]:
    customer_id: str = params["customer_id"]
    since = params["since"]  # an aware datetime (UTC)
    mine = (F.col("customer_id") == customer_id) & (F.col("event_time") >= F.lit(since))
    records = spark.table("records").where(mine)
    # One job for the count and the spend: a grouping with the count summed afterwards.
    by_currency = records.groupBy("currency").agg(F.count("*").alias("n"), F.sum("amount").alias("spend")).collect()
    feedback = spark.table("feedback").where(mine).groupBy("kind").count().collect()
    return {
        "customer_id": customer_id,
        "since": since.isoformat().replace("+00:00", "Z"),
        "records": sum(int(row["n"]) for row in by_currency),
        "spend_by_currency": {row["currency"]: round(float(row["spend"]), 2) for row in by_currency if row["currency"] is not None and row["spend"] is not None},
        "feedback_by_kind": {row["kind"]: int(row["count"]) for row in feedback},
    }
