/**
 * The one dataset generator of the platform's examples, used by the demo (infra/demo) and the
 * end-to-end suite (test/support/e2e.ts): records of a few customers of a shop, generated from
 * a seed (same options → the same records, byte for byte). Pure: no I/O, no clock. What they
 * must produce is computed independently by ./oracle.ts.
 *
 * Each customer has a profile that makes the A/B test of spending_spike visible — variant A
 * flags a window whose spend is above 1,000; variant B needs spend above 600 over at least
 * 3 purchases:
 *   burst, big-burst  several large purchases within half an hour → both variants flag it
 *   single-big        one purchase of ~1,300 and no others        → only A flags it
 *   many-medium       four purchases of ~170 within 20 minutes    → only B flags it
 *   steady            small purchases all along                   → neither
 * Around them, Poisson background activity (views, logins, small purchases, refunds,
 * payments). About 8 % of the records are faulty, every kind at least once: some are
 * accepted and flagged by data_quality (missing or negative amounts, …), the others are
 * rejected by upstream (malformed JSON, wrong types, missing required fields) and go to
 * records.rejected.
 *
 * Event times lie in the `spanMinutes` before `anchor` (the demo passes "now"), so the use
 * cases' event-time windows close with the watermark while one watches; a pattern starts
 * 100–130 minutes before the anchor (and, with `patternEveryMinutes`, again every so many
 * minutes before that, each far enough from the next that no window holds two), so both
 * sliding windows that hold it close. Records go out in event-time order (`items`, and
 * `batches`: requests of `requestMinutes` of event time each), except, with
 * `outOfOrderMinutes`, some purchases sent a few minutes late; so no purchase reaches
 * spending_spike more than a request's span plus that delay behind the newest one it saw:
 * none falls behind its 10-minute watermark, whatever the micro-batch boundaries. Late
 * purchases (behind the watermark) come from generateLateFollowUp, a second run sent once
 * the jobs have processed the first.
 */
import { SeededRandom } from './seeded-random.ts';

export type Profile = 'burst' | 'big-burst' | 'single-big' | 'many-medium' | 'steady';

export interface DemoCustomer {
  readonly id: string;
  readonly profile: Profile;
  readonly currency: string;
}

/**
 * Names chosen so that a 50/50 rollout of spending_spike (SPENDING_WEIGHTS) puts one customer
 * of each profile in A and one in B (the assignment is a hash of use case and customer id).
 */
export const DEMO_CUSTOMERS: readonly DemoCustomer[] = [
  { id: 'acme', profile: 'burst', currency: 'EUR' },
  { id: 'wayne', profile: 'big-burst', currency: 'USD' },
  { id: 'initech', profile: 'single-big', currency: 'EUR' },
  { id: 'umbrella', profile: 'single-big', currency: 'GBP' },
  { id: 'globex', profile: 'many-medium', currency: 'EUR' },
  { id: 'soylent', profile: 'many-medium', currency: 'USD' },
  { id: 'tyrell', profile: 'steady', currency: 'EUR' },
  { id: 'hooli', profile: 'steady', currency: 'USD' },
];

/** The rollout of spending_spike the demo customers are designed for (the demo and the e2e suite set it). */
export const SPENDING_WEIGHTS: Readonly<Record<string, number>> = { A: 50, B: 50 };

/** What a profile does, in words (printed beside the customer's feedback). */
export const PROFILE_STORY: Readonly<Record<Profile, string>> = {
  burst: 'six large purchases within 25 minutes',
  'big-burst': 'nine purchases of ~400 within half an hour',
  'single-big': 'one purchase of ~1,300, otherwise browsing',
  'many-medium': 'four purchases of ~170 within 20 minutes',
  steady: 'small purchases all along',
};

/** Accepted records that data_quality flags, by the kind of feedback they get. */
export const FLAGGED_FAULTS = ['missing_amount', 'missing_currency', 'negative_amount', 'amount_out_of_range', 'future_timestamp'] as const;
/** Records upstream rejects (they never reach a use case). */
export const REJECTED_FAULTS = ['malformed_json', 'wrong_type', 'bad_timestamp', 'missing_customer_id', 'missing_type'] as const;
export type Fault = (typeof FLAGGED_FAULTS)[number] | (typeof REJECTED_FAULTS)[number];

/** A record as upstream normalizes it: the fields the use cases (and the oracle) read. */
export interface InputRecord {
  readonly record_id: string;
  readonly customer_id: string;
  readonly event_time: number;
  readonly type: string;
  readonly amount: number | null;
  readonly currency: string | null;
}

export interface DatasetItem {
  /** The NDJSON line sent to the ingest API. */
  readonly line: string;
  /** The record id the line carries (also when upstream rejects it). */
  readonly recordId: string;
  /** Send order (event time, except for faults dated elsewhere). */
  readonly sendAt: number;
  readonly customerId: string;
  readonly fault: Fault | null;
  /** What upstream turns the line into; null when upstream rejects it. */
  readonly record: InputRecord | null;
}

export interface Dataset {
  readonly seed: number;
  readonly anchor: number;
  readonly start: number;
  /** Prefix of every record id of this run, e.g. `demo-t5x3k1`: tells this run's feedback apart. */
  readonly tag: string;
  readonly customers: readonly DemoCustomer[];
  /** In send order. */
  readonly items: readonly DatasetItem[];
  /** The items again, as requests of `requestMinutes` of send time each, in order. */
  readonly batches: readonly (readonly DatasetItem[])[];
  /** Every record upstream must accept, by record id, as it must normalize it. */
  readonly accepted: ReadonlyMap<string, InputRecord>;
  /** How many lines upstream must reject. */
  readonly rejected: number;
}

export interface DatasetOptions {
  readonly seed: number;
  /** Epoch millis; the newest event time is just before it. */
  readonly anchor: number;
  readonly customers?: readonly DemoCustomer[];
  /** Event-time span before the anchor (default 180). */
  readonly spanMinutes?: number;
  /** Repeat each customer's pattern this often, back from the first one (default: once). At least 120. */
  readonly patternEveryMinutes?: number;
  /** Record id prefix (default `runTag(anchor)`). */
  readonly tag?: string;
  /** Event time covered by one request of `batches` (default 5). */
  readonly requestMinutes?: number;
  /**
   * Adds one small purchase of customer `flush` this long after the anchor: it moves the
   * spending watermark past every window, so every window is emitted. For tests only: a
   * demo run would leave the watermark ahead of its next run.
   */
  readonly flushAfterMinutes?: number;
  /**
   * Sends about a fifth of the background purchases up to this many minutes (at most 4) after
   * their event time: out of order, but less than spending_spike's 10-minute watermark behind
   * any purchase sent before them, so none is late whatever the micro-batch boundaries.
   */
  readonly outOfOrderMinutes?: number;
  /**
   * Whole amounts (default: cents). Spark sums a window in its own order; with whole amounts
   * the sum, and so the score, is exact whatever the order, so tests compare it exactly.
   */
  readonly wholeAmounts?: boolean;
}

const MINUTE = 60_000;
/** The earliest a pattern starts, in minutes before the anchor (see spendingRows: a rerun needs its patterns after the previous watermark). */
export const PATTERN_EARLIEST_MINUTES = 130;
const FAULT_RATE = 0.08;
const PAGES = ['/', '/products', '/products/42', '/products/7', '/cart', '/checkout', '/account', '/help'];
const CHANNELS = ['web', 'web', 'app', 'app', 'store'];

/** Events per hour by profile (purchases and refunds carry amounts; the rest is browsing). */
const RATES: Readonly<Record<Profile, { view: number; login: number; purchase: number; refund: number; payment: number }>> = {
  burst: { view: 30, login: 2, purchase: 2.5, refund: 0.3, payment: 0 },
  'big-burst': { view: 30, login: 2, purchase: 2.5, refund: 0.3, payment: 0 },
  'single-big': { view: 25, login: 2, purchase: 0, refund: 0, payment: 0.7 },
  'many-medium': { view: 30, login: 2, purchase: 1, refund: 0.3, payment: 0 },
  steady: { view: 30, login: 2, purchase: 4, refund: 0.3, payment: 0 },
};

type Money = (min: number, max: number) => number;

interface EventSpec {
  customer: DemoCustomer;
  time: number;
  sendAt: number;
  type: string;
  amount: number | null;
  currency: string | null;
  channel: string;
  page: string | null;
  /** Part of a profile's pattern: never turned into a fault. */
  pattern: boolean;
  fault: Fault | null;
}

export function runTag(anchor: number): string {
  return `demo-${Math.floor(anchor / 1000).toString(36)}`;
}

export function generateDataset(options: DatasetOptions): Dataset {
  const random = new SeededRandom(options.seed);
  const money = options.wholeAmounts ? (min: number, max: number): number => Math.round(random.between(min, max)) : (min: number, max: number): number => random.amount(min, max);
  const customers = options.customers ?? DEMO_CUSTOMERS;
  const span = (options.spanMinutes ?? 180) * MINUTE;
  const anchor = Math.floor(options.anchor / 1000) * 1000;
  const start = anchor - span;
  const end = anchor - 10_000; // nothing "now": the ingest clock may lag the demo's by a little

  const specs: EventSpec[] = [];
  const every = options.patternEveryMinutes;
  if (every !== undefined && every < 120) throw new RangeError(`patternEveryMinutes must be at least 120 (two patterns in one window would change their outcome), got ${every}`);
  for (const customer of customers) {
    specs.push(...background(random, money, customer, start, end));
    // The first pattern as always; earlier ones while they fit after the start.
    for (let k = 0; k === 0 || (every !== undefined && anchor - (k * every + PATTERN_EARLIEST_MINUTES) * MINUTE >= start); k++) {
      specs.push(...pattern(random, money, customer, anchor - k * (every ?? 0) * MINUTE));
    }
  }
  // A steady purchase just before the anchor: it moves the spending watermark up to
  // anchor − 10 min, which closes every window that holds a pattern.
  const closer = customers.find((c) => c.profile === 'steady') ?? customers[0]!;
  specs.push(event(random, closer, anchor - 15_000, 'purchase', money(8, 30), true));

  injectFaults(random, money, specs, anchor);
  if (options.outOfOrderMinutes !== undefined) delaySome(random, specs, options.outOfOrderMinutes, options.requestMinutes ?? 5);
  if (options.flushAfterMinutes !== undefined) {
    const flush: DemoCustomer = { id: 'flush', profile: 'steady', currency: 'EUR' };
    specs.push({ ...event(random, flush, anchor + options.flushAfterMinutes * MINUTE, 'purchase', 1, true), page: null });
  }
  specs.sort((a, b) => a.sendAt - b.sendAt || a.time - b.time);
  const tag = options.tag ?? runTag(anchor);
  const items = specs.map((spec, index) => render(random, money, spec, `${tag}-${String(index + 1).padStart(5, '0')}`));
  const accepted = new Map(items.flatMap((i) => (i.record ? [[i.recordId, i.record] as const] : [])));
  return { seed: options.seed, anchor, start, tag, customers, items, batches: requests(items, (options.requestMinutes ?? 5) * MINUTE), accepted, rejected: items.length - accepted.size };
}

/** spending_spike's watermark (usecase.yaml): a purchase sent this far behind a newer one may be dropped as late. */
const WATERMARK_MINUTES = 10;

function delaySome(random: SeededRandom, specs: EventSpec[], minutes: number, requestMinutes: number): void {
  // A delayed purchase may share a micro-batch boundary with its request's newest record.
  if (!(minutes > 0 && minutes + requestMinutes < WATERMARK_MINUTES)) {
    throw new RangeError(`outOfOrderMinutes + requestMinutes must stay under the ${WATERMARK_MINUTES}-minute watermark (a purchase sent later could be dropped as late), got ${minutes} + ${requestMinutes}`);
  }
  for (const spec of specs) {
    if (spec.pattern || spec.fault !== null || spec.type !== 'purchase') continue;
    if (random.next() < 0.2) spec.sendAt = spec.time + Math.round(random.between(1, minutes) * MINUTE);
  }
}

export interface LateOptions {
  readonly seed: number;
  /** Purchases dated well behind the watermark `first` left (30 minutes or more before its anchor). */
  readonly late?: number;
  /** An on-time burst of customer `acme` this long after `first`'s anchor (default 60): windows the second run emits. */
  readonly burstAfterMinutes?: number;
  /** The flush purchase, this long after `first`'s anchor (default 180): it closes every window. */
  readonly flushAfterMinutes?: number;
  readonly wholeAmounts?: boolean;
}

/**
 * What to send into the same jobs after `first` was processed (its watermark moved): first
 * `late` purchases of first's customers dated between its start + 1 h and its anchor − 30 min,
 * large enough to lift a window over a threshold if they were counted, which spending_spike
 * must drop as late; then an on-time burst (three purchases of 400–450 within 10 minutes, in
 * order) and a flush purchase that closes every window. Late purchases are dropped only when
 * the job has committed `first` before they arrive: send them as a second run.
 */
export function generateLateFollowUp(first: Dataset, options: LateOptions): Dataset {
  const random = new SeededRandom(options.seed);
  const money = options.wholeAmounts ? (min: number, max: number): number => Math.round(random.between(min, max)) : (min: number, max: number): number => random.amount(min, max);
  const specs: EventSpec[] = [];
  const from = first.start + 60 * MINUTE;
  const to = first.anchor - 30 * MINUTE;
  for (let i = 0; i < (options.late ?? 8); i++) {
    const customer = first.customers[i % first.customers.length]!;
    specs.push(event(random, customer, Math.round(random.between(from, to)), 'purchase', money(700, 1400), true));
  }
  // Sent together, before anything newer: all of them behind first's watermark.
  for (const spec of specs) spec.sendAt = to;
  const burstAt = first.anchor + (options.burstAfterMinutes ?? 60) * MINUTE;
  const acme = first.customers.find((c) => c.id === 'acme') ?? first.customers[0]!;
  for (let i = 0; i < 3; i++) specs.push(event(random, acme, burstAt + i * 5 * MINUTE, 'purchase', money(400, 450), true));
  const flush: DemoCustomer = { id: 'flush', profile: 'steady', currency: 'EUR' };
  specs.push({ ...event(random, flush, first.anchor + (options.flushAfterMinutes ?? 180) * MINUTE, 'purchase', 1, true), page: null });
  specs.sort((a, b) => a.sendAt - b.sendAt || a.time - b.time);
  const tag = `${first.tag}-late`;
  const items = specs.map((spec, index) => render(random, money, spec, `${tag}-${String(index + 1).padStart(5, '0')}`));
  const accepted = new Map(items.flatMap((i) => (i.record ? [[i.recordId, i.record] as const] : [])));
  return { seed: options.seed, anchor: first.anchor, start: first.start, tag, customers: first.customers, items, batches: requests(items, 5 * MINUTE), accepted, rejected: items.length - accepted.size };
}

/** Consecutive items grouped by slices of send time (a slice with nothing sends no request). */
function requests(items: readonly DatasetItem[], sliceMs: number): DatasetItem[][] {
  const batches: DatasetItem[][] = [];
  let current: number | null = null;
  for (const item of items) {
    const slice = Math.floor(item.sendAt / sliceMs);
    if (slice !== current) batches.push([]);
    current = slice;
    batches.at(-1)!.push(item);
  }
  return batches;
}

function event(random: SeededRandom, customer: DemoCustomer, time: number, type: string, amount: number | null, pattern = false): EventSpec {
  const money = amount !== null;
  return {
    customer, time, sendAt: time, type, amount, currency: money ? customer.currency : null,
    channel: random.pick(CHANNELS), page: type === 'view' ? random.pick(PAGES) : null, pattern, fault: null,
  };
}

/** Poisson arrivals of every event type over [start, end). */
function background(random: SeededRandom, money: Money, customer: DemoCustomer, start: number, end: number): EventSpec[] {
  const rates = RATES[customer.profile];
  const specs: EventSpec[] = [];
  for (const [type, perHour] of Object.entries(rates)) {
    if (perHour <= 0) continue;
    const mean = (60 / perHour) * MINUTE;
    for (let time = start + random.exponential(mean); time < end; time += random.exponential(mean)) {
      const at = Math.round(time);
      if (type === 'purchase') specs.push(event(random, customer, at, type, money(4, customer.profile === 'steady' ? 55 : 40)));
      else if (type === 'refund') specs.push(event(random, customer, at, type, money(5, 40)));
      else if (type === 'payment') specs.push(event(random, customer, at, type, money(50, 300)));
      else specs.push(event(random, customer, at, type, null));
    }
  }
  return specs;
}

/** The profile's purchases: `count` of them spread over `minutes`, starting 100–130 minutes before the anchor. */
function pattern(random: SeededRandom, money: Money, customer: DemoCustomer, anchor: number): EventSpec[] {
  const shape = {
    burst: { count: 6, minutes: 25, min: 230, max: 420 },
    'big-burst': { count: 9, minutes: 28, min: 360, max: 480 },
    'single-big': { count: 1, minutes: 0, min: 1180, max: 1490 },
    'many-medium': { count: 4, minutes: 20, min: 160, max: 185 },
    steady: { count: 0, minutes: 0, min: 0, max: 0 },
  }[customer.profile];
  const begin = anchor - Math.round(random.between(PATTERN_EARLIEST_MINUTES - 30, PATTERN_EARLIEST_MINUTES) * MINUTE);
  const specs: EventSpec[] = [];
  for (let i = 0; i < shape.count; i++) {
    const offset = shape.count === 1 ? 0 : Math.round((i / (shape.count - 1)) * shape.minutes * MINUTE * random.between(0.9, 1));
    specs.push(event(random, customer, begin + offset, 'purchase', money(shape.min, shape.max), true));
  }
  return specs;
}

/**
 * Turns about 8 % of the background events into faults: every kind at least once, then at
 * random. Future timestamps go on refunds, not purchases: a purchase dated in the future
 * would move spending_spike's watermark hours ahead and make all later purchases "late".
 * They stay within 20 hours: the feedback API lists a customer's days up to tomorrow.
 */
function injectFaults(random: SeededRandom, money: Money, specs: EventSpec[], anchor: number): void {
  const candidates = specs.filter((s) => !s.pattern);
  const count = Math.max(FAULT_RATE * specs.length, FLAGGED_FAULTS.length + REJECTED_FAULTS.length);
  const kinds: Fault[] = [...FLAGGED_FAULTS, ...REJECTED_FAULTS];
  const chosen = new Set<EventSpec>();
  for (let i = 0; i < count && chosen.size < candidates.length; i++) {
    let spec = random.pick(candidates);
    while (chosen.has(spec)) spec = random.pick(candidates);
    chosen.add(spec);
    const fault = kinds[i] ?? (random.next() < 0.5 ? random.pick(FLAGGED_FAULTS) : random.pick(REJECTED_FAULTS));
    applyFault(random, money, spec, fault, anchor);
  }
}

function applyFault(random: SeededRandom, money: Money, spec: EventSpec, fault: Fault, anchor: number): void {
  spec.fault = fault;
  const currency = spec.customer.currency;
  switch (fault) {
    case 'missing_amount':
      Object.assign(spec, { type: 'purchase', amount: null, currency, page: null });
      break;
    case 'missing_currency':
      Object.assign(spec, { type: 'purchase', amount: money(5, 50), currency: null, page: null });
      break;
    case 'negative_amount':
      Object.assign(spec, { type: 'purchase', amount: -money(5, 80), currency, page: null });
      break;
    case 'amount_out_of_range':
      Object.assign(spec, { type: 'payment', amount: money(2_000_000, 9_000_000), currency, page: null });
      break;
    case 'future_timestamp':
      Object.assign(spec, { type: 'refund', amount: money(10, 80), currency, page: null, time: anchor + Math.round(random.between(2, 20) * 60) * MINUTE });
      break;
    default:
      if (spec.amount === null) Object.assign(spec, { type: 'purchase', amount: money(5, 50), currency, page: null });
  }
}

/** The line as sent, and the record upstream makes of it (null when it rejects it). */
function render(random: SeededRandom, money: Money, spec: EventSpec, recordId: string): DatasetItem {
  const fields: Record<string, unknown> = {
    record_id: recordId,
    customer_id: spec.customer.id,
    event_time: new Date(spec.time).toISOString(),
    type: spec.type,
  };
  if (spec.amount !== null || spec.fault === 'missing_amount') fields.amount = spec.amount;
  if (spec.currency !== null) fields.currency = spec.currency;
  fields.channel = spec.channel;
  if (spec.page !== null) fields.page = spec.page;

  switch (spec.fault) {
    case 'malformed_json': {
      const text = JSON.stringify(fields);
      return item(text.slice(0, Math.floor(text.length * random.between(0.4, 0.8))), recordId, spec, null);
    }
    case 'wrong_type':
      fields.amount = random.pick(['twelve', true, [12.5]]);
      break;
    case 'bad_timestamp':
      fields.event_time = random.pick(['yesterday', '2026-13-45T10:00:00Z', '22/11/2026 10:00']);
      break;
    case 'missing_customer_id':
      delete fields.customer_id;
      break;
    case 'missing_type':
      delete fields.type;
      break;
    default:
      break;
  }
  const rejected = spec.fault !== null && (REJECTED_FAULTS as readonly string[]).includes(spec.fault);
  const record: InputRecord | null = rejected ? null : {
    record_id: recordId, customer_id: spec.customer.id, event_time: spec.time, type: spec.type, amount: spec.amount, currency: spec.currency,
  };
  return item(JSON.stringify(fields), recordId, spec, record);
}

function item(line: string, recordId: string, spec: EventSpec, record: InputRecord | null): DatasetItem {
  return { line, recordId, sendAt: spec.sendAt, customerId: spec.customer.id, fault: spec.fault, record };
}

/** How many records of each outcome the dataset holds. */
export function datasetCounts(dataset: Dataset): { records: number; accepted: number; rejected: number; flagged: number } {
  const accepted = dataset.items.filter((i) => i.record !== null).length;
  const flagged = dataset.items.filter((i) => i.record !== null && i.fault !== null).length;
  return { records: dataset.items.length, accepted, rejected: dataset.items.length - accepted, flagged };
}

/**
 * The late-records e2e's two runs (test/e2e/late-records.test.ts): the e2e shape without its
 * flush and with purchases sent up to 4 minutes out of order, then generateLateFollowUp.
 */
export function lateE2eRuns(seed: number, anchor: number): [Dataset, Dataset] {
  const first = generateDataset({ seed, anchor, customers: DEMO_CUSTOMERS, spanMinutes: 12 * 60, patternEveryMinutes: 120, outOfOrderMinutes: 4, wholeAmounts: true, tag: 'o' });
  return [first, generateLateFollowUp(first, { seed: seed + 1, late: 12, wholeAmounts: true })];
}
