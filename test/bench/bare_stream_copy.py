"""The bare Spark hop of the end-to-end bench's baseline chain: a Structured Streaming query
that copies every message of one topic to another (key and value unchanged), on a
processing-time trigger, until SIGTERM. No decoding, no use case, no progress reports.

  spark-submit bare_stream_copy.py <brokers> <source-topic> <target-topic> <checkpoint-dir> <trigger>

Prints "started" once the query runs.
"""
import signal
import sys
import threading

from pyspark.sql import SparkSession


def main() -> None:
    brokers, source, target, checkpoint, trigger = sys.argv[1:6]
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    spark = SparkSession.builder.appName(f"diamond-bench-bare-{source}").getOrCreate()
    spark.sparkContext.setLogLevel("WARN")
    records = (
        spark.readStream.format("kafka")
        .option("kafka.bootstrap.servers", brokers)
        .option("subscribe", source)
        .option("startingOffsets", "earliest")
        .load()
        .selectExpr("key", "value")
    )
    query = (
        records.writeStream.format("kafka")
        .option("kafka.bootstrap.servers", brokers)
        .option("topic", target)
        .option("checkpointLocation", checkpoint)
        .trigger(processingTime=trigger)
        .start()
    )
    print("started", flush=True)
    while not stop.is_set() and query.isActive:
        stop.wait(0.5)
    query.stop()
    spark.stop()


if __name__ == "__main__":
    main()
