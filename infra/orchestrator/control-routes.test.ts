import test from 'ava';
import { ApiError, DiamondError, httpStatusOf as statusForError, ServiceUnavailableError } from '../../shared/errors.ts';
import { bearerToken } from '../../shared/http/bearer.ts';
import { authorize, matchRoute, parseCount, parseDeployBody, parseEventsQuery, parseTokenBody } from './control-routes.ts';
import type { TokenGrant } from '../../shared/operator-tokens.ts';

const grant = (role: TokenGrant['role'], name = `${role}-token`): TokenGrant => ({ role, name, createdAt: '2026-11-01T00:00:00Z', id: `id-${name}` });

test('routes match by method and path, with decoded parameters', (t) => {
  const match = matchRoute('DELETE', '/v1/deployments/data_quality/B');
  t.is(match.kind, 'route');
  if (match.kind !== 'route') return;
  t.is(match.route.name, 'undeploy');
  t.is(match.route.role, 'deployer');
  t.deepEqual(match.params, { usecase: 'data_quality', variant: 'B' });

  const logs = matchRoute('GET', '/v1/jobs/a%20b/A/logs/');
  t.true(logs.kind === 'route' && logs.route.name === 'logs' && logs.params['usecase'] === 'a b');
  t.true(matchRoute('GET', '/healthz').kind === 'route');
  t.true(matchRoute('POST', '/v1/replay').kind === 'route');
});

test('a known path with another method is 405 with the allowed methods; an unknown path is 404', (t) => {
  t.deepEqual(matchRoute('GET', '/v1/deployments'), { kind: 'method-not-allowed', allow: ['POST'] });
  t.deepEqual(matchRoute('PUT', '/v1/deployments/x/A'), { kind: 'method-not-allowed', allow: ['DELETE'] });
  t.deepEqual(matchRoute('GET', '/v1/nothing'), { kind: 'not-found' });
  t.deepEqual(matchRoute('GET', '/v1/ab/'), { kind: 'not-found' });
  t.deepEqual(matchRoute('GET', '/v1/jobs/x/A/logs/extra'), { kind: 'not-found' });
});

test('bearer tokens are read from the Authorization header only', (t) => {
  t.is(bearerToken('Bearer dmd_abc'), 'dmd_abc');
  t.is(bearerToken('bearer   dmd_abc '), 'dmd_abc');
  t.is(bearerToken('Basic dXNlcg=='), null);
  t.is(bearerToken(undefined), null);
  t.is(bearerToken('Bearer'), null);
});

test('authorization: 401 without or with an unknown token, 403 when the role is too low', (t) => {
  t.deepEqual(authorize(null, null, null), { ok: true });

  const missing = authorize('viewer', null, null);
  t.false(missing.ok);
  if (!missing.ok) {
    t.is(missing.error.status, 401);
    t.regex(missing.error.headers['WWW-Authenticate'] ?? '', /^Bearer/);
  }
  const unknown = authorize('viewer', 'dmd_wrong', null);
  t.true(!unknown.ok && unknown.error.status === 401 && /invalid_token/.test(unknown.error.headers['WWW-Authenticate'] ?? ''));

  const low = authorize('deployer', 'dmd_x', grant('viewer', 'alice'));
  t.false(low.ok);
  if (!low.ok) {
    t.is(low.error.status, 403);
    t.regex(low.error.message, /needs the deployer role/);
    t.regex(low.error.message, /"alice" has the viewer role/);
    t.regex(low.error.hint ?? '', /token add --role deployer/);
  }
  t.true(authorize('deployer', 'dmd_x', grant('deployer')).ok);
  t.true(authorize('deployer', 'dmd_x', grant('admin')).ok);
  t.false(authorize('admin', 'dmd_x', grant('deployer')).ok);
});

test('deploy bodies: defaults, and a 400 naming the field', (t) => {
  t.deepEqual(parseDeployBody({ usecase: 'data_quality' }), { usecase: 'data_quality', variant: 'A' });
  t.deepEqual(parseDeployBody({ usecase: 'x', variant: 'B', dir: '/tmp/x', startingOffsets: 'earliest', trigger: '500ms' }), { usecase: 'x', variant: 'B', dir: '/tmp/x', startingOffsets: 'earliest', trigger: '500ms' });
  const field = (body: unknown): string => {
    const error = t.throws(() => parseDeployBody(body), { instanceOf: ApiError });
    t.is(error?.status, 400);
    return error?.message ?? '';
  };
  t.regex(field(undefined), /^body /);
  t.regex(field([]), /^body /);
  t.regex(field({}), /^usecase /);
  t.regex(field({ usecase: 'Bad-Name' }), /^usecase /);
  t.regex(field({ usecase: 'x', variant: 'AB' }), /^variant /);
  t.regex(field({ usecase: 'x', startingOffsets: 'middle' }), /^startingOffsets /);
  t.regex(field({ usecase: 'x', dir: 3 }), /^dir /);
  t.regex(field({ usecase: 'x', trigger: '' }), /^trigger /);
});

test('token bodies need a known role', (t) => {
  t.deepEqual(parseTokenBody({ role: 'viewer' }), { role: 'viewer' });
  t.deepEqual(parseTokenBody({ role: 'admin', name: 'ci' }), { role: 'admin', name: 'ci' });
  t.regex(t.throws(() => parseTokenBody({ role: 'root' }))?.message ?? '', /^role /);
});

test('events queries: since or last, follow by default', (t) => {
  t.deepEqual(parseEventsQuery(new URLSearchParams('')), { last: 20, follow: true });
  t.deepEqual(parseEventsQuery(new URLSearchParams('follow=0&last=5')), { last: 5, follow: false });
  t.deepEqual(parseEventsQuery(new URLSearchParams('since=2026-11-01T00:00:00Z')), { since: Date.UTC(2026, 10, 1), follow: true });
  t.deepEqual(parseEventsQuery(new URLSearchParams('since=1700000000000&follow=false')), { since: 1_700_000_000_000, follow: false });
  t.throws(() => parseEventsQuery(new URLSearchParams('since=yesterday')), { message: /^since / });
  t.throws(() => parseEventsQuery(new URLSearchParams('since=2026-11-01&last=3')), { message: /^since / });
  t.throws(() => parseEventsQuery(new URLSearchParams('last=-1')), { message: /^last / });
  t.is(parseCount('0', 'lines', 100, 10), 0);
  t.throws(() => parseCount('11', 'lines', 100, 10), { message: /^lines / });
});

test('errors map to statuses: refusals 422, outages 503, own codes as documented', (t) => {
  t.is(statusForError(new ApiError('DIAMOND_NO_ROUTE', 'x', 'y')), 404);
  t.is(statusForError(new DiamondError('refused', { code: 'DIAMOND_USECASE_INVALID' })), 422);
  t.is(statusForError(new DiamondError('refused', { code: 'DIAMOND_USECASE_UNKNOWN' })), 422);
  t.is(statusForError(new DiamondError('gone', { code: 'DIAMOND_NOT_DEPLOYED' })), 404);
  t.is(statusForError(new DiamondError('no keyspace', { code: 'DIAMOND_KEYSPACE_MISSING' })), 503);
  t.is(statusForError(new ServiceUnavailableError('Cassandra', '127.0.0.1:19042')), 503);
  t.is(statusForError(new Error('bug')), 500);
});
