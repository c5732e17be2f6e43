import test from 'ava';
import { loadConfig } from '../../shared/config.ts';
import { maskUrlPassword, redactConfig, shownValue } from './config-command.ts';

test('passwords in URLs and tokens are masked; everything else is shown as is', (t) => {
  t.is(maskUrlPassword('redis://diamond:s3cret@127.0.0.1:16379'), 'redis://diamond:***@127.0.0.1:16379');
  t.is(maskUrlPassword('redis://:s3cret@127.0.0.1:16379/0'), 'redis://:***@127.0.0.1:16379/0');
  t.is(maskUrlPassword('http://127.0.0.1:18081/apis/ccompat/v7'), 'http://127.0.0.1:18081/apis/ccompat/v7');
  t.is(shownValue('DIAMOND_TOKEN', 'dmd_abc'), '*** (set)');
  t.is(shownValue('DIAMOND_TOKEN', ''), '');
  const config = loadConfig({ DIAMOND_REDIS_URL: 'redis://u:hunter2@127.0.0.1:16379', DIAMOND_TOKEN: 'dmd_secret_token' });
  const shown = JSON.stringify(redactConfig(config));
  t.false(shown.includes('hunter2'));
  t.false(shown.includes('dmd_secret_token'));
  t.is(config.redis.url, 'redis://127.0.0.1:16379', 'the credentials are kept apart from the URL');
  t.is(config.redis.password, 'hunter2');
  t.true(shown.includes('"password":"***"'), shown);
  t.true(shown.includes('"username":"u"'));
});

test('alert webhooks are shown by their origin only (their path or query is often the secret)', (t) => {
  const hooks = 'https://hooks.slack.com/services/T0/B0/XYZsecret, http://u:pw@127.0.0.1:9000/alerts?token=abc, https://alerts.example.com';
  t.is(shownValue('DIAMOND_ALERT_WEBHOOKS', hooks), 'https://hooks.slack.com/***,http://127.0.0.1:9000/***,https://alerts.example.com');
  const shown = JSON.stringify(redactConfig(loadConfig({ DIAMOND_ALERT_WEBHOOKS: hooks })));
  t.false(/XYZsecret|token=abc|pw@/.test(shown), shown);
  t.true(shown.includes('"webhooks":["https://hooks.slack.com/***","http://127.0.0.1:9000/***","https://alerts.example.com"]'), shown);
});
