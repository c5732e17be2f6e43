/**
 * An outage is not a crash. The job reaches the schema registry through a TCP proxy the
 * test controls: closed, every start exits with the runner's outage code (75), and the
 * orchestrator restarts it with backoff more times than the crash-loop limit without ever
 * calling it crash-looping; opened, the job runs and its committed offsets advance. The
 * proxy refuses at once (nothing listens), so no real timeout is waited for. Real Spark; serial.
 */
import test from 'ava';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { loadConfig } from '../../shared/config.ts';
import { deployUsecase } from '../../infra/orchestrator/control.ts';
import { readJobOffsets, topicEndOffsets } from '../../infra/orchestrator/offsets.ts';
import { EXIT_OUTAGE } from '../../infra/orchestrator/outage.ts';
import { jobIdFor } from '../../infra/orchestrator/state.ts';
import { consumeUntil, testKafka } from '../support/env.ts';
import { customerRecord, startTestOrchestrator } from '../support/orchestrator.ts';

/** A TCP proxy to `target` that can stop listening (connections refused) and listen again on the same port. */
class Proxy {
  private server: Server | null = null;
  private readonly sockets = new Set<Socket>();
  port = 0;

  constructor(private readonly target: { host: string; port: number }) {}

  async open(): Promise<void> {
    const server = createServer((client) => {
      const upstream = connect(this.target.port, this.target.host);
      for (const socket of [client, upstream]) {
        this.sockets.add(socket);
        socket.on('close', () => this.sockets.delete(socket));
        socket.on('error', () => { client.destroy(); upstream.destroy(); });
      }
      client.pipe(upstream).pipe(client);
    });
    await new Promise<void>((resolve, reject) => server.once('error', reject).listen(this.port, '127.0.0.1', () => resolve()));
    this.port = (server.address() as { port: number }).port;
    this.server = server;
  }

  async close(): Promise<void> {
    const server = this.server;
    this.server = null;
    for (const socket of this.sockets) socket.destroy();
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

test.serial('a registry outage restarts the job with backoff, never crash-looping; once it is back the job runs', async (t) => {
  const registry = new URL(loadConfig(process.env).registry.url);
  const proxy = new Proxy({ host: registry.hostname, port: Number(registry.port) });
  await proxy.open();
  t.teardown(() => proxy.close());
  const proxied = new URL(registry.href);
  proxied.port = String(proxy.port);
  const o = await startTestOrchestrator('orch-outage', {
    DIAMOND_REGISTRY_URL: proxied.href, DIAMOND_ORCHESTRATOR_CRASH_LOOP_MAX: '2', DIAMOND_ORCHESTRATOR_CRASH_WINDOW: '10m',
    DIAMOND_ORCHESTRATOR_BACKOFF: '200ms', DIAMOND_ORCHESTRATOR_BACKOFF_MAX: '1s',
  });
  t.teardown(() => o.teardown());
  const jobId = jobIdFor('data_quality', 'A', o.options.jobPrefix);
  await o.produce([1, 2, 3].map((i) => customerRecord(`r-${i}`, `c${i}`, { amount: -i })));

  await proxy.close(); // the registry is "down" for the job from here on
  // The deploy validates against the registry itself (not part of the outage under test).
  const direct = { ...o.config, registry: { ...o.config.registry, url: registry.href.replace(/\/+$/, '') } };
  await deployUsecase(direct, o.reconciler.store, null, { usecase: 'data_quality', variant: 'A', folder: join(o.config.projectRoot, 'usecases', 'data_quality') }, o.options.jobPrefix);
  const outages = 3; // more than the crash-loop limit
  const waiting = await o.waitForJob(jobId, (r) => {
    if (r.state === 'crash-looping') throw new Error(`the outage made the job crash-looping: ${r.lastError ?? ''}`);
    return (r.outages ?? 0) >= outages;
  }, 300_000);
  t.is(waiting.crashes.length, 0, 'outages are not crashes');
  t.is(waiting.restarts, 0);
  t.regex(waiting.lastError ?? '', new RegExp(`^outage: exited with code ${EXIT_OUTAGE}: .*schema registry`));

  await proxy.open(); // back, on the same port
  const running = await o.waitForJob(jobId, (r) => {
    if (r.state === 'crash-looping') throw new Error(`crash-looping after the outage: ${r.lastError ?? ''}`);
    return r.state === 'running';
  }, 180_000);
  t.is(running.outages, 0, 'a report resets the outage count');
  const ends = await topicEndOffsets(o.admin, o.options.topics.input);
  const deadline = Date.now() + 120_000;
  let committed: Record<string, number> = {};
  while (JSON.stringify(committed) !== JSON.stringify(ends)) {
    if (Date.now() > deadline) throw new Error(`committed ${JSON.stringify(committed)} never reached ${JSON.stringify(ends)}`);
    await sleep(300);
    committed = await readJobOffsets(o.admin, jobId, o.options.topics.input);
  }
  t.is(Object.values(committed).reduce((a, b) => a + b, 0), 3, 'the job ran once the registry was back: its offsets advanced');

  const kafka = testKafka();
  const events = await consumeUntil(kafka, o.options.topics.events, (m) => m.some((e) => e.value!.toString().includes('"running"')), 10_000);
  const parsed = events.map((e) => JSON.parse(e.value!.toString()) as { event: string; reason?: string; exitCode?: number });
  t.true(parsed.filter((e) => e.event === 'outage').length >= outages);
  t.true(parsed.every((e) => e.event !== 'outage' || e.exitCode === EXIT_OUTAGE));
  t.true(parsed.some((e) => e.event === 'restarted' && e.reason === 'outage'));
  t.false(parsed.some((e) => e.event === 'crash-looping' || e.event === 'failed'));
});
