/**
 * An outage is not a crash: a job that exits because Kafka or the schema registry cannot
 * be reached is restarted with backoff and never counted toward crash-looping. Two signals
 * say "outage": the runner's dedicated exit code (it classifies the failure by exception
 * type, see usecases/sdk/diamond_sdk/_runtime/runner.py), and the orchestrator's own view
 * of Kafka (a failure while, or shortly after, the orchestrator could not reach Kafka
 * either is most likely the same outage).
 */
import kafkajs from 'kafkajs';

// kafkajs is CommonJS and Node cannot see its error classes as named ESM exports.
const { KafkaJSBrokerNotFound, KafkaJSConnectionError, KafkaJSRequestTimeoutError } = kafkajs;

/** The runner's exit code for unreachable infrastructure (sysexits.h EX_TEMPFAIL: try again later). */
export const EXIT_OUTAGE = 75;

/**
 * How long after the orchestrator last failed to reach Kafka a job's failure still counts as
 * that outage: the jobs' own Kafka clients give up later than ours (Spark's offset fetch
 * retries for about a minute), and may fail only after Kafka came back.
 */
export const KAFKA_OUTAGE_MEMORY_MS = 2 * 60_000;

/** Whether a kafkajs error (or what it wraps) means the brokers could not be reached. By type, not message. */
export function isKafkaUnreachable(error: unknown): boolean {
  const seen = new Set<unknown>();
  let current: unknown = error;
  while (current instanceof Error && !seen.has(current)) {
    seen.add(current);
    if (current instanceof KafkaJSConnectionError || current instanceof KafkaJSRequestTimeoutError || current instanceof KafkaJSBrokerNotFound) return true;
    current = current.cause; // kafkajs wraps the last attempt's error (retries exceeded) as the cause
  }
  return false;
}

/** Remembers when the orchestrator last saw Kafka unreachable. */
export class KafkaHealth {
  private downAt: number | null = null;

  /** Records one probe's outcome (the tick's read of the input's end offsets): its error, or null. */
  observe(error: unknown, now: number): void {
    if (isKafkaUnreachable(error)) this.downAt = now;
  }

  /** A job failure at `now` is part of an outage the orchestrator saw too. */
  outageAt(now: number): boolean {
    return this.downAt !== null && now - this.downAt < KAFKA_OUTAGE_MEMORY_MS;
  }
}
