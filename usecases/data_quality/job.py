"""Data quality checks on each record: plain PySpark, no state, one pass over the batch."""
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

import diamond_sdk

MONEY_TYPES = ("purchase", "refund", "payment")


def transform(records: DataFrame, ctx) -> DataFrame:
    max_amount = float(ctx.param("max_amount", 1_000_000))
    tolerance = int(ctx.param("future_tolerance_minutes", 5))
    amount_text = F.coalesce(F.format_number("amount", 2), F.lit("null"))

    def finding(condition, kind, severity, message, field):
        return F.when(condition, F.struct(
            F.lit(kind).alias("kind"), F.lit(severity).alias("severity"), message.alias("message"), F.lit(field).alias("field"),
        ))

    checks = F.array(
        finding(F.col("amount").isNull() & F.col("type").isin(*MONEY_TYPES), "missing_amount", "warning",
                F.format_string("record %s is a %s without an amount", "record_id", "type"), "amount"),
        finding(F.col("amount").isNotNull() & F.col("currency").isNull(), "missing_currency", "warning",
                F.format_string("record %s has an amount but no currency", "record_id"), "currency"),
        finding((F.col("amount") < 0) & (F.col("type") == "purchase"), "negative_amount", "warning",
                F.concat(F.lit("purchase "), F.col("record_id"), F.lit(" has a negative amount "), amount_text), "amount"),
        finding(F.abs(F.col("amount")) > F.lit(max_amount), "amount_out_of_range", "critical",
                F.concat(F.lit("record "), F.col("record_id"), F.lit(" has amount "), amount_text, F.lit(f", above {max_amount:,.0f}")), "amount"),
        finding(F.col("event_time") > diamond_sdk.now() + F.expr(f"INTERVAL {tolerance} MINUTES"), "future_timestamp", "warning",
                F.format_string("record %s is dated %s, in the future", "record_id", F.date_format("event_time", "yyyy-MM-dd HH:mm:ss")), "event_time"),
    )
    found = records.select("customer_id", "event_time", "record_id", "type", F.explode(F.filter(checks, lambda c: c.isNotNull())).alias("f"))
    return found.select(
        "customer_id",
        F.col("f.kind").alias("kind"),
        F.col("f.severity").alias("severity"),
        F.col("f.message").alias("message"),
        "event_time",
        F.array("record_id").alias("record_ids"),
        F.create_map(F.lit("field"), F.col("f.field"), F.lit("type"), F.col("type")).alias("details"),
    )
