/**
 * The platform supervises itself, on the real services, without Spark:
 * - under `diamond up`, a kill -9 of the orchestrator, upstream or downstream is followed by
 *   a new process that serves again (the supervisor);
 * - `down` then `up` keeps what the platform was told (a private, durable Redis started by
 *   the launcher in the test's home, so `down` really stops it and `up` starts it again);
 * - `serve upstream` started while the registry is unreachable waits, saying so, and serves
 *   once it is reachable (a TCP proxy the test opens late; before, it exited at once).
 * Isolation as in platform.test.ts: its own DIAMOND_HOME, free ports, upstream without the
 * raw-topic normalizer and downstream with only its API (no real consumer group is joined),
 * and here its own Redis server. `up` runs in-process with those components (the CLI's `up`
 * would start the writers in the real groups); `down` runs the CLI.
 */
import { execFile, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import test from 'ava';
import { loadConfig, type DiamondConfig } from '../../shared/config.ts';
import { createLogger } from '../../shared/logger.ts';
import { createRedis } from '../../shared/redis.ts';
import { isAlive, runningProcess } from '../../shared/process-group.ts';
import { CustomerKeys } from '../../downstream/customer-keys.ts';
import { RolloutStore } from '../../downstream/rollout-store.ts';
import { writeLocalPlatformFile } from '../../infra/platform/admin-token.ts';
import { platformUp, stopComponent } from '../../infra/platform/local-platform.ts';
import { componentPaths, isHealthy, platformComponents, PLATFORM_COMPONENTS, type PlatformComponent } from '../../infra/platform/platform-components.ts';
import { readSupervisorState, stopSupervisor, supervisorPaths } from '../../infra/platform/platform-supervisor.ts';
import { platformEndpoints } from '../../infra/platform/platform-file.ts';
import { defaultOrchestratorOptions } from '../../infra/orchestrator/options.ts';
import { DeploymentStore } from '../../infra/orchestrator/store.ts';
import { TokenStore } from '../../shared/operator-tokens.ts';
import { servicesDown, servicesStatus, servicesUp } from '../../infra/services/local-services.ts';
import { servicePaths } from '../../infra/services/service.ts';
import { config as sharedConfig, freePort, uniqueName } from '../support/env.ts';

const BACK_WITHIN_MS = 60_000;

/** Polls until `check` gives a value; fails naming what did not happen (a bound, never a speed assertion). */
async function waitFor<T>(what: string, check: () => Promise<T | null | undefined> | T | null | undefined, timeoutMs = BACK_WITHIN_MS): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== null && value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs / 1000} s`);
    await sleep(250);
  }
}

function runCli(args: readonly string[], env: NodeJS.ProcessEnv): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [join(sharedConfig.projectRoot, 'infra', 'cli', 'bin.js'), ...args], { env, cwd: sharedConfig.projectRoot, timeout: 180_000 }, (error, stdout, stderr) => {
      if (error) reject(new Error(`diamond ${args.join(' ')} failed: ${error.message}\n${stdout}\n${stderr}`));
      else resolve(stdout);
    });
  });
}

async function httpStatus(url: string, token?: string): Promise<number> {
  const response = await fetch(url, { headers: token ? { authorization: `Bearer ${token}` } : {}, signal: AbortSignal.timeout(10_000) });
  await response.body?.cancel();
  return response.status;
}

interface Platform {
  readonly home: string;
  readonly env: NodeJS.ProcessEnv;
  readonly config: DiamondConfig;
  readonly components: PlatformComponent[];
}

let platform: Platform | null = null;

/** What `diamond up` does, with the test's components. */
async function up(p: Platform): Promise<void> {
  const log = createLogger({ logLevel: 'warn' }, { fd: 2, bindings: { test: 'platform-supervisor' } });
  await servicesUp(p.config, log);
  await platformUp(p.config, log, { env: p.env, components: p.components });
  await writeLocalPlatformFile(p.config);
}

test.before(async () => {
  const unhealthy = (await servicesStatus(sharedConfig)).filter((s) => !s.healthy);
  if (unhealthy.length > 0) throw new Error(`services down: ${unhealthy.map((s) => s.name).join(', ')}; run \`npx diamond services up\` first`);
  const home = mkdtempSync(join(tmpdir(), 'diamond-supervisor-test-'));
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    DIAMOND_HOME: home,
    // Its own Redis server: started in this home by `up`, so `down` stops it and the next `up` starts it.
    DIAMOND_REDIS_URL: `redis://127.0.0.1:${await freePort()}`,
    DIAMOND_INGEST_PORT: String(await freePort()), DIAMOND_FEEDBACK_PORT: String(await freePort()), DIAMOND_CONTROL_PORT: String(await freePort()),
    DIAMOND_TOKEN: '', DIAMOND_LOG_LEVEL: 'info', DIAMOND_ORCHESTRATOR_GROUP: uniqueName('ps-orchestrator-group'),
    DIAMOND_DEPENDENCY_WAIT: '60s', DIAMOND_PLATFORM_RESTART_BACKOFF: '500ms', DIAMOND_PLATFORM_RESTART_BACKOFF_MAX: '5s',
    DIAMOND_HISTORY_ARCHIVE: '0', // no Spark driver this test is not about (orchestrator-history tests it)
  };
  const config = loadConfig(env);
  const components = platformComponents(config).map((component) => ({
    ...component,
    args: component.name === 'upstream' ? [...component.args, '--no-raw-topics'] : component.name === 'downstream' ? [...component.args, '--parts', 'api'] : component.args,
  }));
  platform = { home, env, config, components };
  await up(platform);
});

test.after.always(async () => {
  if (!platform) return;
  const { config, home, components } = platform;
  await stopSupervisor(config).catch(() => undefined);
  for (const name of PLATFORM_COMPONENTS) await stopComponent(config, name, components).catch(() => undefined);
  await servicesDown(config, { only: ['redis'] }).catch(() => undefined);
  rmSync(home, { recursive: true, force: true });
});

test.serial('a kill -9 of the orchestrator, upstream or downstream under `diamond up` is followed by a new process that serves', async (t) => {
  const { config, components } = platform!;
  for (const component of components) {
    const { pidFile } = componentPaths(config, component.name);
    const old = runningProcess(pidFile)?.pid;
    if (old === undefined) throw new Error(`${component.name} is not running before the kill`);
    process.kill(old, 'SIGKILL');
    const replaced = await waitFor(`${component.name} restarted after kill -9 of pid ${old} and answering ${component.healthUrl}`, async () => {
      const now = runningProcess(pidFile)?.pid;
      return now !== undefined && now !== old && (await isHealthy(component.healthUrl)) ? now : null;
    });
    t.not(replaced, old, `${component.name} has a new pid`);
    t.false(isAlive(old), `${component.name}'s old pid ${old} is gone`);
    t.is(await httpStatus(component.healthUrl), 200, `${component.name} answers again`);
  }
  const state = readSupervisorState(config);
  for (const name of PLATFORM_COMPONENTS) {
    const seen = state?.components.find((c) => c.name === name);
    t.like(seen, { state: 'running' }, `${name} is running in the supervisor's state`);
    t.true((seen?.restarts ?? 0) >= 1, `the restart of ${name} is counted`);
    t.not(seen?.lastExit, null, `the exit of ${name} is recorded`);
  }
  const log = readFileSync(supervisorPaths(config).logFile, 'utf8');
  for (const name of PLATFORM_COMPONENTS) t.regex(log, new RegExp(`${name} \\(pid \\d+\\) exited; restarting it`), `a log line says ${name} exited`);
});

test.serial('down then up keeps deployments, tokens, customer keys and rollouts; the APIs accept the key and the token again', async (t) => {
  const { config, env } = platform!;
  const usecase = uniqueName('kept').replaceAll('-', '_');
  const options = defaultOrchestratorOptions(config);
  const redis = createRedis(config, { keyPrefix: options.keyPrefix });
  const plain = createRedis(config);
  await Promise.all([redis.connect(), plain.connect()]);
  let token: string;
  let customerKey: string;
  try {
    const store = new DeploymentStore(redis);
    const deployment = await store.putDeployment({ usecase, variant: 'A', folder: join(platform!.home, 'nowhere'), version: 'v-kept' });
    // Crash-looping with the deployed generation: the orchestrator leaves it alone (no Spark in this test).
    await store.putJob({
      jobId: `uc.${usecase}.A`, usecase, variant: 'A', state: 'crash-looping', generation: deployment.generation, current: null, next: null,
      retiring: [], restarts: 5, crashes: [], nextStartAt: null, lastError: 'test', lastLogFile: null, updatedAt: Date.now(),
    });
    token = await new TokenStore(redis).add('deployer', 'platform-supervisor.test');
    customerKey = await new CustomerKeys(plain).add('acme');
    await new RolloutStore(plain).set(usecase, { A: 70, B: 30 });
  } finally {
    redis.disconnect();
    plain.disconnect();
  }
  const redisPid = runningProcess(servicePaths(config, 'redis').pidFile)?.pid;
  t.truthy(redisPid, 'the test home runs its own Redis');

  const summary = JSON.parse(await runCli(['down', '--json'], env)) as {
    supervisor: { stopped: boolean }; platform: { name: string; stopped: boolean }[]; services: { name: string; stopped: boolean }[] | null; kept: string[];
  };
  t.true(summary.supervisor.stopped, 'down stopped the supervisor');
  t.true(summary.platform.every((p) => p.stopped), 'down stopped the three processes');
  t.like(summary.services?.find((s) => s.name === 'redis'), { stopped: true }, "down stopped this home's Redis");
  t.false(isAlive(redisPid!), 'Redis is really down');
  for (const name of PLATFORM_COMPONENTS) t.is(runningProcess(componentPaths(config, name).pidFile), null, `${name} stays down (no supervisor restarted it)`);
  t.regex(summary.kept.join('\n'), /deployments.*tokens.*customer and source keys, rollout weights/);

  await up(platform!);

  const after = createRedis(config, { keyPrefix: options.keyPrefix });
  const afterPlain = createRedis(config);
  await Promise.all([after.connect(), afterPlain.connect()]);
  try {
    t.is((await new DeploymentStore(after).getDeployment(usecase, 'A'))?.version, 'v-kept', 'the deployment is kept');
    t.is((await new TokenStore(after).verify(token))?.role, 'deployer', 'the token is kept');
    t.is(await new CustomerKeys(afterPlain).authenticate(customerKey), 'acme', 'the customer key is kept');
    t.deepEqual(await new RolloutStore(afterPlain).get(usecase), { A: 70, B: 30 }, 'the rollout weights are kept');
  } finally {
    after.disconnect();
    afterPlain.disconnect();
  }
  const { controlUrl, feedbackUrl } = platformEndpoints(config);
  t.is(await httpStatus(`${feedbackUrl}/v1/feedback`, customerKey), 200, 'the feedback API accepts the customer key after up');
  t.is(await httpStatus(`${controlUrl}/v1/status`, token), 200, 'the control API accepts the token after up');
});

test.serial('serve upstream started while the registry is unreachable waits, says so, and serves once it answers', async (t) => {
  const proxyPort = await freePort(); // closed: nothing listens there yet
  const ingestPort = await freePort();
  const home = mkdtempSync(join(tmpdir(), 'diamond-wait-test-'));
  const registryTarget = new URL(sharedConfig.registry.url);
  const registryThroughProxy = `http://127.0.0.1:${proxyPort}${registryTarget.pathname}`;
  const child = spawn(process.execPath, [join(sharedConfig.projectRoot, 'infra', 'cli', 'bin.js'), 'serve', 'upstream', '--no-raw-topics', '--port', String(ingestPort)], {
    cwd: sharedConfig.projectRoot, stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, DIAMOND_HOME: home, DIAMOND_REDIS_PASSWORD_FILE: sharedConfig.redis.passwordFile, DIAMOND_REGISTRY_URL: registryThroughProxy, DIAMOND_DEPENDENCY_WAIT: '120s', DIAMOND_LOG_LEVEL: 'info' },
  });
  let output = '';
  let exit: string | null = null;
  child.stdout.on('data', (chunk: Buffer) => { output += chunk.toString(); });
  child.stderr.on('data', (chunk: Buffer) => { output += chunk.toString(); });
  child.once('exit', (code, signal) => { exit = `code ${code} signal ${signal}`; });
  const sockets = new Set<Socket>();
  let proxy: Server | null = null;
  t.teardown(async () => {
    if (exit === null) child.kill('SIGKILL');
    for (const socket of sockets) socket.destroy();
    await new Promise((resolve) => (proxy ? proxy.close(resolve) : resolve(undefined)));
    rmSync(home, { recursive: true, force: true });
  });
  const waiting = new RegExp(`waiting for schema registry at http://127\\.0\\.0\\.1:${proxyPort}/\\S+ \\(attempt (\\d+), next in [\\d.]+ s\\)`, 'g');
  await waitFor('upstream logs that it waits for the registry twice', () => {
    if (exit !== null) throw new Error(`upstream exited (${exit}) instead of waiting:\n${output}`);
    return [...output.matchAll(waiting)].length >= 2 || null;
  });
  t.is(exit, null, 'still running while the registry is unreachable');
  t.false(await isHealthy(`http://127.0.0.1:${ingestPort}/healthz`), 'not serving before the registry answers');

  proxy = createServer((socket) => {
    const upstreamSocket = connect(Number(registryTarget.port), registryTarget.hostname);
    sockets.add(socket).add(upstreamSocket);
    socket.pipe(upstreamSocket).pipe(socket);
    socket.on('error', () => upstreamSocket.destroy());
    upstreamSocket.on('error', () => socket.destroy());
  });
  await new Promise<void>((resolve) => proxy.listen(proxyPort, '127.0.0.1', resolve));

  await waitFor(`upstream serves at :${ingestPort} once the registry answers (output so far:\n${output.slice(-2000)})`, async () => {
    if (exit !== null) throw new Error(`upstream exited (${exit}):\n${output}`);
    return isHealthy(`http://127.0.0.1:${ingestPort}/healthz`);
  });
  t.regex(output, /schema registry at http:\/\/127\.0\.0\.1:\d+\S* answers; going on/);
});
