/** Topic names: the data contracts of DESIGN.md §3. Nothing else spells them. */
export const Topics = {
  rawRecords: (source: string): string => `records.raw.${source}`,
  normalizedRecords: 'records.normalized',
  rejectedRecords: 'records.rejected',
  rawFeedback: 'feedback.raw',
  rejectedFeedback: 'feedback.rejected',
  progress: 'diamond.progress',
  events: 'diamond.events',
} as const;
