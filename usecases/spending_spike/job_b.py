"""Variant B: a lower spend threshold, but only when the spend is spread over several purchases
(one big purchase is not a spike)."""
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from spending import spike_feedback, windowed_spend


def transform(records: DataFrame, ctx) -> DataFrame:
    threshold = float(ctx.param("threshold_b", 600))
    min_purchases = int(ctx.param("min_purchases", 3))
    windows = windowed_spend(records, ctx).where((F.col("spend") > threshold) & (F.col("purchases") >= min_purchases))
    return spike_feedback(windows, threshold, "many_purchases_above_threshold")
