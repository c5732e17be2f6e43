// The Diamond dashboard: plain DOM, no framework, no build step, nothing from a CDN.
//
// The operator token arrives in the URL fragment (#token=…, which no browser sends to a
// server), moves to sessionStorage (this tab only) and leaves the address bar. Every call
// sends it as `Authorization: Bearer`. Live updates: the lifecycle events stream
// (GET /v1/events, server-sent events read with fetch(), because EventSource cannot send a
// header and the token must not go into a query string), plus GET /v1/status every 2 s for
// the numbers (jobs, the driver pool, the latest function runs). Deployer actions (rollout weights, promote, roll back) show only when
// GET /v1/whoami says the token's role allows them; the server checks the role anyway.

const TOKEN_KEY = 'diamond.token';
const STATUS_EVERY_MS = 2_000;
const LOG_EVERY_MS = 5_000;
const ROLLOUTS_EVERY_MS = 5_000;
const COMPARISON_EVERY_MS = 15_000;
const MAX_EVENTS = 200;
const ROLES = ['viewer', 'deployer', 'admin'];

const state = {
  token: null,
  grant: null,
  status: null,
  selected: null,
  rollouts: new Map(),
  /** Use case → the A/B comparison (GET /v1/ab, relayed from downstream), or the reason there is none. */
  comparisons: new Map(),
  /** Use cases whose weights form is being edited (not overwritten by a refresh). */
  editing: new Set(),
  events: [],
  streamOpen: false,
  /** The output topic's flow (written, committed by the writer) at the last status, and the rates between the last two. */
  flow: null,
  flowRates: { written: null, committed: null },
};

const $ = (id) => document.getElementById(id);

function element(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (name === 'class') node.className = value;
    else if (name.startsWith('on')) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value === true ? '' : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function takeToken() {
  const fragment = new URLSearchParams(location.hash.slice(1));
  const fromLink = fragment.get('token');
  if (fromLink) {
    sessionStorage.setItem(TOKEN_KEY, fromLink);
    history.replaceState(null, '', location.pathname + location.search);
  }
  return sessionStorage.getItem(TOKEN_KEY);
}

class ApiFailure extends Error {
  constructor(status, body) {
    super(body?.error ? `${body.error}${body.hint ? ` (${body.hint})` : ''}` : `HTTP ${status}`);
    this.status = status;
    this.code = body?.code ?? null;
  }
}

/** `relayed`: the answer comes from another service (the A/B report), whose 401 is not about this token. */
async function api(path, init = {}, { relayed = false } = {}) {
  const response = await fetch(path, {
    ...init,
    headers: { ...(init.headers ?? {}), Authorization: `Bearer ${state.token}`, ...(init.body ? { 'Content-Type': 'application/json' } : {}) },
    cache: 'no-store',
  });
  if (response.status === 401 && !relayed) signOut('The token was refused (unknown, revoked or expired).');
  if (!response.ok) throw new ApiFailure(response.status, await response.json().catch(() => null));
  const type = response.headers.get('content-type') ?? '';
  return type.includes('application/json') ? response.json() : response.text();
}

const canDeploy = () => state.grant !== null && ROLES.indexOf(state.grant.role) >= ROLES.indexOf('deployer');

function signOut(reason) {
  sessionStorage.removeItem(TOKEN_KEY);
  state.token = null;
  $('main').hidden = true;
  $('login').hidden = false;
  $('login-reason').textContent = reason;
  $('who').textContent = 'no token';
}

// ---- formatting

const number = (value) => (value === null || value === undefined ? '–' : Number(value).toLocaleString('en-US'));
const shortVersion = (version) => (version ? version.slice(0, 10) : '–');
/** p50/p99 of the job's latest batch durations (JobStatus.latencyMs). */
const latencyText = (latency) => (latency ? `${number(latency.p50)} / ${number(latency.p99)} ms` : '–');

/** What an operator calls the state: a start after a crash is a restart. */
function stateLabel(job) {
  if (job.state === 'starting' && job.restarts > 0) return 'restarting';
  if (job.state === 'backoff') return 'restarting (backoff)';
  return job.state;
}

function stateClass(job) {
  const label = stateLabel(job);
  if (label === 'running') return 'ok';
  if (label === 'crash-looping') return 'bad';
  if (label === 'stopped' || label === 'pending') return 'idle';
  return 'busy';
}

const offsetsText = (offsets) => {
  const entries = Object.entries(offsets ?? {});
  return entries.length === 0 ? '–' : entries.map(([partition, offset]) => `${partition}:${offset}`).join(' ');
};

const ago = (iso) => {
  if (!iso) return '–';
  const seconds = Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000));
  return seconds < 90 ? `${seconds} s ago` : `${Math.round(seconds / 60)} min ago`;
};

function groupByUsecase(jobs) {
  const groups = new Map();
  for (const job of jobs) {
    if (!groups.has(job.usecase)) groups.set(job.usecase, []);
    groups.get(job.usecase).push(job);
  }
  return groups;
}

// ---- topology: sources → records.normalized → jobs/variants → feedback.raw → writers → tables → customers

function topologyNode(kind, title, ...details) {
  return element('div', { class: `node ${kind}` }, element('div', { class: 'node-title' }, title), ...details.map((d) => element('div', { class: 'node-detail' }, d)));
}

/** A node backed by another process: its /readyz as the control API saw it (GET /v1/status health). */
function healthOf(health) {
  const label = health ?? 'unknown';
  return element('span', { class: `health ${label === 'ready' ? 'ok' : 'bad'}`, 'data-health': label }, label);
}

/** Messages per second on the right-hand edges, from two samples of the output topic's offsets. */
function noteFlow(output) {
  const now = Date.now();
  const previous = state.flow;
  if (output && previous && now > previous.at) {
    const rate = (key) => (output[key] === null || previous[key] === null ? null : Math.max(0, Math.round(((output[key] - previous[key]) * 1000) / (now - previous.at))));
    state.flowRates = { written: rate('written'), committed: rate('committed') };
  }
  state.flow = output ? { ...output, at: now } : null;
}

const arrow = (label) => element('div', { class: 'edge' }, element('span', { class: 'edge-label' }, label ?? ''), element('span', { class: 'edge-arrow' }, '→'));

function renderTopology() {
  const { jobs, endpoints, topics, health } = state.status;
  const totalRate = jobs.reduce((sum, job) => sum + (job.recordsPerSecond ?? 0), 0);
  const groups = groupByUsecase(jobs);
  const jobsColumn = element('div', { class: 'column jobs-column' },
    groups.size === 0 ? element('div', { class: 'node idle' }, 'no use case deployed') : null,
    [...groups].map(([usecase, variants]) => element('div', { class: 'usecase' },
      element('div', { class: 'usecase-name' }, usecase),
      variants.map((job) => element('button', {
        class: `node job ${stateClass(job)}${state.selected === job.job ? ' selected' : ''}`, 'data-job': job.job, 'data-state': stateLabel(job), type: 'button',
        onclick: () => select(job.job),
      },
      element('span', { class: 'edge-in' }, `lag ${number(job.lag)}`),
      element('span', { class: 'variant' }, `variant ${job.variant}`),
      element('span', { class: 'state' }, stateLabel(job)),
      element('span', { class: 'rate' }, `${number(job.recordsPerSecond)} rec/s`),
      job.restarts > 0 ? element('span', { class: 'restarts' }, `${job.restarts} restart${job.restarts === 1 ? '' : 's'}`) : null)),
    )));
  const weighted = [...state.rollouts].filter(([, weights]) => weights).map(([usecase, weights]) => `${usecase} ${formatWeights(weights)}`);
  $('topology').replaceChildren(
    element('div', { class: 'column', id: 'node-ingest' }, topologyNode('source', 'sources', 'HTTP, files, raw topics', endpoints?.ingestUrl ?? '', element('span', {}, 'ingest API ', healthOf(health?.ingest)))),
    arrow('upstream'),
    element('div', { class: 'column' }, topologyNode('topic', 'records.normalized', topics?.input ?? '')),
    arrow(`${number(totalRate)} rec/s`),
    jobsColumn,
    arrow(state.flowRates.written === null ? '' : `${number(state.flowRates.written)} msg/s`),
    element('div', { class: 'column' }, topologyNode('topic', 'feedback.raw', topics?.output ?? '')),
    element('div', { class: 'edge', id: 'edge-writer', 'data-lag': state.flow?.writerLag ?? '' },
      element('span', { class: 'edge-label' }, state.flow?.writerLag === null || state.flow?.writerLag === undefined ? 'downstream' : `lag ${number(state.flow.writerLag)}`),
      element('span', { class: 'edge-label' }, state.flowRates.committed === null ? '' : `${number(state.flowRates.committed)} msg/s`),
      element('span', { class: 'edge-arrow' }, '→')),
    element('div', { class: 'column', id: 'node-writer' }, topologyNode('writer', 'feedback writer', 'A/B post-filter', weighted.length > 0 ? weighted.join('; ') : 'no weights', element('span', {}, 'downstream ', healthOf(health?.feedback)))),
    arrow(''),
    element('div', { class: 'column' }, topologyNode('table', 'Cassandra', 'feedback_by_variant', 'feedback_by_customer')),
    arrow(''),
    element('div', { class: 'column', id: 'node-customers' }, topologyNode('customer', 'customers', 'feedback API', endpoints?.feedbackUrl ?? '', element('span', {}, 'feedback API ', healthOf(health?.feedback)))),
  );
}

// ---- jobs table and the selected job

function renderJobs() {
  const { jobs } = state.status;
  $('jobs-empty').hidden = jobs.length > 0;
  $('jobs').querySelector('tbody').replaceChildren(...jobs.map((job) => element('tr', { 'data-job': job.job, class: state.selected === job.job ? 'selected' : null, onclick: () => select(job.job) },
    element('td', {}, `${job.usecase} ${job.variant}`),
    element('td', { class: `state ${stateClass(job)}` }, stateLabel(job)),
    element('td', { title: job.version ?? '' }, shortVersion(job.version)),
    element('td', { class: 'pid' }, job.pid ?? '–'),
    element('td', {}, job.restarts),
    element('td', { class: 'mono' }, offsetsText(job.committedOffsets)),
    element('td', {}, number(job.lag)),
    element('td', {}, number(job.recordsPerSecond)),
    element('td', {}, job.batchDurationMs === null || job.batchDurationMs === undefined ? ago(job.lastBatchAt) : `${number(job.batchDurationMs)} ms, ${ago(job.lastBatchAt)}`),
    element('td', { class: 'latency' }, latencyText(job.latencyMs)),
    element('td', {}, job.cpu === null ? '–' : job.cpu.toFixed(2)),
    element('td', {}, job.memoryMb === null ? '–' : `${number(job.memoryMb)} MB`),
    element('td', { class: 'error' }, job.lastError ?? ''),
  )));
  renderSelected();
}

function select(jobId) {
  state.selected = jobId;
  renderTopology();
  renderJobs();
  void refreshLog();
}

function renderSelected() {
  const job = state.status?.jobs.find((j) => j.job === state.selected);
  $('job-panel').hidden = !job;
  if (!job) return;
  $('job-title').textContent = `${job.usecase} ${job.variant}`;
  const facts = [
    ['job', job.job], ['state', stateLabel(job)], ['version', job.version ?? '–'], ['deployed version', job.deployedVersion ?? '–'],
    ['pid (process group)', job.pid ?? '–'], ['restarts', job.restarts], ['outages', job.outages], ['committed offsets', offsetsText(job.committedOffsets)],
    ['lag', number(job.lag)], ['records/s', number(job.recordsPerSecond)], ['batch duration', job.batchDurationMs == null ? '–' : `${number(job.batchDurationMs)} ms`],
    ['latency p50 / p99', job.latencyMs ? element('span', { id: 'job-latency', title: 'durations of its latest batches (at most 100); a record also waits for its batch to start' }, `${latencyText(job.latencyMs)} (last ${job.latencyMs.batches === 1 ? 'batch' : `${number(job.latencyMs.batches)} batches`})`) : '–'],
    ['batch rows', number(job.batchRows)], ['last batch', ago(job.lastBatchAt)], ['CPU (cores)', job.cpu === null ? '–' : job.cpu.toFixed(2)],
    ['memory', job.memoryMb === null ? '–' : `${number(job.memoryMb)} MB`], ['last error', job.lastError ?? 'none'],
    // Spark serves it on the orchestrator's machine (127.0.0.1): reachable from a browser there or through a tunnel.
    ['Spark UI', job.sparkUi ? element('a', { href: job.sparkUi, target: '_blank', rel: 'noopener', id: 'spark-ui-link' }, job.sparkUi) : '–'],
  ];
  $('job-facts').replaceChildren(...facts.flatMap(([name, value]) => [element('dt', {}, name), element('dd', { class: name === 'last error' && job.lastError ? 'error' : null }, value)]));
}

async function refreshLog() {
  const job = state.status?.jobs.find((j) => j.job === state.selected);
  if (!job) return;
  try {
    const text = await api(`/v1/jobs/${encodeURIComponent(job.usecase)}/${encodeURIComponent(job.variant)}/logs?lines=60`);
    $('log-tail').textContent = text || '(empty)';
    $('log-file').textContent = job.logFile ?? '';
  } catch (error) {
    $('log-tail').textContent = error.message;
  }
}

// ---- the warm driver pool, the history archiver and function runs ([5/9]–[6/9])

function runTook(run) {
  if (!run.endedAt) return run.startedAt ? `running ${ago(run.startedAt)}` : '–';
  const from = Date.parse(run.startedAt ?? run.queuedAt);
  return `${number(Math.max(0, Date.parse(run.endedAt) - from))} ms`;
}

function renderPoolAndRuns() {
  const { pool, history, runs } = state.status;
  const facts = [
    ['driver pool', pool && pool.size > 0 ? `${pool.ready} ready, ${pool.starting} starting (keeps ${pool.size})` : 'off (DIAMOND_ORCHESTRATOR_POOL_SIZE=0): every start is a cold spark-submit'],
    ['history archiver', history ? `${history.state}${history.pid ? ` (pid ${history.pid})` : ''}, ${history.restarts} restarts${history.lastError ? ` · ${history.lastError}` : ''}` : 'not running'],
  ];
  $('pool').replaceChildren(...facts.flatMap(([name, value]) => [element('dt', {}, name), element('dd', { 'data-fact': name }, value)]));
  const list = runs ?? [];
  $('runs-empty').hidden = list.length > 0;
  $('runs').hidden = list.length === 0;
  $('runs').querySelector('tbody').replaceChildren(...list.map((run) => element('tr', { 'data-run': run.id, 'data-state': run.state },
    element('td', { class: 'mono' }, run.id), element('td', {}, run.function), element('td', { class: 'state' }, run.state), element('td', {}, run.by),
    element('td', {}, ago(run.queuedAt)), element('td', {}, runTook(run)),
    element('td', { class: 'error' }, run.error ? `${run.error.message}${run.error.file ? ` (${run.error.file}:${run.error.line ?? '?'})` : ''}` : ''))));
}

// ---- A/B rollouts

function formatWeights(weights) {
  return Object.keys(weights).sort().map((variant) => `${variant}=${weights[variant]}`).join(',');
}

async function refreshRollouts() {
  if (!state.status) return;
  const usecases = [...groupByUsecase(state.status.jobs).keys()];
  await Promise.all(usecases.map(async (usecase) => {
    try {
      state.rollouts.set(usecase, (await api(`/v1/rollouts/${encodeURIComponent(usecase)}`)).weights);
    } catch {
      // shown as unknown until the next refresh
    }
  }));
  for (const usecase of [...state.rollouts.keys()]) if (!usecases.includes(usecase)) state.rollouts.delete(usecase);
  renderRollouts();
}

async function refreshComparisons() {
  if (!state.status) return;
  const multi = [...groupByUsecase(state.status.jobs)].filter(([, jobs]) => jobs.length > 1).map(([usecase]) => usecase);
  await Promise.all(multi.map(async (usecase) => {
    try {
      state.comparisons.set(usecase, await api(`/v1/ab/${encodeURIComponent(usecase)}?days=1`, {}, { relayed: true }));
    } catch (error) {
      state.comparisons.set(usecase, { unavailable: error.message });
    }
  }));
  renderRollouts();
}

function comparisonOf(usecase) {
  const report = state.comparisons.get(usecase);
  if (!report) return null;
  if (report.unavailable) return element('div', { class: 'comparison muted' }, `comparison unavailable: ${report.unavailable}`);
  const rows = (report.variants ?? []).map((v) => element('tr', { 'data-variant': v.variant },
    element('td', {}, v.variant), element('td', { class: 'rows' }, number(v.rows)), element('td', {}, number(v.customers)),
    element('td', {}, Number(v.rowsPerCustomer ?? 0).toFixed(2)),
    element('td', {}, `${v.produceLatencyMs?.p50 ?? '–'} / ${v.produceLatencyMs?.p99 ?? '–'} ms`),
    element('td', {}, `${v.writeLatencyMs?.p50 ?? '–'} / ${v.writeLatencyMs?.p99 ?? '–'} ms`)));
  const agreement = (report.agreement ?? []).map((a) => `${a.variants.join('/')} agree on ${(a.ratio * 100).toFixed(1)} % (${a.both} of ${a.either})`).join('; ');
  return element('div', { class: 'comparison' },
    element('table', {}, element('thead', {}, element('tr', {}, ['variant', 'rows (1 day)', 'customers', 'rows/customer', 'produce p50/p99', 'write p50/p99'].map((h) => element('th', {}, h)))), element('tbody', {}, rows)),
    agreement ? element('div', { class: 'muted' }, agreement) : null);
}

async function applyWeights(usecase, weights, what) {
  const message = $('rollout-message');
  message.textContent = `${what}…`;
  try {
    const answer = await api(`/v1/rollouts/${encodeURIComponent(usecase)}`, { method: 'PUT', body: JSON.stringify({ weights }) });
    state.rollouts.set(usecase, answer.after);
    state.editing.delete(usecase);
    message.textContent = `${usecase}: ${answer.before ? formatWeights(answer.before) : '(none)'} → ${formatWeights(answer.after)}; the writer applies it from its next batch`;
    message.dataset.outcome = 'applied';
  } catch (error) {
    message.textContent = `${usecase}: ${error.message}`;
    message.dataset.outcome = 'failed';
  }
  renderRollouts();
  renderTopology();
}

function renderRollouts() {
  if (!state.status) return;
  const deployer = canDeploy();
  $('rollout-role').textContent = deployer ? 'Weights apply to the writer\'s next batch; every variant keeps running over all records.'
    : `Read-only: the ${state.grant?.role ?? 'viewer'} role sees the weights; a deployer token changes them.`;
  const groups = groupByUsecase(state.status.jobs);
  const cards = [...groups].map(([usecase, jobs]) => {
    const existing = $('rollouts').querySelector(`[data-usecase="${usecase}"]`);
    if (existing && state.editing.has(usecase)) return existing;
    const weights = state.rollouts.get(usecase) ?? null;
    const variants = [...new Set([...jobs.map((j) => j.variant), ...Object.keys(weights ?? {})])].sort();
    const inputs = variants.map((variant) => element('label', { class: 'weight' }, `${variant} `,
      element('input', {
        type: 'number', min: 0, step: 1, name: variant, value: weights ? (weights[variant] ?? 0) : '', placeholder: '–', disabled: !deployer, 'aria-label': `${usecase} weight of ${variant}`,
        oninput: () => state.editing.add(usecase),
      })));
    const readWeights = (form) => Object.fromEntries(variants.map((variant) => [variant, Number(form.elements.namedItem(variant).value || 0)]));
    const form = element('form', {
      class: 'rollout', 'data-usecase': usecase,
      onsubmit: (event) => {
        event.preventDefault();
        void applyWeights(usecase, readWeights(event.currentTarget), `setting ${usecase}`);
      },
    },
    element('div', { class: 'usecase-name' }, usecase, element('span', { class: 'muted current' }, weights ? ` now ${formatWeights(weights)}` : ' no weights: every variant\'s rows reach customers')),
    ...inputs,
    deployer ? element('button', { type: 'submit', class: 'apply' }, 'Apply weights') : null,
    deployer && variants.length > 1 ? variants.map((variant) => element('button', {
      type: 'button', class: 'promote', 'data-variant': variant,
      onclick: () => void applyWeights(usecase, Object.fromEntries(variants.map((v) => [v, v === variant ? 100 : 0])), `promoting ${variant}`),
    }, `Promote ${variant}`)) : null,
    deployer && variants.length > 1 ? element('button', {
      type: 'button', class: 'rollback',
      onclick: () => void applyWeights(usecase, Object.fromEntries(variants.map((v, i) => [v, i === 0 ? 100 : 0])), `rolling back to ${variants[0]}`),
    }, `Roll back to ${variants[0]}`) : null,
    comparisonOf(usecase));
    return form;
  });
  $('rollouts').replaceChildren(...cards);
  if (cards.length === 0) $('rollouts').append(element('p', { class: 'muted' }, 'no use case deployed'));
}

// ---- lifecycle events, live

function eventDetails(event) {
  // A use case's own event (variant `*`): the weights as the rollout form writes them.
  if (event.event === 'rollout-changed') return [`${event.before ? formatWeights(event.before) : '(none)'} → ${formatWeights(event.weights ?? {})}`, event.by ? `by ${event.by}` : ''];
  return Object.entries(event).filter(([name]) => !['event', 'at', 'job', 'usecase', 'variant'].includes(name)).map(([name, value]) => `${name}=${typeof value === 'object' ? JSON.stringify(value) : value}`);
}

function eventLine(event) {
  const details = eventDetails(event);
  return element('li', { 'data-event': event.event, 'data-job': event.job ?? '' },
    element('time', {}, event.at ? new Date(event.at).toLocaleTimeString() : ''), ' ',
    element('span', { class: `event-name ${event.event}` }, event.event), ' ',
    element('span', {}, event.usecase ? `${event.usecase} ${event.variant === '*' ? '' : event.variant ?? ''}` : event.job ?? ''), ' ',
    element('span', { class: 'muted' }, details.join(' ')));
}

function addEvent(event) {
  state.events.unshift(event);
  state.events.length = Math.min(state.events.length, MAX_EVENTS);
  const list = $('events');
  list.prepend(eventLine(event));
  while (list.children.length > MAX_EVENTS) list.lastElementChild.remove();
}

function setLive(on, text) {
  state.streamOpen = on;
  $('live').dataset.live = on ? 'on' : 'off';
  $('live').textContent = text;
}

/** Reads `text/event-stream` from a fetch() body: blocks separated by a blank line. */
async function followEvents() {
  let delay = 1_000;
  for (;;) {
    if (!state.token) return;
    const since = state.events[0]?.at;
    try {
      const response = await fetch(since ? `/v1/events?since=${encodeURIComponent(since)}` : '/v1/events?last=50', { headers: { Authorization: `Bearer ${state.token}` }, cache: 'no-store' });
      if (response.status === 401) return signOut('The token was refused (unknown, revoked or expired).');
      if (!response.ok || !response.body) throw new Error(`events: HTTP ${response.status}`);
      setLive(true, 'events: live');
      delay = 1_000;
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = '';
      const seen = new Set(state.events.map((e) => `${e.at}|${e.event}|${e.job}`));
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += value;
        let end;
        while ((end = buffer.indexOf('\n\n')) >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const lines = block.split('\n');
          const name = lines.find((line) => line.startsWith('event: '))?.slice(7);
          const data = lines.filter((line) => line.startsWith('data: ')).map((line) => line.slice(6)).join('\n');
          if (name !== 'lifecycle' || !data) continue;
          const event = JSON.parse(data);
          const key = `${event.at}|${event.event}|${event.job}`;
          if (seen.has(key)) continue; // replayed again after a reconnect
          seen.add(key);
          addEvent(event);
          scheduleStatus(); // a state changed: show it now, not at the next poll
        }
      }
      setLive(false, 'events: reconnecting');
    } catch (error) {
      setLive(false, `events: reconnecting (${error.message})`);
    }
    await new Promise((resolve) => setTimeout(resolve, delay));
    delay = Math.min(delay * 2, 15_000);
  }
}

// ---- status polling

let statusTimer = null;
let statusInFlight = false;

function scheduleStatus(inMs = 100) {
  clearTimeout(statusTimer);
  statusTimer = setTimeout(() => void refreshStatus(), inMs);
}

async function refreshStatus() {
  if (!state.token) return;
  if (statusInFlight) return scheduleStatus(200);
  statusInFlight = true;
  try {
    state.status = await api('/v1/status');
    noteFlow(state.status.flows?.output ?? null);
    $('updated').textContent = `updated ${new Date().toLocaleTimeString()}${state.status.leader ? '' : ' · no orchestrator leads'}`;
    $('updated').dataset.error = '';
    renderTopology();
    renderJobs();
    renderPoolAndRuns();
    renderRollouts();
  } catch (error) {
    $('updated').textContent = `status failed: ${error.message}`;
    $('updated').dataset.error = 'yes';
  } finally {
    statusInFlight = false;
    scheduleStatus(STATUS_EVERY_MS);
  }
}

async function start() {
  state.token = takeToken();
  $('login-form').addEventListener('submit', (event) => {
    event.preventDefault();
    const token = $('login-token').value.trim();
    if (!token) return;
    sessionStorage.setItem(TOKEN_KEY, token);
    location.reload();
  });
  if (!state.token) return signOut('This page needs an operator token: `npx diamond ui` prints a link that signs you in.');
  try {
    state.grant = await api('/v1/whoami');
  } catch (error) {
    if (state.token) signOut(`The token could not be checked: ${error.message}`);
    return;
  }
  $('who').textContent = `${state.grant.name} · ${state.grant.role}${state.grant.expiresAt ? ` · until ${new Date(state.grant.expiresAt).toLocaleString()}` : ''}`;
  $('who').dataset.role = state.grant.role;
  $('login').hidden = true;
  $('main').hidden = false;
  await refreshStatus();
  await refreshRollouts();
  setInterval(() => void refreshRollouts(), ROLLOUTS_EVERY_MS);
  void refreshComparisons();
  setInterval(() => void refreshComparisons(), COMPARISON_EVERY_MS);
  setInterval(() => void refreshLog(), LOG_EVERY_MS);
  void followEvents();
}

void start();
