/**
 * CPU and memory of every live job process group, sampled each tick from /proc and stored
 * with the job's metrics for status. CPU is a rate, so the previous sample of each group
 * is kept between ticks (and dropped once the group is gone).
 */
import type { JobRecord } from './state.ts';
import type { DeploymentStore } from './store.ts';
import { sampleProcessGroups, usageBetween, type GroupSample } from './usage.ts';

export class UsageSampler {
  /** Previous CPU/memory sample per process group. */
  private readonly samples = new Map<number, GroupSample>();

  constructor(private readonly store: DeploymentStore) {}

  async sample(records: readonly JobRecord[], now: number): Promise<void> {
    const groups = new Map<number, string>();
    for (const record of records) {
      for (const job of [record.current, record.next]) if (job) groups.set(job.groupPid, record.jobId);
    }
    const samples = sampleProcessGroups(new Set(groups.keys()), now);
    const perJob = new Map<string, { cpu: number | null; memoryMb: number; processes: number }>();
    for (const [group, sample] of samples) {
      const usage = usageBetween(this.samples.get(group), sample);
      const jobId = groups.get(group)!;
      const sum = perJob.get(jobId);
      perJob.set(jobId, sum
        ? { cpu: sum.cpu === null || usage.cpu === null ? null : sum.cpu + usage.cpu, memoryMb: sum.memoryMb + usage.memoryMb, processes: sum.processes + usage.processes }
        : { cpu: usage.cpu, memoryMb: usage.memoryMb, processes: usage.processes });
    }
    for (const group of this.samples.keys()) if (!samples.has(group)) this.samples.delete(group);
    for (const [group, sample] of samples) this.samples.set(group, sample);
    for (const [jobId, usage] of perJob) {
      await this.store.mergeMetrics(jobId, { ...usage, usageAt: now }).catch(() => undefined);
    }
  }
}
