/**
 * The dashboard in a real browser: Debian's Chromium, headless, driven by playwright-core,
 * against a whole isolated diamond (real Spark jobs, the real writer and Cassandra). It opens
 * the link `diamond ui` prints (dashboardLink), sees spending_spike A and B running in the
 * topology, watches a kill -9 of A's driver (its whole process group) go restarting → running
 * on the page without a reload, promotes B from the page and checks that the weights reached
 * the writer's Redis (read back through the API) and that the writer applies them: rows that
 * reach customers are B's only while A's are still stored for the comparison. A viewer's link
 * shows the same page without the controls. The promotion arrives in the live event stream as
 * rollout-changed; the job page shows the job's latency p50/p99 once it has batches; the driver
 * pool and runs are beside the jobs. Every wait is on the page's text, never a sleep.
 *
 * Screenshots (topology, the restart, the job page, the A/B view, the viewer's view):
 * test-artifacts/dashboard/ (gitignored).
 */
import test from 'ava';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { chromium, type Browser, type Page } from 'playwright-core';
import { startDownstream } from '../../downstream/index.ts';
import { createLogger } from '../../shared/logger.ts';
import { TokenStore } from '../../shared/operator-tokens.ts';
import { createRedis } from '../../shared/redis.ts';
import { RolloutStore } from '../../shared/rollout-weights.ts';
import { startControlApi } from '../../infra/orchestrator/control-api.ts';
import { dashboardLink } from '../../infra/orchestrator/dashboard-link.ts';
import { platformEndpoints } from '../../infra/platform/platform-file.ts';
import { e2eDataset, readFeedbackRows, startDiamond } from '../support/e2e.ts';

const CHROMIUM = '/usr/bin/chromium'; // Debian's package (infra/setup/system-packages.sh)
const ARTIFACTS = join(import.meta.dirname, '..', '..', 'test-artifacts', 'dashboard');
const SPARK_START_MS = 240_000; // a Spark job's start on 2 cores, with room

async function launch(): Promise<Browser> {
  // Chromium's sandbox cannot start as root (this machine's tests run as root).
  return chromium.launch({ executablePath: CHROMIUM, args: process.getuid?.() === 0 ? ['--no-sandbox'] : [] });
}

async function shoot(page: Page, name: string): Promise<void> {
  await page.screenshot({ path: join(ARTIFACTS, `${name}.png`), fullPage: true });
}

test.serial('the dashboard live: the jobs in the topology, a kill -9 going restarting → running, a rollout the writer applies', async (t) => {
  mkdirSync(ARTIFACTS, { recursive: true });
  const d = await startDiamond(t, 'dashboard');
  await Promise.all([d.deploy('spending_spike', 'A'), d.deploy('spending_spike', 'B')]);
  const jobA = d.jobId('spending_spike', 'A');
  const jobB = d.jobId('spending_spike', 'B');

  // The A/B comparison the page shows is downstream's feedback API, relayed by the control API:
  // one on the fixture's keyspace and Redis namespace, taking the fixture's operator tokens.
  const logger = createLogger({ logLevel: 'warn' }, { fd: 2 });
  const feedbackApi = await startDownstream(d.config, { logger, parts: ['api'], port: 0, keyspace: d.keyspace, redisKeyPrefix: d.rolloutKeyPrefix, operatorKeyPrefix: d.options.keyPrefix });
  const config = { ...d.config, http: { ...d.config.http, feedbackUrl: feedbackApi.url! } };
  // The endpoints it reports (and the topology's health asks) are this diamond's ingest and feedback APIs.
  const endpoints = { ...platformEndpoints(config), ingestUrl: d.ingestUrl, feedbackUrl: feedbackApi.url! };
  const api = await startControlApi(config, { options: d.options, logger, endpoints, rolloutKeyPrefix: d.rolloutKeyPrefix }, { port: 0 });
  const tokenRedis = createRedis(d.config, { keyPrefix: d.options.keyPrefix });
  const rolloutRedis = createRedis(d.config, { keyPrefix: d.rolloutKeyPrefix });
  const browser = await launch();
  // Registered after startDiamond's teardown, so these run first (ava runs teardowns in reverse).
  t.teardown(async () => {
    await browser.close();
    await api.close();
    await feedbackApi.stop();
    tokenRedis.disconnect();
    rolloutRedis.disconnect();
  });
  const tokens = new TokenStore(tokenRedis);
  const expiresAt = new Date(Date.now() + 3_600_000);
  const link = await dashboardLink(tokens, api.url, { role: 'deployer', expiresAt });

  const page = await browser.newPage({ viewport: { width: 1600, height: 1200 } });
  const requested: string[] = [];
  const pageErrors: string[] = [];
  page.on('request', (request) => requested.push(request.url()));
  page.on('pageerror', (error) => pageErrors.push(error.message));
  await page.goto(link.url);

  // Signed in from the fragment, which then leaves the address bar.
  await page.locator('#who', { hasText: 'deployer' }).waitFor();
  t.false(page.url().includes('token='), `the address bar still holds the token: ${page.url()}`);
  const node = (job: string) => page.locator(`#topology [data-job="${job}"]`);
  const stateOf = (job: string, text: RegExp) => node(job).locator('.state', { hasText: text });

  // The deployed jobs in the topology, between records.normalized and feedback.raw.
  await page.locator('#topology', { hasText: 'records.normalized' }).waitFor();
  for (const job of [jobA, jobB]) await stateOf(job, /^running$/).waitFor({ timeout: SPARK_START_MS });
  const topology = await page.locator('#topology').innerText();
  t.true(topology.indexOf('records.normalized') < topology.indexOf('spending_spike') && topology.indexOf('spending_spike') < topology.indexOf('feedback.raw'), topology);
  // Health on the nodes another process backs: this diamond's ingest and feedback APIs answer their /readyz.
  await page.locator('#node-customers [data-health="ready"]').waitFor();
  await page.locator('#node-ingest [data-health="ready"]').waitFor();
  await page.locator('#events li[data-event="running"]').first().waitFor();
  // The warm pool and the runs beside the jobs (no function runs in this diamond: the table says so).
  t.regex(await page.locator('#pool dd[data-fact="driver pool"]').innerText(), /ready|off/);
  await page.locator('#runs-empty:not([hidden])').waitFor();
  await shoot(page, 'topology');

  // kill -9 of A's driver, its whole process group: the page shows restarting, then running.
  const victim = await d.job(jobA);
  const pidB = (await d.job(jobB)).current!.groupPid;
  const oldPid = victim.current!.groupPid;
  const pidCell = page.locator(`#jobs tr[data-job="${jobA}"] .pid`);
  await page.locator(`#jobs tr[data-job="${jobA}"] .pid`, { hasText: new RegExp(`^${oldPid}$`) }).waitFor();
  process.kill(-oldPid, 'SIGKILL');
  await stateOf(jobA, /^restarting/).waitFor({ timeout: 60_000 });
  // The lifecycle stream is live: the restart arrives without a reload.
  await page.locator(`#events li[data-event="restarted"][data-job="${jobA}"]`).first().waitFor({ timeout: 60_000 });
  await shoot(page, 'restarting');
  await stateOf(jobA, /^running$/).waitFor({ timeout: SPARK_START_MS });
  const restarted = await d.job(jobA);
  t.not(restarted.current!.groupPid, oldPid);
  await page.locator(`#jobs tr[data-job="${jobA}"] .pid`, { hasText: new RegExp(`^${restarted.current!.groupPid}$`) }).waitFor();
  t.is(await pidCell.innerText(), String(restarted.current!.groupPid));
  t.is(await node(jobA).locator('.restarts').innerText(), '1 restart');
  t.regex(await page.locator(`#jobs tr[data-job="${jobA}"] .error`).innerText(), /killed|signal|exited/);
  t.is((await d.job(jobB)).current!.groupPid, pidB, 'B untouched');
  t.is(await page.locator(`#jobs tr[data-job="${jobB}"] .pid`).innerText(), String(pidB));

  // The job's page: its facts and its log tail.
  await node(jobA).click();
  await page.locator('#job-facts', { hasText: 'committed offsets' }).waitFor();
  t.regex((await page.locator('#spark-ui-link').getAttribute('href')) ?? '', /^http:\/\/127\.0\.0\.1:\d+$/, "the job's page links its Spark UI");
  await page.locator('#log-tail', { hasText: /\S{3,}/ }).waitFor();
  t.notRegex(await page.locator('#log-tail').innerText(), /^…$/);

  // Promote B from the page; the weights land where the writer reads them.
  await page.locator('form.rollout[data-usecase="spending_spike"] button.promote[data-variant="B"]').click();
  await page.locator('#rollout-message[data-outcome="applied"]').waitFor();
  const viewerToken = await tokens.add('viewer', 'dashboard-e2e-reader');
  const readBack = await fetch(`${api.url}/v1/rollouts/spending_spike`, { headers: { Authorization: `Bearer ${viewerToken}` } });
  t.deepEqual(await readBack.json(), { usecase: 'spending_spike', weights: { A: 0, B: 100 } });
  t.deepEqual(await new RolloutStore(rolloutRedis).get('spending_spike'), { A: 0, B: 100 }, "in the writer's Redis");
  await page.locator('form.rollout[data-usecase="spending_spike"] .current', { hasText: 'A=0,B=100' }).waitFor();
  // The change is a lifecycle event, and the live stream brings it to the page.
  await page.locator('#events li[data-event="rollout-changed"]', { hasText: 'A=0,B=100' }).first().waitFor({ timeout: 30_000 });

  // The writer applies it: A's rows are kept for the comparison, only B's reach customers.
  const stream = d.stream(e2eDataset(), 50);
  const deadline = Date.now() + 300_000;
  let byVariant = await readFeedbackRows(d.cassandra, d.keyspace, 'feedback_by_variant');
  const variantsSeen = (): Set<string> => new Set(byVariant.filter((row) => row.usecase === 'spending_spike').map((row) => row.variant));
  while (!(variantsSeen().has('A') && variantsSeen().has('B'))) {
    if (Date.now() > deadline) throw new Error(`no spending_spike rows of both variants in 5 minutes: ${JSON.stringify([...variantsSeen()])}`);
    if (stream.failure()) throw stream.failure()!;
    await sleep(500); // polling Cassandra, not waiting for time to pass
    byVariant = await readFeedbackRows(d.cassandra, d.keyspace, 'feedback_by_variant');
  }
  const byCustomer = (await readFeedbackRows(d.cassandra, d.keyspace, 'feedback_by_customer')).filter((row) => row.usecase === 'spending_spike');
  t.true(byCustomer.length > 0, 'B rows reach customers');
  t.deepEqual([...new Set(byCustomer.map((row) => row.variant))], ['B'], 'customers receive B only');
  // Read after the customers' table: every row a customer has is one of B's in the comparison table.
  const storedB = new Set((await readFeedbackRows(d.cassandra, d.keyspace, 'feedback_by_variant')).filter((row) => row.usecase === 'spending_spike' && row.variant === 'B').map((row) => row.feedback_id));
  t.deepEqual(byCustomer.filter((row) => !storedB.has(row.feedback_id)), [], "customers' rows are B's rows");
  await stream.done;
  // The comparison (relayed from downstream) shows both variants' rows on the page.
  for (const variant of ['A', 'B']) {
    await page.locator(`form.rollout[data-usecase="spending_spike"] .comparison tr[data-variant="${variant}"] td.rows`, { hasText: /^[1-9]/ }).waitFor({ timeout: 60_000 });
  }
  await shoot(page, 'ab');

  // The writer's edge carries its lag on feedback.raw (its group's committed offsets against the
  // topic's end, as Kafka has them), and a rate once two samples differ.
  const edge = page.locator('#edge-writer');
  await page.locator('#edge-writer[data-lag]:not([data-lag=""])').waitFor({ timeout: 60_000 });
  t.regex(await edge.getAttribute('data-lag') ?? '', /^\d+$/);
  t.regex(await edge.innerText(), /lag \d[\d,]*/);
  const status = await (await fetch(`${api.url}/v1/status`, { headers: { Authorization: `Bearer ${viewerToken}` } })).json() as { flows: { output: { written: number; committed: number; writerLag: number } } };
  t.true(status.flows.output.written > 0 && status.flows.output.committed > 0, JSON.stringify(status.flows));
  t.is(status.flows.output.writerLag, status.flows.output.written - status.flows.output.committed);

  // With batches done, A's page (open since the restart) shows its latency p50/p99 over its latest batches.
  await page.locator('#job-latency', { hasText: /^\d[\d,]* \/ \d[\d,]* ms \(last (batch|\d+ batches)\)$/ }).waitFor({ timeout: 60_000 });
  t.regex(await page.locator(`#jobs tr[data-job="${jobA}"] .latency`).innerText(), /^\d[\d,]* \/ \d[\d,]* ms$/);
  await page.locator('#job-panel').scrollIntoViewIfNeeded();
  await shoot(page, 'job');

  // A viewer sees the same diamond, without the controls.
  const viewerPage = await browser.newPage({ viewport: { width: 1600, height: 1200 } });
  viewerPage.on('pageerror', (error) => pageErrors.push(error.message));
  await viewerPage.goto((await dashboardLink(tokens, api.url, { role: 'viewer', expiresAt })).url);
  await viewerPage.locator('#who', { hasText: 'viewer' }).waitFor();
  await viewerPage.locator(`#topology [data-job="${jobA}"] .state`, { hasText: /^running$/ }).waitFor();
  await viewerPage.locator('form.rollout[data-usecase="spending_spike"] .current', { hasText: 'A=0,B=100' }).waitFor();
  t.is(await viewerPage.locator('form.rollout button').count(), 0, 'no rollout buttons for a viewer');
  t.true(await viewerPage.locator('form.rollout input').first().isDisabled());
  await shoot(viewerPage, 'viewer');

  t.deepEqual(pageErrors, [], 'no script errors');
  const elsewhere = requested.filter((url) => !url.startsWith(api.url));
  t.deepEqual(elsewhere, [], 'offline: the page loads nothing from another origin');
  t.log(`screenshots in ${ARTIFACTS}`);
});
