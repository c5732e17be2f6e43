"""The bare Spark hop of the benches' baselines: a Structured Streaming query that copies
every message of one topic to another (key and value unchanged). No decoding, no use case,
no progress reports; the Kafka sink uses the job's producer settings (kafka_sink.py), so
the baseline differs from the job only by what Diamond does to the records.

  spark-submit bare_stream_copy.py <brokers> <source-topic> <target-topic> <checkpoint-dir> <trigger> [max-offsets-per-trigger]

<trigger> is a processing-time interval ("500 milliseconds": runs until SIGTERM, prints
"started" once the query runs) or "available-now" (copies what the source holds in batches
of max-offsets-per-trigger, prints {"rows", "batches", "busy_ms"} of every batch after the
first, which also pays for JIT warm-up and connecting, and ends).
"""
import json
import signal
import sys
import threading

from pyspark.sql import SparkSession

from diamond_sdk._runtime.kafka_sink import PRODUCER_OPTIONS


def main() -> None:
    brokers, source, target, checkpoint, trigger = sys.argv[1:6]
    max_offsets = int(sys.argv[6]) if len(sys.argv) > 6 else None
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    spark = SparkSession.builder.appName(f"diamond-bench-bare-{source}").getOrCreate()
    spark.sparkContext.setLogLevel("WARN")
    reader = (
        spark.readStream.format("kafka")
        .option("kafka.bootstrap.servers", brokers)
        .option("subscribe", source)
        .option("startingOffsets", "earliest")
    )
    if max_offsets:
        reader = reader.option("maxOffsetsPerTrigger", max_offsets)
    writer = (
        reader.load().selectExpr("key", "value").writeStream.format("kafka")
        .option("kafka.bootstrap.servers", brokers)
        .options(**PRODUCER_OPTIONS)
        .option("topic", target)
        .option("checkpointLocation", checkpoint)
    )
    if trigger == "available-now":
        query = writer.trigger(availableNow=True).start()
        query.awaitTermination()
        steady = [p for p in query.recentProgress if p["numInputRows"] > 0][1:]
        print(json.dumps({
            "rows": sum(p["numInputRows"] for p in steady),
            "batches": len(steady),
            "busy_ms": sum(p["durationMs"].get("triggerExecution", 0) for p in steady),
        }), flush=True)
        spark.stop()
        return
    query = writer.trigger(processingTime=trigger).start()
    print("started", flush=True)
    while not stop.is_set() and query.isActive:
        stop.wait(0.5)
    query.stop()
    spark.stop()


if __name__ == "__main__":
    main()
