/**
 * Lifecycle events on diamond.events: their names as constants (the way kafkajs declares
 * its instrumentation events) and the publisher. JSON values keyed by job id, so one job's
 * events stay in order on one partition.
 */
import type { Producer } from 'kafkajs';
import { buildLifecycleEvent, LIFECYCLE_EVENTS as CONTRACT_EVENTS, type LifecycleEvent, type LifecycleEventFields } from '../../shared/messages.ts';

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
  BACKFILL_REQUESTED: 'backfill-requested',
  BACKFILLING: 'backfilling',
  BACKFILLED: 'backfilled',
  OUTAGE: 'outage',
  ALERT_FIRING: 'alert-firing',
  ALERT_RESOLVED: 'alert-resolved',
  ROLLOUT_CHANGED: 'rollout-changed',
} as const;

/**
 * The names themselves are defined once, in shared/schemas/lifecycle-event.schema.json; these
 * constants are checked against them (events.test.ts) and give the code readable names.
 */
export type { LifecycleEvent };
export const LIFECYCLE_EVENTS: readonly LifecycleEvent[] = CONTRACT_EVENTS;
export const LIFECYCLE_EVENT_NAMES: Readonly<Record<keyof typeof LifecycleEvents, LifecycleEvent>> = LifecycleEvents; // a compile-time check that every constant is a contract name

/** Publishes lifecycle events as JSON, keyed by job id. */
export class EventPublisher {
  constructor(private readonly producer: Producer, private readonly topic: string) {}

  /** Throws MessageContractError (before sending) when the event breaks lifecycle-event.schema.json. */
  async publish(event: LifecycleEvent, fields: LifecycleEventFields): Promise<void> {
    const message = buildLifecycleEvent(event, fields);
    await this.producer.send({ topic: this.topic, acks: -1, messages: [{ key: fields.job, value: JSON.stringify(message) }] });
  }
}
