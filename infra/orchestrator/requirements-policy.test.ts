import test from 'ava';
import { assertPlainRequirements, PipOptionRefusedError, refusedPipOption } from './requirements-policy.ts';

test('plain requirements pass', (t) => {
  for (const line of ['humanize==4.9.0', 'requests[socks]>=2,<3', 'tomli; python_version < "3.11"', 'my_pkg~=1.0']) t.is(refusedPipOption(line), null, line);
});

test('index overrides, included files, editable, VCS, URL and local installs are refused, naming the option', (t) => {
  const cases: Array<[string, string]> = [
    ['--index-url https://evil.example/simple', '--index-url'], ['--index-url=https://evil.example/simple', '--index-url'],
    ['-i https://evil.example/simple', '-i'], ['-ihttps://evil.example/simple', '-i'],
    ['--extra-index-url https://evil.example/simple', '--extra-index-url'], ['-f ./wheels', '-f'], ['--find-links /tmp', '--find-links'],
    ['--trusted-host evil.example', '--trusted-host'], ['-r other.txt', '-r'], ['-c constraints.txt', '-c'],
    ['-e git+https://github.com/x/y', '-e'], ['--editable .', '--editable'], ['--pre', '--pre'],
    ['git+https://github.com/x/y.git@main#egg=y', 'git+'], ['https://evil.example/x.whl', 'https://'], ['file:///tmp/x.whl', 'file:'],
    ['./local_pkg', 'a local path'], ['/abs/pkg.whl', 'a local path'], ['y @ https://evil.example/y.whl', '@ (direct URL reference)'],
  ];
  for (const [line, option] of cases) t.is(refusedPipOption(line), option, line);
});

test('the refusal names the line and the option; the setting allows them', (t) => {
  const error = t.throws(() => assertPlainRequirements('evil', ['humanize==4.9.0', 'git+https://github.com/x/y.git'], false), { instanceOf: PipOptionRefusedError });
  t.is(error.code, 'DIAMOND_USECASE_PIP_OPTION_REFUSED');
  t.regex(error.message, /line 'git\+https:\/\/github\.com\/x\/y\.git' uses git\+/);
  t.notThrows(() => assertPlainRequirements('evil', ['--index-url https://x'], true));
});
