/**
 * The demo's closing printout, as pure functions of what it measured (so it is tested
 * without the platform): each shown customer's feedback, the A/B comparison, the rejected
 * records, and how to look around.
 */
import type { AbReport } from '../../downstream/index.ts';
import type { Feedback } from '../../shared/schemas.ts';
import type { RejectedEnvelope } from '../../upstream/index.ts';
import { PROFILE_STORY, type DemoCustomer } from '../dataset/generator.ts';
import type { ExpectedRow } from '../dataset/oracle.ts';
import { thousands } from './progress-line.ts';
import type { RejectedSummary } from './rejected-records.ts';

const SEVERITY_ORDER: Readonly<Record<string, number>> = { critical: 0, warning: 1, info: 2 };

/** Spikes first, then the most severe, then oldest. */
export function orderForDisplay(items: readonly Feedback[]): Feedback[] {
  const rank = (f: Feedback): number => (f.usecase === 'spending_spike' ? 0 : 1);
  return [...items].sort((a, b) => rank(a) - rank(b) || (SEVERITY_ORDER[a.severity] ?? 3) - (SEVERITY_ORDER[b.severity] ?? 3) || a.event_time - b.event_time);
}

const clip = (text: string, width: number): string => (text.length > width ? `${text.slice(0, width - 1)}…` : text);

/**
 * A customer's header and its rows: this run's, plus `earlier` spending spikes of earlier
 * demo runs (a rerun within the hour adds none: its purchases are behind the watermark).
 */
export function customerLines(customer: DemoCustomer, variant: string | null, items: readonly Feedback[], earlier: readonly Feedback[] = [], maxLines = 5): string[] {
  const spikes = items.filter((f) => f.usecase === 'spending_spike').length;
  const header = `${customer.id} — ${PROFILE_STORY[customer.profile]}; sees spending_spike ${variant ? `variant ${variant}` : 'every variant'}: ${items.length} item(s), ${spikes} spending spike(s)`;
  const shownEarlier = spikes === 0 ? orderForDisplay(earlier).slice(0, 2) : [];
  const shown = orderForDisplay(items).slice(0, maxLines - shownEarlier.length);
  const line = (f: Feedback, note = ''): string => `    ${f.severity.padEnd(8)} ${`${f.usecase}/${f.variant}`.padEnd(16)} ${f.kind.padEnd(19)} ${clip(f.message, 96)}${note}`;
  const lines = [...shownEarlier.map((f) => line(f, '  (earlier run)')), ...shown.map((f) => line(f))];
  if (items.length > shown.length) lines.push(`    … and ${items.length - shown.length} more`);
  if (items.length === 0 && shownEarlier.length === 0) lines.push('    (nothing for this run)');
  return [`  ${header}`, ...lines];
}

export function abLines(report: AbReport, expected: readonly ExpectedRow[], assignments: ReadonlyMap<string, string | null>): string[] {
  const lines = [`  ${'variant'.padEnd(8)} ${'rows'.padStart(6)} ${'customers'.padStart(10)} ${'rows/customer'.padStart(14)} ${'write p50/p99 ms'.padStart(17)}`];
  for (const v of report.variants) {
    lines.push(`  ${v.variant.padEnd(8)} ${String(v.rows).padStart(6)} ${String(v.customers).padStart(10)} ${v.rowsPerCustomer.toFixed(2).padStart(14)} ${`${v.writeLatencyMs.p50}/${v.writeLatencyMs.p99}`.padStart(17)}`);
  }
  if (report.variants.length === 0) lines.push('  (no spending_spike rows in feedback_by_variant yet)');
  for (const a of report.agreement) lines.push(`  agreement ${a.variants.join('/')}: ${(a.ratio * 100).toFixed(1)} % (${a.both} of ${a.either} findings on the same records), over the last ${report.days} day(s)`);
  const flaggedBy = (variant: string): string => [...new Set(expected.filter((r) => r.usecase === 'spending_spike' && r.variant === variant).map((r) => r.customer_id))].sort().join(', ') || 'nobody (see the note on late purchases above)';
  lines.push(`  this run, A (spend > 1,000) flags: ${flaggedBy('A')}`);
  lines.push(`  this run, B (spend > 600 over ≥ 3 purchases) flags: ${flaggedBy('B')}`);
  const seeing = (variant: string): string => [...assignments].filter(([, v]) => v === variant).map(([c]) => c).sort().join(', ');
  lines.push(`  50/50 rollout: customers of A see A's rows (${seeing('A')}), customers of B see B's (${seeing('B')})`);
  return lines;
}

export function rejectedLines(summary: RejectedSummary, sentRejected: number): string[] {
  const lines = [`  ${summary.count} of the ${sentRejected} records the ingest API answered as rejected are in ${summary.topic}, each a JSON envelope with every reason and the raw input:`];
  for (const [problem, count] of Object.entries(summary.byProblem).sort((a, b) => b[1] - a[1])) lines.push(`    ${String(count).padStart(4)}  ${problem}`);
  const example = summary.examples.find((e) => e.reasons[0]?.field === '(record)') ?? summary.examples[0];
  if (example) lines.push(...exampleLines(example));
  return lines;
}

export function exampleLines(envelope: RejectedEnvelope): string[] {
  return [
    `  example (via ${envelope.via}, ${Object.entries(envelope.location).map(([k, v]) => `${k} ${v}`).join(', ')}, received ${envelope.received_at}):`,
    `    raw:    ${clip(envelope.raw, 110)}`,
    ...envelope.reasons.map((r) => `    reason: ${r.field} ${r.problem}`),
  ];
}

export interface NextSteps {
  readonly feedbackUrl: string;
  readonly customerId: string;
  readonly customerKey: string;
  readonly logsDir: string;
  readonly jobsDir: string;
  readonly statePath: string;
}

export function nextStepLines(next: NextSteps): string[] {
  return [
    'The platform keeps running. Look around:',
    '  npx diamond status                   jobs, versions, committed offsets, lag, records/s',
    '  npx diamond events --follow          lifecycle events as they happen (Ctrl-C to stop)',
    '  npx diamond ab spending_spike        the A/B comparison again',
    `  curl -H 'Authorization: Bearer ${next.customerKey}' '${next.feedbackUrl}/v1/feedback?usecase=spending_spike'`,
    `                                       ${next.customerId}'s feedback (every demo customer's key: ${next.statePath})`,
    `  curl -N -H 'Authorization: Bearer ${next.customerKey}' ${next.feedbackUrl}/v1/feedback/stream`,
    '                                       its live feedback stream; run `npm run demo` in another terminal to see rows arrive',
    '  npx diamond logs spending_spike --variant B --follow    a job\'s log',
    `  logs: ${next.logsDir}/platform-*.log   jobs: ${next.jobsDir}/<job>/`,
    'Stop it:',
    '  npx diamond down                     everything (`--keep-services` leaves Kafka, Cassandra, … running)',
  ];
}

export function recordLine(sent: number, accepted: number, rejected: number, seconds: number): string {
  return `${thousands(sent)} records in ${seconds.toFixed(1)} s (${thousands(sent / Math.max(seconds, 0.001))}/s): ${thousands(accepted)} accepted → records.normalized, ${thousands(rejected)} rejected → records.rejected`;
}
