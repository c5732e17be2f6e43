"""Variant A: total spend in a sliding window above a threshold."""
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from spending import spike_feedback, windowed_spend


def transform(records: DataFrame, ctx) -> DataFrame:
    threshold = float(ctx.param("threshold", 1000))
    windows = windowed_spend(records, ctx).where(F.col("spend") > threshold)
    return spike_feedback(windows, threshold, "spend_above_threshold")
