/**
 * Lifecycle events on diamond.events: their names as constants (the way kafkajs declares
 * its instrumentation events) and the publisher. JSON values keyed by job id, so one job's
 * events stay in order on one partition.
 */
import type { Producer } from 'kafkajs';

export const LifecycleEvents = {
  DEPLOYED: 'deployed',
  UNDEPLOYED: 'undeployed',
  STARTING: 'starting',
  RUNNING: 'running',
  FAILED: 'failed',
  STALLED: 'stalled',
  RESTARTED: 'restarted',
  CRASH_LOOPING: 'crash-looping',
  STOPPED: 'stopped',
  ADOPTED: 'adopted',
  REPLAY_REQUESTED: 'replay-requested',
  REPLAYED: 'replayed',
} as const;

export type LifecycleEvent = (typeof LifecycleEvents)[keyof typeof LifecycleEvents];
export const LIFECYCLE_EVENTS: readonly LifecycleEvent[] = Object.values(LifecycleEvents);

/** Publishes lifecycle events as JSON, keyed by job id. */
export class EventPublisher {
  constructor(private readonly producer: Producer, private readonly topic: string) {}

  async publish(event: LifecycleEvent, fields: { job: string; usecase: string; variant: string; version?: string | null } & Record<string, unknown>): Promise<void> {
    await this.producer.send({ topic: this.topic, acks: -1, messages: [{ key: fields.job, value: JSON.stringify({ event, at: new Date().toISOString(), ...fields }) }] });
  }
}
