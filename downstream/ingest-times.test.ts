import test from 'ava';
import { IngestTimes } from './ingest-times.ts';

test('the earliest known ingest time of a row\'s records; unknown ids are skipped, none known is null', (t) => {
  const times = new IngestTimes();
  times.note('r1', 2000);
  times.note('r2', 1000);
  t.is(times.earliest(['r1', 'r2', 'unknown']), 1000);
  t.is(times.earliest(['r1']), 2000);
  t.is(times.earliest(['unknown']), null);
  t.is(times.earliest([]), null);
});

test('bounded: past its capacity the least recently noted id is forgotten first', (t) => {
  const times = new IngestTimes(2);
  times.note('a', 1);
  times.note('b', 2);
  times.note('a', 3); // re-read: now the most recent
  times.note('c', 4);
  t.is(times.earliest(['b']), null, 'b was the oldest');
  t.is(times.earliest(['a']), 3);
  t.is(times.earliest(['c']), 4);
});
