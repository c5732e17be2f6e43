/**
 * `npm run demo [-- --json] [-- --seed N --rate N --timeout S]`: the whole diamond in one
 * command. Brings up the services and the platform, deploys data_quality and spending_spike
 * (A and B at 50/50), streams a generated dataset of eight customers through the HTTP ingest
 * API, waits until the customers' feedback API shows the feedback an independent model of
 * the use cases predicts, and prints what customers see, the A/B comparison and where the
 * rejected records went. It leaves everything running; a second run reuses it all.
 */
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { loadConfig, type DiamondConfig } from '../../shared/config.ts';
import { DiamondError, errorMessage } from '../../shared/errors.ts';
import { createKafka } from '../../shared/kafka.ts';
import { createLogger } from '../../shared/logger.ts';
import { createRedis } from '../../shared/redis.ts';
import { Topics } from '../../shared/topics.ts';
import { type AbReport, assignVariant, formatWeights, RolloutStore, type Weights } from '../../downstream/index.ts';
import { ControlClient } from '../cli/control-client.ts';
import { platformEndpoints } from '../platform/platform-file.ts';
import { datasetCounts, DEMO_CUSTOMERS, generateDataset, PATTERN_EARLIEST_MINUTES, type Dataset } from '../dataset/generator.ts';
import { readOracleParams } from '../dataset/manifest-params.ts';
import { expectedFeedback } from '../dataset/oracle.ts';
import { demoStatePath, readDemoState, withRun, writeDemoState } from './demo-state.ts';
import { ofRun, waitForFeedback } from './feedback-watch.ts';
import { streamRecords } from './ingest-stream.ts';
import { ensureDeployed, ensureKeys, ensureRollout, bringUpPlatform, waitForJobs } from './platform-setup.ts';
import { bar, DemoOutput, thousands } from './progress-line.ts';
import { readRejected, topicEnds } from './rejected-records.ts';
import { abLines, customerLines, nextStepLines, recordLine, rejectedLines } from './report.ts';

const SOURCE = 'demo-shop';
const ROLLOUT: Weights = { A: 50, B: 50 };
const DEPLOYMENTS = [
  { usecase: 'data_quality', variant: 'A' },
  { usecase: 'spending_spike', variant: 'A' },
  { usecase: 'spending_spike', variant: 'B' },
] as const;
/** Shown in full: one customer of each spending profile that differs between A and B, from both sides. */
const SHOWN_CUSTOMERS = ['wayne', 'acme', 'initech', 'umbrella'];

const { values: options } = parseArgs({
  options: {
    json: { type: 'boolean', default: false },
    seed: { type: 'string', default: '7' },
    rate: { type: 'string', default: '150' },
    timeout: { type: 'string', default: '300' },
    help: { type: 'boolean', default: false },
  },
});

function positiveNumber(name: string, text: string): number {
  const value = Number(text);
  if (!Number.isFinite(value) || value <= 0) throw new DiamondError(`--${name} must be a positive number, got "${text}"`, { code: 'DIAMOND_DEMO_USAGE', hint: 'npm run demo -- --help' });
  return value;
}

const seconds = (since: number): number => Math.round((performance.now() - since) / 100) / 10;

async function readWeights(config: DiamondConfig): Promise<Map<string, Weights | null>> {
  const redis = createRedis(config);
  try {
    return await new RolloutStore(redis).getMany(['data_quality', 'spending_spike']);
  } finally {
    redis.disconnect();
  }
}

async function main(): Promise<void> {
  if (options.help) {
    process.stdout.write('npm run demo [-- --json] [--seed 7] [--rate 150 (records/s)] [--timeout 300 (s to wait for feedback)]\n');
    return;
  }
  const seed = Math.floor(positiveNumber('seed', options.seed));
  const rate = positiveNumber('rate', options.rate);
  const timeoutMs = positiveNumber('timeout', options.timeout) * 1000;
  const json = options.json;
  const config = loadConfig(process.env);
  // Progress is for people: on stderr when stdout carries the JSON summary.
  const out = new DemoOutput(json ? process.stderr : process.stdout);
  const logger = createLogger({ logLevel: process.env.DIAMOND_LOG_LEVEL ? config.logLevel : 'warn' }, { fd: 2, bindings: { component: 'demo' } });
  const endpoints = platformEndpoints(config);
  const started = performance.now();
  const timings: Record<string, number> = {};

  out.line('Diamond demo: records from eight customers of a shop → upstream → use cases → downstream → each customer\'s feedback');
  out.line();
  out.line('1/4 Services and platform (what `npx diamond up` starts)');
  let t = performance.now();
  const platform = await bringUpPlatform(config, logger, (text) => out.line(text));
  timings.platform = seconds(t);

  out.line();
  out.line('2/4 Use cases, rollout, source and customers');
  t = performance.now();
  const rollout = await ensureRollout(config, 'spending_spike', ROLLOUT);
  out.line(`  ✔ rollout      spending_spike ${formatWeights(ROLLOUT)}${rollout.changed ? ` (was ${rollout.before ? formatWeights(rollout.before) : 'unset'})` : ' (already)'}`);
  const client = ControlClient.fromConfig(config);
  const deployed = [];
  for (const { usecase, variant } of DEPLOYMENTS) {
    const result = await ensureDeployed(client, config, usecase, variant);
    deployed.push({ usecase, variant, ...result });
    out.line(`  ✔ deploy       ${`${usecase}/${variant}`.padEnd(17)} version ${result.version} ${result.outcome === 'unchanged' ? '(already deployed)' : `(${result.outcome})`}`);
  }
  const state = readDemoState(config);
  const keys = await ensureKeys(config, SOURCE, DEMO_CUSTOMERS.map((c) => c.id), state);
  writeDemoState(config, { ...state, sourceKey: keys.sourceKey, customerKeys: keys.customerKeys });
  out.line(`  ✔ keys         source ${SOURCE} and ${DEMO_CUSTOMERS.length} customers: ${keys.created.length === 0 ? 'reused' : `${keys.created.length} created`} (kept in ${demoStatePath(config)})`);
  const jobsStarted = performance.now();
  await waitForJobs(client, DEPLOYMENTS, (summary) => out.status(`  … jobs         ${summary}  ${seconds(jobsStarted).toFixed(0)} s`), 300_000);
  out.done(`  ✔ jobs         ${DEPLOYMENTS.map((d) => `${d.usecase}/${d.variant}`).join(', ')} running with committed offsets (${seconds(jobsStarted).toFixed(1)} s)`);
  timings.setup = seconds(t);

  // The dataset is made now, so its event times end just before the records are sent.
  const dataset = generateDataset({ seed, anchor: Date.now() });
  const counts = datasetCounts(dataset);
  const runs: Dataset[] = [...state.runs.filter((r) => r.tag !== dataset.tag).map((r) => generateDataset({ seed: r.seed, anchor: r.anchor })), dataset];
  out.line();
  out.line(`3/4 Streaming ${thousands(counts.records)} records (seed ${seed}, event times ${hhmm(dataset.start)}–${hhmm(dataset.anchor)} UTC, ids ${dataset.tag}-*) to ${endpoints.ingestUrl}/v1/records`);
  t = performance.now();
  const kafka = createKafka(config, { clientId: `${config.kafka.clientId}-demo` });
  const admin = kafka.admin();
  await admin.connect();
  const rejectedBefore = await topicEnds(admin, Topics.rejectedRecords);
  const stream = await streamRecords(endpoints.ingestUrl, keys.sourceKey, dataset.items.map((i) => i.line), {
    rate,
    onProgress: (p) => out.status(`  ${bar(p.sent / p.total)} ${thousands(p.sent)}/${thousands(p.total)} records  accepted ${thousands(p.accepted)}  rejected ${thousands(p.rejected)}  ${thousands(p.sent / Math.max(p.elapsedMs / 1000, 0.001))} rec/s`),
  });
  out.done(`  ✔ ${recordLine(stream.sent, stream.accepted, stream.rejected, stream.elapsedMs / 1000)}`);
  if (stream.accepted !== counts.accepted || stream.rejected !== counts.rejected) {
    out.line(`  ! expected ${counts.accepted} accepted and ${counts.rejected} rejected: upstream's rules changed since the demo was written`);
  }
  const rejectedAfter = await topicEnds(admin, Topics.rejectedRecords);
  await admin.disconnect();
  writeDemoState(config, withRun({ ...readDemoState(config), sourceKey: keys.sourceKey, customerKeys: keys.customerKeys }, { tag: dataset.tag, seed, anchor: dataset.anchor }));
  timings.stream = seconds(t);

  out.line();
  out.line('4/4 Waiting for the feedback to reach the customers (use case jobs → feedback.raw → writer → Cassandra → feedback API)');
  t = performance.now();
  const weights = await readWeights(config);
  // This run's rows only (a window emitted now may hold only an earlier run's purchases; the watch counts this run's ids).
  const oracle = expectedFeedback(runs.map((d) => d.items.flatMap((i) => (i.record ? [i.record] : []))), readOracleParams(config.projectRoot), { processedAt: Date.now(), weights: Object.fromEntries([...weights].filter((entry): entry is [string, Weights] => entry[1] !== null)) });
  const ofThisRun = (row: { record_ids: readonly string[] }): boolean => row.record_ids.some((id) => id.startsWith(`${dataset.tag}-`));
  const expected = { rows: oracle.all.filter(ofThisRun), visible: oracle.delivered.filter(ofThisRun), spending: oracle.spending };
  if (expected.spending.latePurchases > 0 && expected.spending.watermarkBefore !== null) {
    out.line(`  note: an earlier demo run left spending_spike's watermark at ${hhmm(expected.spending.watermarkBefore)} UTC; ${expected.spending.latePurchases} purchases of this run are older, so Spark drops them as late`);
    out.line(`        (event-time windows are final once the watermark passes them); fresh spikes again on a run after ${hhmm(expected.spending.watermarkBefore + (PATTERN_EARLIEST_MINUTES + 1) * 60_000)} UTC`);
  }
  const feedback = await waitForFeedback({
    feedbackUrl: endpoints.feedbackUrl, customerKeys: keys.customerKeys, tag: dataset.tag, since: dataset.start, expected: expected.visible, timeoutMs,
    onProgress: ({ arrived, expected: want }, elapsedMs) => out.status(`  … ${Object.keys(want).sort().map((u) => `${u} ${arrived[u] ?? 0}/${want[u]}`).join('  ')} rows  ${(elapsedMs / 1000).toFixed(0)} s`),
  });
  const arrivedTotal = Object.values(feedback.arrived).reduce((a, b) => a + b, 0);
  out.done(feedback.complete
    ? `  ✔ all ${expected.visible.length} expected rows arrived in ${(feedback.elapsedMs / 1000).toFixed(1)} s (${Object.entries(feedback.arrived).map(([u, n]) => `${u} ${n}`).join(', ')})`
    : `  ✘ ${arrivedTotal} of ${expected.visible.length} expected rows arrived within ${(timeoutMs / 1000).toFixed(0)} s (${Object.entries(feedback.expected).map(([u, n]) => `${u} ${feedback.arrived[u] ?? 0}/${n}`).join(', ')})`);
  timings.feedback = seconds(t);

  t = performance.now();
  const ab = await client.json<AbReport & { weights: Weights | null }>('GET', '/v1/ab/spending_spike?days=1');
  const rejected = await readRejected(config, rejectedBefore, rejectedAfter, SOURCE);
  const assignments = new Map(DEMO_CUSTOMERS.map((c) => [c.id, weights.get('spending_spike') ? assignVariant(c.id, 'spending_spike', weights.get('spending_spike')!) : null]));
  timings.report = seconds(t);
  timings.total = seconds(started);
  const shownCustomer = DEMO_CUSTOMERS.find((c) => c.id === SHOWN_CUSTOMERS[0]) ?? DEMO_CUSTOMERS[0]!;
  const next = {
    feedbackUrl: endpoints.feedbackUrl, customerId: shownCustomer.id, customerKey: keys.customerKeys[shownCustomer.id]!,
    logsDir: join(config.home, 'logs'), jobsDir: join(config.home, 'orchestrator', 'jobs'), statePath: demoStatePath(config),
  };

  if (json) {
    process.stdout.write(JSON.stringify({
      seconds: timings.total, timings, seed, tag: dataset.tag, eventTimes: { from: new Date(dataset.start).toISOString(), to: new Date(dataset.anchor).toISOString() },
      platform, rollout: { spending_spike: ROLLOUT }, deployments: deployed,
      records: { ...counts, sent: stream.sent, acceptedByApi: stream.accepted, rejectedByApi: stream.rejected, requests: stream.requests, retries: stream.retries, seconds: stream.elapsedMs / 1000 },
      feedback: {
        complete: feedback.complete, expected: feedback.expected, arrived: feedback.arrived, seconds: feedback.elapsedMs / 1000,
        latePurchases: expected.spending.latePurchases,
        customers: DEMO_CUSTOMERS.map((c) => ({ id: c.id, profile: c.profile, spendingVariant: assignments.get(c.id), apiKey: keys.customerKeys[c.id], items: feedback.byCustomer.get(c.id) ?? [] })),
      },
      ab,
      rejected: { topic: rejected.topic, count: rejected.count, byProblem: rejected.byProblem, examples: rejected.examples },
      endpoints, next: nextStepLines(next),
    }, null, 2) + '\n');
  } else {
    out.line();
    out.line('What customers see: GET /v1/feedback with each customer\'s own key (this run\'s rows)');
    const earlierTags = runs.slice(0, -1).map((r) => r.tag);
    for (const id of SHOWN_CUSTOMERS) {
      const customer = DEMO_CUSTOMERS.find((c) => c.id === id);
      const earlier = (feedback.allByCustomer.get(id) ?? []).filter((f) => f.usecase === 'spending_spike' && earlierTags.some((tag) => ofRun(tag)(f)));
      if (customer) out.line(customerLines(customer, assignments.get(id) ?? null, feedback.byCustomer.get(id) ?? [], earlier).join('\n'));
    }
    const others = DEMO_CUSTOMERS.filter((c) => !SHOWN_CUSTOMERS.includes(c.id)).map((c) => `${c.id} ${feedback.byCustomer.get(c.id)?.length ?? 0}`);
    out.line(`  others (items): ${others.join(', ')}`);
    out.line();
    out.line('A/B comparison of spending_spike (GET /v1/ab/spending_spike on the control API; every variant\'s rows, delivered or not)');
    out.line(abLines(ab, expected.rows, assignments).join('\n'));
    out.line();
    out.line(`Where the rejected records went: Kafka topic ${rejected.topic}`);
    out.line(rejectedLines(rejected, stream.rejected).join('\n'));
    out.line();
    out.line(`Demo done in ${timings.total.toFixed(1)} s (platform ${timings.platform} s, setup ${timings.setup} s, streaming ${timings.stream} s, feedback ${timings.feedback} s, report ${timings.report} s).`);
    out.line(nextStepLines(next).join('\n'));
  }
  if (!feedback.complete) {
    process.stderr.write(`demo: not all the expected feedback arrived within ${timeoutMs / 1000} s\n  → see \`npx diamond status\` (lag, last error) and \`npx diamond logs spending_spike --variant A\`; a busy 2-core machine may need --timeout 600\n`);
    process.exitCode = 1;
  }
}

function hhmm(millis: number): string {
  return new Date(millis).toISOString().slice(11, 16);
}

try {
  await main();
} catch (error) {
  process.stderr.write(`\ndemo: ${errorMessage(error)}\n`);
  process.exitCode = 1;
}
