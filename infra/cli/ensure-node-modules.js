// Runs before `npm test` and `npm run demo`, so a fresh clone needs only those two commands:
// checks Node's version, installs the Debian packages that npm cannot bring (as root, or
// says the one command to run), and installs the npm dependencies when node_modules is
// missing or older than package-lock.json.
// Plain JavaScript with no dependencies, because it runs before they exist.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const fail = (line) => {
  process.stderr.write(`${line}\n`);
  process.exit(1);
};

// package.json "engines": >=20.8 <21 || >=22 (tsx's --import and the test runner need it).
const [major, minor] = process.versions.node.split('.').map(Number);
if (!((major === 20 && minor >= 8) || major >= 22)) {
  const wanted = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).engines.node;
  fail(`Node ${process.versions.node} is too old: Diamond needs ${wanted} (e.g. Node 22 LTS from nodejs.org or NodeSource; Debian 12's nodejs is 18)`);
}

// JDK 17, Maven, Redis, python3-venv, Chromium: the script installs only what is missing.
const setup = join(root, 'infra', 'setup', 'system-packages.sh');
const system = spawnSync('bash', [setup], { cwd: root, stdio: ['ignore', 'pipe', 'inherit'], encoding: 'utf8' });
if (system.status !== 0) {
  fail(`system packages are missing and could not be installed: run \`sudo bash ${join('infra', 'setup', 'system-packages.sh')}\` once, then this command again`);
}
if (!system.stdout.includes('all present')) process.stderr.write(system.stdout);

const lock = join(root, 'package-lock.json');
const installed = join(root, 'node_modules', '.package-lock.json');
if (!existsSync(installed) || (existsSync(lock) && statSync(lock).mtimeMs > statSync(installed).mtimeMs)) {
  process.stderr.write('installing npm dependencies…\n');
  execFileSync('npm', ['install', '--no-audit', '--no-fund'], { cwd: root, stdio: 'inherit' });
}
