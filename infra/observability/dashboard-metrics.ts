/**
 * What the Grafana dashboard (grafana-dashboard.json) needs from the processes' /metrics:
 * the metric names of its PromQL queries, and the names a Prometheus exposition serves.
 * The dashboard test scrapes each live process and checks the first against the second,
 * so a renamed series breaks the test instead of leaving an empty panel.
 */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const DASHBOARD_FILE = join(dirname(fileURLToPath(import.meta.url)), 'grafana-dashboard.json');

interface Panel {
  readonly targets?: readonly { readonly expr?: string }[];
  readonly panels?: readonly Panel[];
}

/** Every `expr` of the dashboard's panels (rows' nested panels included). */
export function dashboardQueries(dashboard: { readonly panels?: readonly Panel[] }): string[] {
  const queries: string[] = [];
  const visit = (panels: readonly Panel[]): void => {
    for (const panel of panels) {
      for (const target of panel.targets ?? []) if (target.expr) queries.push(target.expr);
      visit(panel.panels ?? []);
    }
  };
  visit(dashboard.panels ?? []);
  return queries;
}

export function readDashboard(file: string = DASHBOARD_FILE): { readonly panels?: readonly Panel[] } {
  return JSON.parse(readFileSync(file, 'utf8')) as { readonly panels?: readonly Panel[] };
}

const KEYWORDS = new Set(['by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'bool', 'and', 'or', 'unless', 'offset', 'inf', 'nan']);

/**
 * The metric names a PromQL expression selects. Strings, label matchers (`{…}`), ranges
 * (`[5m]`) and grouping lists (`by (…)`) are removed first; what remains that is not a
 * function call, a keyword or a number is a metric name.
 */
export function metricNamesOf(expr: string): string[] {
  const stripped = expr
    .replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'/g, ' ')
    .replace(/\{[^}]*\}/g, ' ')
    .replace(/\[[^\]]*\]/g, ' ')
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ')
    .replace(/\boffset\s+\S+/g, ' ');
  const names = new Set<string>();
  for (const match of stripped.matchAll(/(?<![\w.:])[a-zA-Z_:][a-zA-Z0-9_:]*(?=\s*(\(?))/g)) {
    const [name] = match;
    const call = match[1] === '(';
    if (!call && !KEYWORDS.has(name.toLowerCase())) names.add(name);
  }
  return [...names];
}

/**
 * Every series name a Prometheus text exposition serves: its samples' names, and for each
 * `# TYPE` family the names its type defines (a histogram's `_bucket`, `_sum`, `_count`),
 * so a labelled series that has no sample yet still counts as served.
 */
export function exposedNames(text: string): Set<string> {
  const names = new Set<string>();
  for (const line of text.split('\n')) {
    const type = /^# TYPE (\S+) (\S+)$/.exec(line);
    if (type) {
      const [, family = '', kind] = type;
      const suffixes = kind === 'histogram' ? ['_bucket', '_sum', '_count'] : kind === 'summary' ? ['', '_sum', '_count'] : [''];
      for (const suffix of suffixes) names.add(`${family}${suffix}`);
      continue;
    }
    const sample = /^([a-zA-Z_:][a-zA-Z0-9_:]*)[{ ]/.exec(line);
    if (sample?.[1]) names.add(sample[1]);
  }
  return names;
}
