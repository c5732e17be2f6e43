import test from 'ava';
import { readFileSync } from 'node:fs';
import { ApiError, DiamondError, httpStatusOf, KafkaWriteError, ServiceUnavailableError } from './errors.ts';
import { ERROR_CATALOG, isErrorCode, renderErrorDoc } from './error-catalog.ts';
import { ERRORS_DOC } from './error-catalog-doc.ts';

test('docs/ERRORS.md is the catalog (regenerate: node --import tsx shared/error-catalog-doc.ts)', (t) => {
  t.is(readFileSync(ERRORS_DOC, 'utf8'), renderErrorDoc());
});

test('status and retriable come from the catalog, wherever the error is thrown', (t) => {
  t.like(new KafkaWriteError('no ack'), { status: 503, retriable: true });
  t.like(new ServiceUnavailableError('Cassandra', '127.0.0.1:1'), { status: 503, retriable: true });
  t.like(new DiamondError('refused', { code: 'DIAMOND_USECASE_INVALID' }), { status: 422, retriable: false });
  t.like(new ApiError('DIAMOND_METHOD_NOT_ALLOWED', 'use POST', 'POST', { allow: 'POST' }), { status: 405, headers: { allow: 'POST' } });
  t.is(httpStatusOf(new Error('bug')), 500);
});

test('every code is documented, statuses are HTTP error statuses, codes look alike', (t) => {
  for (const [code, spec] of Object.entries(ERROR_CATALOG)) {
    t.regex(code, /^DIAMOND_[A-Z_]+$/);
    t.true(spec.status >= 400 && spec.status <= 599, code);
    t.true(spec.doc.length > 10 && !spec.doc.includes('\n'), code);
    // 503 and 429 always come with Retry-After; a 504 does when retrying can help (a gateway's timeout), not when the request itself is too slow.
    if (spec.status === 503 || spec.status === 429) t.true(spec.retriable, `${code}: a 503 or 429 is retriable (it comes with Retry-After)`);
    else if (spec.status !== 504) t.false(spec.retriable, `${code}: only 503, 429 and some 504 are retriable`);
  }
  t.true(isErrorCode('DIAMOND_NO_ROUTE'));
  t.false(isErrorCode('toString'));
});
