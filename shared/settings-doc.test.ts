import { readFileSync } from 'node:fs';
import test from 'ava';
import { settingDocs } from './config.ts';
import { README, renderSettingsTable, withSettingsTable } from './settings-doc.ts';

test('README.md documents every setting, from the config table (regenerate: node --import tsx shared/settings-doc.ts)', (t) => {
  const readme = readFileSync(README, 'utf8');
  t.is(withSettingsTable(readme), readme, 'the settings table in README.md is out of date');
  for (const { env } of settingDocs({})) t.true(renderSettingsTable().includes(`\`${env}\``), env);
});
