/**
 * The HTTP kit on a real socket (no outside services): the error body, 404 vs 405, 413,
 * hooks that run before routing, the OpenAPI document, and a busy port.
 */
import test from 'ava';
import { createServer } from 'node:net';
import { ApiError, PortInUseError } from '../errors.ts';
import { createLogger } from '../logger.ts';
import { createHttpServer, isPublicRoute, listen, type HttpServer } from './server.ts';

const logger = createLogger({ logLevel: 'silent' });

async function kit(): Promise<{ app: HttpServer; url: string }> {
  const app = await createHttpServer({ title: 'test API', description: 'kit test', logger, bodyLimit: 100, bodyLimitHint: 'send less', bearerDescription: 'a test token' });
  // Like the feedback and control APIs: a credential before routing, except on public routes.
  app.addHook('onRequest', async (request) => {
    if (!isPublicRoute(request) && request.headers.authorization !== 'Bearer good') throw new ApiError('DIAMOND_UNAUTHORIZED', 'no token', 'send one');
  });
  app.get('/public', { config: { public: true }, schema: { summary: 'public' } }, async () => ({ ok: true }));
  app.post('/v1/things/:id', { schema: { summary: 'a thing', params: { type: 'object', properties: { id: { type: 'string', pattern: '^[a-z]+$' } } } } }, async () => ({ ok: true }));
  const url = await listen(app, { port: 0, host: '127.0.0.1', api: 'test API', change: { flag: '--port', env: 'DIAMOND_TEST_PORT' } });
  return { app, url };
}

const token = { authorization: 'Bearer good' };

test('errors are { error, code, hint } with the catalog status; 404, 405 with Allow, 413, 400 naming the field', async (t) => {
  const { app, url } = await kit();
  t.teardown(() => app.close());
  const missing = await fetch(`${url}/v1/nothing`, { headers: token });
  t.is(missing.status, 404);
  t.deepEqual(Object.keys((await missing.json()) as object).sort(), ['code', 'error', 'hint']);
  const method = await fetch(`${url}/v1/things/abc`, { headers: token });
  t.is(method.status, 405);
  t.is(method.headers.get('allow'), 'POST');
  t.like(await method.json(), { code: 'DIAMOND_METHOD_NOT_ALLOWED' });
  const large = await fetch(`${url}/v1/things/abc`, { method: 'POST', headers: { ...token, 'content-type': 'application/json' }, body: JSON.stringify({ pad: 'x'.repeat(500) }) });
  t.is(large.status, 413);
  t.like(await large.json(), { code: 'DIAMOND_BODY_TOO_LARGE', hint: 'send less' });
  const bad = await fetch(`${url}/v1/things/ABC`, { method: 'POST', headers: token });
  t.is(bad.status, 400);
  t.regex(((await bad.json()) as { error: string }).error, /^id must match pattern/);
  const notJson = await fetch(`${url}/v1/things/abc`, { method: 'POST', headers: { ...token, 'content-type': 'application/json' }, body: '{nope' });
  t.like(await notJson.json(), { code: 'DIAMOND_BAD_REQUEST', error: 'the body is not JSON' });
});

test('the credential is checked before routing: an unknown path without one is 401, with one 404', async (t) => {
  const { app, url } = await kit();
  t.teardown(() => app.close());
  t.is((await fetch(`${url}/v1/nothing`)).status, 401);
  t.is((await fetch(`${url}/nothing`)).status, 401);
  t.is((await fetch(`${url}/v1/things/abc`)).status, 401, 'a wrong method too');
  t.is((await fetch(`${url}/v1/nothing`, { headers: token })).status, 404);
  t.is((await fetch(`${url}/public`)).status, 200);
});

test('GET /openapi.json: an OpenAPI 3.1 document of the routes, without a credential', async (t) => {
  const { app, url } = await kit();
  t.teardown(() => app.close());
  const response = await fetch(`${url}/openapi.json`);
  t.is(response.status, 200);
  const document = (await response.json()) as { openapi: string; info: { title: string }; paths: Record<string, unknown> };
  t.is(document.openapi, '3.1.0');
  t.is(document.info.title, 'test API');
  t.truthy(document.paths['/v1/things/{id}']);
  t.truthy(document.paths['/public']);
  t.falsy(document.paths['/openapi.json']);
});

test('a busy port is one PortInUseError naming the port, the flag and the variable', async (t) => {
  const taken = createServer();
  await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => taken.close(() => resolve())));
  const { port } = taken.address() as { port: number };
  const app = await createHttpServer({ title: 'test API', description: 'kit test', logger, bodyLimit: 100, bodyLimitHint: 'send less', bearerDescription: 'a test token' });
  const error = await t.throwsAsync(listen(app, { port, host: '127.0.0.1', api: 'test API', change: { flag: '--port', env: 'DIAMOND_TEST_PORT' } }), { instanceOf: PortInUseError });
  t.is(error?.code, 'DIAMOND_PORT_IN_USE');
  t.is(error?.message, `the test API cannot listen on 127.0.0.1:${port}: port ${port} is already in use; pass --port or set DIAMOND_TEST_PORT`);
  t.false(error?.message.includes('\n'));
});
