/** Rollout weights in Redis: the store lives in shared/ (the control API sets them too). */
export { RolloutStore } from '../shared/rollout-weights.ts';
