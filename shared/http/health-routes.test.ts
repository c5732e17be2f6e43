/** The health checks on a real socket (no outside services): /livez never asks the dependency, /readyz and /healthz do. */
import test from 'ava';
import { ApiError } from '../errors.ts';
import { createLogger } from '../logger.ts';
import { registerHealthRoutes, type Readiness } from './health-routes.ts';
import { createHttpServer, isPublicRoute, listen } from './server.ts';

const logger = createLogger({ logLevel: 'silent' });

async function serve(check: () => Promise<Readiness>): Promise<{ url: string; close: () => Promise<void> }> {
  const app = await createHttpServer({ title: 'test API', description: 'health test', logger, bodyLimit: 100, bodyLimitHint: 'send less', bearerDescription: 'a test token' });
  // As on the feedback and control APIs: everything else needs a credential.
  app.addHook('onRequest', async (request) => {
    if (!isPublicRoute(request)) throw new ApiError('DIAMOND_UNAUTHORIZED', 'no token', 'send one');
  });
  registerHealthRoutes(app, { dependencies: 'the store', check });
  const url = await listen(app, { port: 0, host: '127.0.0.1', api: 'test API', change: { env: 'DIAMOND_TEST_PORT' } });
  return { url, close: () => app.close() };
}

const answer = async (url: string): Promise<{ status: number; body: unknown }> => {
  const response = await fetch(url);
  return { status: response.status, body: await response.json() };
};

test('a dependency down: /readyz and /healthz are 503 with what is down, /livez stays 200 without asking', async (t) => {
  let asked = 0;
  const { url, close } = await serve(async () => {
    asked += 1;
    return { ready: false, body: { store: 'unreachable' } };
  });
  t.teardown(close);
  t.deepEqual(await answer(`${url}/livez`), { status: 200, body: { status: 'ok' } });
  t.is(asked, 0, '/livez checks no dependency');
  t.deepEqual(await answer(`${url}/readyz`), { status: 503, body: { status: 'unavailable', store: 'unreachable' } });
  t.deepEqual(await answer(`${url}/healthz`), { status: 503, body: { status: 'unavailable', store: 'unreachable' } });
  t.is(asked, 2);
});

test('a check that throws is not ready (503), not a 500; a passing one is 200', async (t) => {
  let ready: boolean | 'throw' = 'throw';
  const { url, close } = await serve(async () => {
    if (ready === 'throw') throw new Error('connection refused');
    return { ready };
  });
  t.teardown(close);
  t.deepEqual(await answer(`${url}/readyz`), { status: 503, body: { status: 'unavailable' } });
  ready = true;
  t.deepEqual(await answer(`${url}/readyz`), { status: 200, body: { status: 'ok' } });
});
