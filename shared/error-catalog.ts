/**
 * Every error code of Diamond, once: the HTTP status an API answers with, whether retrying
 * the same call can help, and one line for docs/ERRORS.md (generated from this table by
 * `node --import tsx shared/error-catalog-doc.ts`; a unit test fails when they drift).
 *
 * Codes are stable: never rename or reuse one; add a new one instead. `DiamondError`'s
 * `code` is typed by this table, so a code that is not here does not compile.
 */
export interface ErrorSpec {
  /** What an HTTP API answers; for errors that never cross HTTP, what they would mean there. */
  readonly status: number;
  readonly retriable: boolean;
  readonly doc: string;
}

const refusal = (doc: string): ErrorSpec => ({ status: 422, retriable: false, doc });
const outage = (doc: string): ErrorSpec => ({ status: 503, retriable: true, doc });
const local = (doc: string): ErrorSpec => ({ status: 500, retriable: false, doc });

export const ERROR_CATALOG = {
  // Requests (every HTTP API)
  DIAMOND_BAD_REQUEST: { status: 400, retriable: false, doc: 'A field, parameter or body is malformed; the message names it.' },
  DIAMOND_BODY_EMPTY: { status: 400, retriable: false, doc: 'The request needs a body (ingest: a JSON array, one object or NDJSON).' },
  DIAMOND_UNAUTHORIZED: { status: 401, retriable: false, doc: 'No bearer token or API key, or an unknown or revoked one.' },
  DIAMOND_FORBIDDEN: { status: 403, retriable: false, doc: 'The token is valid but its role is below the one the call needs.' },
  DIAMOND_NO_ROUTE: { status: 404, retriable: false, doc: 'No such path; GET /openapi.json lists the routes.' },
  DIAMOND_METHOD_NOT_ALLOWED: { status: 405, retriable: false, doc: 'The path exists with other methods, named in the Allow header.' },
  DIAMOND_BODY_TOO_LARGE: { status: 413, retriable: false, doc: 'The body is larger than the API accepts; send smaller requests.' },
  DIAMOND_UNSUPPORTED_MEDIA_TYPE: { status: 415, retriable: false, doc: 'The content-type is not one the route reads (application/json).' },
  DIAMOND_INTERNAL: { status: 500, retriable: false, doc: 'A bug in Diamond; the server log has the stack.' },

  // Outages: retry later
  DIAMOND_SERVICE_UNAVAILABLE: outage('A service (Kafka, registry, Cassandra, Redis, an API) did not answer at its address.'),
  DIAMOND_KAFKA_WRITE_FAILED: outage('Kafka did not acknowledge a write in time; nothing of the request was accepted.'),
  DIAMOND_BACKPRESSURE: outage('Too much is waiting for Kafka already; retry after a short pause.'),
  DIAMOND_REGISTRY_UNAVAILABLE: outage('The schema registry failed while a writer resolved a schema id; the batch is retried.'),
  DIAMOND_KEYSPACE_MISSING: outage('The Cassandra keyspace does not exist yet; downstream creates it when it starts.'),
  DIAMOND_STREAM_LIMIT: { status: 429, retriable: true, doc: 'This token or customer holds DIAMOND_HTTP_STREAMS_PER_CLIENT streams open already; close one (or retry after Retry-After).' },
  DIAMOND_TOO_MANY_STREAMS: outage('Too many event streams are open on the control API; close one or retry later.'),
  DIAMOND_EVENTS_FAILED: outage('Reading the lifecycle events failed.'),
  DIAMOND_CONTROL_TIMEOUT: outage('The control API did not answer in time.'),

  // Control API: refusals the caller can fix
  DIAMOND_NOT_DEPLOYED: { status: 404, retriable: false, doc: 'The use case variant is not deployed.' },
  DIAMOND_NO_LOG: { status: 404, retriable: false, doc: 'The job has no log yet (it has not been started).' },
  DIAMOND_USECASE_UNKNOWN: refusal('No use case folder with a usecase.yaml at that name or path.'),
  DIAMOND_USECASE_DIR_REFUSED: refusal('The use case folder lies outside DIAMOND_USECASE_ROOTS (after symlinks and .. are resolved); the message names the allowed roots.'),
  DIAMOND_USECASE_PIP_OPTION_REFUSED: refusal("The use case's requirements.txt carries a pip option or a non-index source (VCS, URL, path, -r/-c/-e); the message names the line. DIAMOND_USECASE_ALLOW_PIP_OPTIONS=1 allows them."),
  DIAMOND_USECASE_INVALID: refusal('The use case failed validation (manifest, code or sample); the message says what to fix.'),
  DIAMOND_USECASE_OUTPUT_INVALID: refusal("The use case's output on its sample does not conform to the Feedback contract."),
  DIAMOND_FEEDBACK_SCHEMA_INCOMPATIBLE: refusal('The Feedback contract the job would write is not compatible with the registered one.'),
  DIAMOND_OVER_BUDGET: refusal('Deploying would exceed the core or memory budget of the orchestrator.'),
  DIAMOND_USECASE_ENV_FAILED: refusal("Building the use case's Python environment from its requirements.txt failed."),
  DIAMOND_SCHEMA_INCOMPATIBLE: refusal('The registry refused a schema as not BACKWARD compatible with the registered versions.'),
  DIAMOND_ROLLOUT_WEIGHTS_INVALID: refusal('A/B weights must be VARIANT=NUMBER pairs, e.g. A=90,B=10.'),
  DIAMOND_CUSTOMER_ID_INVALID: refusal('A customer id is empty or has characters it cannot have.'),
  DIAMOND_SOURCE_UNKNOWN: refusal('No ingest source by that name.'),
  DIAMOND_SOURCE_EXISTS: refusal('An ingest source by that name exists already.'),
  DIAMOND_SOURCE_NAME_INVALID: refusal('An ingest source name has characters it cannot have.'),
  DIAMOND_MAPPING_INVALID: refusal("A source's field mapping is malformed."),
  DIAMOND_FILE_FORMAT: refusal('A file to load is neither CSV/TSV nor JSON lines.'),

  // Function runs (docs/RUNS.md)
  DIAMOND_FUNCTION_UNKNOWN: { status: 404, retriable: false, doc: 'No use case declares that function (`usecase.function`); the hint lists the functions it has.' },
  DIAMOND_FUNCTIONS_INVALID: refusal("The use case's `functions:` in usecase.yaml are malformed; the message names the field and the fix."),
  DIAMOND_RUN_UNKNOWN: { status: 404, retriable: false, doc: 'No run by that id (never, or its result expired after DIAMOND_RUNS_RESULT_TTL).' },
  DIAMOND_RUN_ENDED: { status: 409, retriable: false, doc: 'The run has ended already; there is nothing to cancel.' },
  DIAMOND_RUN_QUEUE_FULL: outage("The function's queue holds DIAMOND_RUNS_QUEUE_LIMIT runs already; retry later."),
  DIAMOND_BACKFILL_STATEFUL: refusal('A backfill runs a stateless transform over the history as a batch; a stateful use case keeps its windows in its stream\'s checkpoint: replay it from a time instead.'),
  DIAMOND_HISTORY_UNAVAILABLE: { status: 409, retriable: false, doc: 'A backfill needs the history archive: it is off (DIAMOND_HISTORY_ARCHIVE=0) or has committed no records yet.' },
  DIAMOND_SQL_REFUSED: { status: 400, retriable: false, doc: 'POST /v1/sql: the text is not one read-only query (a command such as SET, DROP or INSERT, a reflection function); the message names the part.' },
  DIAMOND_SQL_INVALID: { status: 400, retriable: false, doc: "POST /v1/sql: Spark cannot run the query (syntax, an unknown view or column); the message is Spark's." },
  DIAMOND_SQL_TIMED_OUT: { status: 504, retriable: false, doc: 'POST /v1/sql: the query ran longer than DIAMOND_SQL_TIMEOUT and was cancelled; narrow it or raise the limit.' },
  DIAMOND_SUMMARY_NOT_CONFIGURED: { status: 503, retriable: true, doc: "The feedback API's GET /v1/summary has no working runner token for the control API (DIAMOND_SUMMARY_TOKEN_FILE; `diamond up` writes one), or the control API has no customer_insights.customer_summary." },
  DIAMOND_SUMMARY_FAILED: { status: 502, retriable: false, doc: "GET /v1/summary: the summary's run failed or was cancelled; the message gives the run's error code and message, the hint its run id." },
  DIAMOND_SUMMARY_TIMEOUT: { status: 504, retriable: true, doc: 'GET /v1/summary: the run did not end within DIAMOND_SUMMARY_WAIT (or its own run timeout); it was cancelled. Retry: a warm function session answers in seconds.' },
  DIAMOND_RUN_FAILED: local('`diamond run`: the run failed, was cancelled or timed out; the message says why (with the file and line of the user code).'),

  // Local commands and processes (the CLI prints them; they rarely cross HTTP)
  DIAMOND_CONFIG_INVALID: local('A DIAMOND_* setting is missing or malformed; the message names it.'),
  DIAMOND_DEPENDENCY_TIMEOUT: outage('A platform process gave up waiting for a server it needs (DIAMOND_DEPENDENCY_WAIT); start the server or fix its address.'),
  DIAMOND_PORT_IN_USE: local('An API cannot listen: its port is taken; the message names the flag and the variable to change it.'),
  DIAMOND_SERVICE_START_FAILED: local('Installing or starting a local service failed; see its log.'),
  DIAMOND_UNKNOWN_SERVICE: local('No local service by that name.'),
  DIAMOND_PLATFORM_START_FAILED: local('`diamond up` could not start a part of the platform.'),
  DIAMOND_LEASE_LOST: outage('An orchestrator lost its leader lease (it paused past it) and its write was refused; it steps down and the lease holder carries on.'),
  DIAMOND_JOB_UNKILLABLE: local('Job processes survived SIGKILL (stuck in the kernel, or another user\'s); the message names their pids.'),
  DIAMOND_ORCHESTRATOR_RUNNING: local('An orchestrator still supervises the jobs; stop it first.'),
  DIAMOND_JOB_USER_MISSING: local('The platform runs as root and the unprivileged user tenant code runs as (DIAMOND_JOB_USER) does not exist; create it (infra/setup/system-packages.sh does).'),
  DIAMOND_JOB_USER_NO_ACCESS: local('The job user cannot read a file tenant code needs (a parent folder is closed to it); the message names the path.'),
  DIAMOND_PYTHON_MISSING: local('No Python interpreter for the use case environments.'),
  DIAMOND_TOKEN_MISSING: local('The CLI has no token for the control API (DIAMOND_TOKEN or `diamond up`).'),
  DIAMOND_TOKEN_UNKNOWN: local('The token to revoke is not known.'),
  DIAMOND_BAD_ARGUMENT: local('A command-line argument is malformed.'),
  DIAMOND_DEPLOY_WAIT_FAILED: local('`diamond deploy --wait`: the deployed version crash-looped or did not run in time; it stays deployed.'),
  DIAMOND_USECASE_NAME: local('A new use case name must be lower_snake_case.'),
  DIAMOND_USECASE_EXISTS: local('A use case folder by that name exists already.'),
  DIAMOND_USECASE_TESTS_FAILED: local("The use case's own tests failed."),
  DIAMOND_DEMO_USAGE: local('The demo was called with unknown arguments.'),
  DIAMOND_DEMO_PARAMS: local('The demo parameters are inconsistent.'),
  DIAMOND_DATASET_PARAMS: local("A use case manifest lacks a parameter the dataset oracle models, or it is not understood; the message names the file and the parameter."),
  DIAMOND_MESSAGE_INVALID: local('A progress or lifecycle message breaks its contract (shared/schemas/*.schema.json); the message names the field.'),
  DIAMOND_DEMO_SOURCE_KEY: local('The demo could not create its ingest source key.'),
  DIAMOND_DEMO_INGEST_UNAVAILABLE: outage('The demo could not reach the ingest API.'),
  DIAMOND_DEMO_INGEST_FAILED: local('The ingest API refused the demo records.'),
  DIAMOND_DEMO_JOBS_TIMEOUT: outage('The demo jobs did not run in time.'),
  DIAMOND_DEMO_JOB_FAILED: local('A demo job failed.'),
  DIAMOND_DEMO_FEEDBACK_FAILED: local('The demo did not receive the feedback it expected.'),
} as const satisfies Readonly<Record<string, ErrorSpec>>;

export type ErrorCode = keyof typeof ERROR_CATALOG;

export function isErrorCode(value: string): value is ErrorCode {
  return Object.hasOwn(ERROR_CATALOG, value);
}

export function errorSpec(code: ErrorCode): ErrorSpec {
  return ERROR_CATALOG[code];
}

/** docs/ERRORS.md, generated from the catalog. */
export function renderErrorDoc(): string {
  const lines = [
    '# Error codes',
    '',
    'Generated from `shared/error-catalog.ts` by `node --import tsx shared/error-catalog-doc.ts`;',
    '`shared/error-catalog.test.ts` fails when this page and the catalog drift apart.',
    '',
    'Every HTTP API of Diamond (ingest, feedback, control) answers errors with one body:',
    '',
    '```json',
    '{ "error": "<human message>", "code": "<STABLE_CODE>", "hint": "<what to do>" }',
    '```',
    '',
    'Codes are stable: never renamed or reused. Retriable = the same call may succeed later',
    '(503 answers and retriable 504s carry `Retry-After`).',
    '',
    '| code | HTTP | retriable | meaning |',
    '|---|---|---|---|',
    ...Object.entries(ERROR_CATALOG).map(([code, spec]) => `| \`${code}\` | ${spec.status} | ${spec.retriable ? 'yes' : 'no'} | ${spec.doc.replaceAll('|', '\\|')} |`),
  ];
  return `${lines.join('\n')}\n`;
}
