"""Data quality checks on each record: plain PySpark, no state."""
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

MONEY_TYPES = ("purchase", "refund", "payment")


def transform(records: DataFrame, ctx) -> DataFrame:
    max_amount = float(ctx.param("max_amount", 1_000_000))
    tolerance = int(ctx.param("future_tolerance_minutes", 5))
    amount_text = F.coalesce(F.format_number("amount", 2), F.lit("null"))

    # (condition, kind, severity, message, field)
    checks = [
        (F.col("amount").isNull() & F.col("type").isin(*MONEY_TYPES), "missing_amount", "warning",
         F.format_string("record %s is a %s without an amount", "record_id", "type"), "amount"),
        (F.col("amount").isNotNull() & F.col("currency").isNull(), "missing_currency", "warning",
         F.format_string("record %s has an amount but no currency", "record_id"), "currency"),
        ((F.col("amount") < 0) & (F.col("type") == "purchase"), "negative_amount", "warning",
         F.concat(F.lit("purchase "), F.col("record_id"), F.lit(" has a negative amount "), amount_text), "amount"),
        (F.abs(F.col("amount")) > F.lit(max_amount), "amount_out_of_range", "critical",
         F.concat(F.lit("record "), F.col("record_id"), F.lit(" has amount "), amount_text, F.lit(f", above {max_amount:,.0f}")), "amount"),
        (F.col("event_time") > F.current_timestamp() + F.expr(f"INTERVAL {tolerance} MINUTES"), "future_timestamp", "warning",
         F.format_string("record %s is dated %s, in the future", "record_id", F.date_format("event_time", "yyyy-MM-dd HH:mm:ss")), "event_time"),
    ]
    found = [
        records.where(condition).select(
            "customer_id",
            F.lit(kind).alias("kind"),
            F.lit(severity).alias("severity"),
            message.alias("message"),
            "event_time",
            F.array("record_id").alias("record_ids"),
            F.create_map(F.lit("field"), F.lit(field), F.lit("type"), F.col("type")).alias("details"),
        )
        for condition, kind, severity, message, field in checks
    ]
    result = found[0]
    for frame in found[1:]:
        result = result.unionByName(frame)
    return result
