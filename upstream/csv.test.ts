import test from 'ava';
import { readCsvHeader, splitCsvRecord } from './csv.ts';

test('plain and quoted fields, with delimiters and doubled quotes inside quotes', (t) => {
  t.deepEqual(splitCsvRecord('a,b,,d'), ['a', 'b', '', 'd']);
  t.deepEqual(splitCsvRecord('"1,234.56","say ""hi""",x'), ['1,234.56', 'say "hi"', 'x']);
  t.deepEqual(splitCsvRecord('a;"b;c"', ';'), ['a', 'b;c']);
});

test('a quoted field left open asks for the next line; joined, it parses', (t) => {
  t.is(splitCsvRecord('a,"multi'), null);
  t.deepEqual(splitCsvRecord('a,"multi\nline",c'), ['a', 'multi\nline', 'c']);
});

test('header names are trimmed; empty and repeated names are problems', (t) => {
  t.deepEqual(readCsvHeader([' cust_id', 'ts ']), { names: ['cust_id', 'ts'], problems: [] });
  t.deepEqual(readCsvHeader(['a', '', 'a']).problems, ['column 2 has no name', 'column "a" appears twice']);
});
