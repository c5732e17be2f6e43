/**
 * `diamond events [--follow] [--since ISO | --last N] [--json]`: the orchestrator's lifecycle
 * events (LIFECYCLE_EVENTS of shared/schemas/lifecycle-event.schema.json) through the control
 * API's server-sent events. One line per event: time, job, event, version, error; `--json`
 * prints each event's JSON on its own line. A message that breaks the contract is printed
 * raw with the reason, not dropped.
 */
import type { CommandModule } from 'yargs';
import { loadConfig } from '../../shared/config.ts';
import { DiamondError } from '../../shared/errors.ts';
import { parseLifecycleEvent, type LifecycleEventMessage } from '../../shared/messages.ts';
import { abortOnSigint, ControlClient, untilAborted } from './control-client.ts';

const text = (value: unknown): string => {
  if (value === undefined || value === null || value === '') return '-';
  return typeof value === 'string' ? value : JSON.stringify(value);
};

/**
 * `2026-11-01T10:10:00.000Z  uc.data_quality.A  running  3f2a9c1e  <error>`; an alert shows
 * its rule, severity and summary where the error would be.
 */
export function formatEventLine(event: LifecycleEventMessage): string {
  const detail = event.error ?? (event.rule && event.summary ? `${event.rule} (${event.severity ?? '-'}): ${event.summary}` : null);
  return [text(event.at), text(event.job).padEnd(24), text(event.event).padEnd(13), text(event.version)].join('  ') + (detail ? `  ${text(detail)}` : '');
}

/** A line for any message of the topic: the event's, or the raw text and why it is not one. */
export function formatMessageLine(data: string): string {
  const parsed = parseLifecycleEvent(data);
  return parsed.ok ? formatEventLine(parsed.message) : `(not a lifecycle event: ${parsed.field} ${parsed.problem})  ${data.slice(0, 500)}`;
}

interface EventsArgs { follow: boolean; since: string | undefined; last: number | undefined; json: boolean }

export const eventsCommand: CommandModule<object, EventsArgs> = {
  command: 'events',
  describe: "the use case jobs' lifecycle events (the recent ones; --follow streams new ones)",
  builder: (y) => y
    .option('follow', { alias: 'f', type: 'boolean', default: false, describe: 'keep streaming new events (Ctrl-C ends)' })
    .option('since', { type: 'string', describe: 'replay events from this ISO time, e.g. 2026-11-01T10:00:00Z' })
    .option('last', { alias: 'n', type: 'number', describe: 'replay this many of the latest events (default 20)' })
    .option('json', { type: 'boolean', default: false, describe: 'one JSON object per line' })
    .conflicts('since', 'last'),
  handler: async ({ follow, since, last, json }) => {
    if (since !== undefined && Number.isNaN(Date.parse(since))) {
      throw new DiamondError(`--since "${since}" is not a time`, { code: 'DIAMOND_BAD_ARGUMENT', hint: 'use an ISO-8601 time such as 2026-11-01T10:00:00Z' });
    }
    const config = loadConfig(process.env);
    const client = ControlClient.fromConfig(config);
    const query = new URLSearchParams({ follow: follow ? '1' : '0' });
    if (since !== undefined) query.set('since', new Date(since).toISOString());
    if (last !== undefined) query.set('last', String(last));
    const controller = abortOnSigint();
    let count = 0;
    await untilAborted(controller, async () => {
      for await (const message of client.events(`/v1/events?${query.toString()}`, controller.signal)) {
        if (message.event === 'error') {
          const { error } = JSON.parse(message.data) as { error?: string };
          throw new DiamondError(`the events stream failed: ${error ?? message.data}`, { code: 'DIAMOND_EVENTS_FAILED', hint: 'retry; check Kafka with `npx diamond services status`' });
        }
        if (message.event !== 'lifecycle') continue;
        count++;
        process.stdout.write((json ? message.data : formatMessageLine(message.data)) + '\n');
      }
    });
    if (count === 0 && !follow && !json) process.stderr.write('no lifecycle events in that range (deploy a use case, or widen it with --since)\n');
  },
};
