"""Shared by both variants: purchases per customer in sliding windows."""
from pyspark.sql import DataFrame
from pyspark.sql import functions as F


def windowed_spend(records: DataFrame, ctx) -> DataFrame:
    """One row per (customer, window): spend, purchase count, the record ids involved.

    `records` are already the purchases with an amount (usecase.yaml's input_where), each
    record once, watermarked by the SDK on event_time (params.watermark)."""
    return (
        records
        .groupBy("customer_id", F.window("event_time", ctx.param("window", "1 hour"), ctx.param("slide", "30 minutes")))
        .agg(F.sum("amount").alias("spend"), F.count("*").alias("purchases"), F.array_sort(F.collect_list("record_id")).alias("record_ids"))
    )


def spike_feedback(windows: DataFrame, threshold: float, rule: str) -> DataFrame:
    """Feedback rows for the windows that crossed the threshold."""
    return windows.select(
        "customer_id",
        F.lit("spending_spike").alias("kind"),
        F.when(F.col("spend") > 3 * threshold, "critical").otherwise("warning").alias("severity"),
        F.format_string("spent %.2f in the hour from %s (%d purchases), above %.2f",
                        "spend", F.date_format("window.start", "yyyy-MM-dd HH:mm"), "purchases", F.lit(float(threshold))).alias("message"),
        (F.col("spend") / F.lit(float(threshold))).alias("score"),
        F.col("window.end").alias("event_time"),
        "record_ids",
        F.concat_ws("|", "customer_id", F.date_format("window.start", "yyyy-MM-dd'T'HH:mm")).alias("key"),
        F.create_map(F.lit("rule"), F.lit(rule), F.lit("spend"), F.format_number("spend", 2),
                     F.lit("window_start"), F.date_format("window.start", "yyyy-MM-dd'T'HH:mm:ss'Z'")).alias("details"),
    )
