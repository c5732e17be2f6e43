import test from 'ava';
import { admit, spareReservation } from './admission.ts';
import type { Deployment } from './state.ts';

const deployment = (usecase: string, cores: number, memoryMb: number): Deployment => ({
  usecase, variant: 'A', folder: `/uc/${usecase}`, version: 'v', stateful: false, generation: 1, deployedAt: '', settings: {}, resources: { cores, memoryMb },
});
const budget = { cores: 2, memoryMb: 4096, overcommit: 1.5 };

test('admits while the declared total fits budget × over-commit', (t) => {
  t.deepEqual(admit({ usecase: 'c', variant: 'A', resources: { cores: 1, memoryMb: 1024 } }, [deployment('a', 1, 1024), deployment('b', 1, 1024)], budget), { admitted: true });
});

test('refuses naming what is missing and who holds the budget', (t) => {
  const decision = admit({ usecase: 'c', variant: 'A', resources: { cores: 1.5, memoryMb: 1024 } }, [deployment('a', 1, 1024), deployment('b', 1, 1024)], budget);
  t.false(decision.admitted);
  if (decision.admitted) return;
  t.regex(decision.reason, /missing 0\.5 core\(s\)/);
  t.regex(decision.reason, /a\/A, b\/A/);
  t.notRegex(decision.reason, /memory/);
});

test('memory is checked too; deployments without declared resources count 1 core and 1 GiB', (t) => {
  const decision = admit({ usecase: 'c', variant: 'A', resources: { cores: 0.5, memoryMb: 6144 } }, [{ ...deployment('a', 1, 1), resources: undefined }], budget);
  t.false(decision.admitted);
  if (!decision.admitted) t.regex(decision.reason, /missing 1024 MiB of memory/);
});

test('the driver pool\'s idle spares count: one driver\'s memory each, no cores', (t) => {
  t.deepEqual(spareReservation(2, 1024), { cores: 0, memoryMb: 2048 });
  const spares = spareReservation(5, 1024);
  t.deepEqual(admit({ usecase: 'c', variant: 'A', resources: { cores: 1, memoryMb: 1024 } }, [deployment('a', 1, 1024)], budget, { cores: 0, memoryMb: 0 }), { admitted: true });
  const decision = admit({ usecase: 'c', variant: 'A', resources: { cores: 1, memoryMb: 1024 } }, [deployment('a', 1, 1024)], budget, spares);
  t.false(decision.admitted);
  if (!decision.admitted) t.regex(decision.reason, /missing 1024 MiB of memory.*the driver pool \(5120 MiB\)/);
});
