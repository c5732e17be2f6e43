/**
 * A small seeded random number generator (mulberry32): the demo's dataset must be the same
 * for the same seed on every machine, which Math.random cannot promise.
 */
export class SeededRandom {
  #state: number;

  constructor(seed: number) {
    this.#state = seed >>> 0;
  }

  /** Uniform in [0, 1). */
  next(): number {
    this.#state = (this.#state + 0x6d2b79f5) >>> 0;
    let t = this.#state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** Uniform in [min, max). */
  between(min: number, max: number): number {
    return min + (max - min) * this.next();
  }

  /** An integer in [min, max]. */
  int(min: number, max: number): number {
    return Math.floor(this.between(min, max + 1));
  }

  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new Error('pick from an empty list');
    return items[Math.floor(this.next() * items.length)]!;
  }

  /** Waiting time of a Poisson process with this mean (exponential distribution). */
  exponential(mean: number): number {
    return -mean * Math.log(1 - this.next());
  }

  /** An amount in [min, max), in cents. */
  amount(min: number, max: number): number {
    return Math.round(this.between(min, max) * 100) / 100;
  }
}
