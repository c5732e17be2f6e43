import test from 'ava';
import { LIFECYCLE_EVENTS as CONTRACT_EVENTS } from '../../shared/messages.ts';
import { LifecycleEvents } from './events.ts';

test('the named constants are exactly the event names of the lifecycle contract', (t) => {
  t.deepEqual([...Object.values(LifecycleEvents)].sort(), [...CONTRACT_EVENTS].sort());
});
