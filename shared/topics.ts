/** Topic names: the data contracts of DESIGN.md §3. Nothing else spells them. */
export const Topics = {
  rawRecords: (source: string): string => `records.raw.${source}`,
  normalizedRecords: 'records.normalized',
  rejectedRecords: 'records.rejected',
  rawFeedback: 'feedback.raw',
  rejectedFeedback: 'feedback.rejected',
  progress: 'diamond.progress',
  events: 'diamond.events',
  /** Lifecycle of on-demand function runs (docs/RUNS.md), JSON keyed by run id. */
  runs: 'diamond.runs',
} as const;

/** The feedback writer's consumer group on feedback.raw (downstream); the dashboard shows its lag. */
export const FEEDBACK_WRITER_GROUP = 'downstream.feedback-writer';
