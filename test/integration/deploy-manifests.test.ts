/**
 * The deployment files of infra/deploy, checked statically by pinned validators from PyPI
 * (infra/deploy/validate-requirements.txt): the Kubernetes manifests against Kubernetes' own
 * schemas (strict: an unknown field fails), docker-compose.yml against the compose-spec schema,
 * the Dockerfile by hadolint, the executor entrypoint by shellcheck. Each validator must also
 * refuse a broken copy, so a check that passes everything would fail here. And every DIAMOND_* variable these files set must be a
 * setting of shared/config.ts, so they cannot drift from the code. Nothing is built or started:
 * no Docker engine or Kubernetes cluster exists where the tests run (docs/DEPLOY.md).
 */
import test from 'ava';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { settingDocs } from '../../shared/config.ts';
import { deployValidators, runTool, type DeployValidators } from '../support/deploy-validators.ts';
import { config } from '../support/env.ts';

/** The Kubernetes version the manifests are written for (kubernetes-validate 1.37.0's newest). */
const KUBERNETES_VERSION = '1.37.0';

const deployDir = join(config.projectRoot, 'infra', 'deploy');
const k8sDir = join(deployDir, 'k8s');
const composeFile = join(deployDir, 'docker-compose.yml');
const dockerfile = join(deployDir, 'Dockerfile');
const manifests = readdirSync(k8sDir).filter((file) => file.endsWith('.yaml') && file !== 'kustomization.yaml').sort();

let tools: DeployValidators;
test.before(async () => {
  tools = await deployValidators(config);
});

const scratch = mkdtempSync(join(tmpdir(), 'diamond-deploy-'));
test.after.always(() => rmSync(scratch, { recursive: true, force: true }));

const validateManifests = (files: readonly string[]) => runTool(tools.kubernetesValidate, ['--strict', '--kubernetes-version', KUBERNETES_VERSION, ...files]);
const validateCompose = (file: string) => runTool(tools.checkJsonschema, ['--builtin-schema', 'vendor.compose-spec', file]);
const lintDockerfile = (file: string) => runTool(tools.hadolint, ['--no-color', '--failure-threshold', 'warning', file]);
const lintScript = (file: string) => runTool(tools.shellcheck, ['--color=never', '--severity=style', file]);

/** A copy of `file` with one change, in a temp folder; the change must hit (else the test proves nothing). */
function brokenCopy(file: string, from: string | RegExp, to: string): string {
  const text = readFileSync(file, 'utf8');
  const broken = text.replace(from, to);
  if (broken === text) throw new Error(`${file} has no ${String(from)} to break`);
  const copy = join(mkdtempSync(join(scratch, 'copy-')), file.split('/').pop() ?? 'copy');
  writeFileSync(copy, broken);
  return copy;
}

test('every Kubernetes manifest passes kubernetes-validate --strict', async (t) => {
  t.true(manifests.length >= 5, manifests.join(', '));
  const run = await validateManifests(manifests.map((file) => join(k8sDir, file)));
  t.is(run.code, 0, run.output);
  for (const kind of ['namespace', 'configmap', 'serviceaccount', 'role', 'rolebinding', 'persistentvolumeclaim', 'deployment', 'service']) {
    t.regex(run.output, new RegExp(`passed for resource ${kind}/`), `no ${kind} was validated`);
  }
});

test('a manifest with a misspelled field or a wrongly typed value is refused', async (t) => {
  const orchestrator = join(k8sDir, 'orchestrator.yaml');
  const misspelled = await validateManifests([brokenCopy(orchestrator, 'readOnlyRootFilesystem: true', 'readOnlyRootFilesytem: true')]);
  t.not(misspelled.code, 0, misspelled.output);
  t.regex(misspelled.output, /readOnlyRootFilesytem/);
  const mistyped = await validateManifests([brokenCopy(orchestrator, 'containerPort: 18070', 'containerPort: control')]);
  t.not(mistyped.code, 0, mistyped.output);
  t.regex(mistyped.output, /containerPort/);
});

test("the executors' pod template in the diamond-spark ConfigMap is a valid Pod", async (t) => {
  const config = readFileSync(join(k8sDir, 'config.yaml'), 'utf8');
  const block = /^ {2}executor-pod\.yaml: \|\n((?: {4}.*\n|\n)+)/m.exec(config)?.[1];
  t.truthy(block, 'config.yaml has no executor-pod.yaml');
  const template = (block ?? '').split('\n').map((line) => line.slice(4)).join('\n');
  t.regex(config, /spark\.kubernetes\.executor\.podTemplateFile +\/etc\/diamond\/spark\/executor-pod\.yaml/);
  const file = join(scratch, 'executor-pod.yaml');
  writeFileSync(file, template);
  const run = await validateManifests([file]);
  t.is(run.code, 0, run.output);
  t.regex(run.output, /passed for resource pod\//);
});

test('kustomization.yaml lists exactly the manifests of its folder', (t) => {
  const kustomization = readFileSync(join(k8sDir, 'kustomization.yaml'), 'utf8');
  const listed = [...kustomization.matchAll(/^ {2}- (\S+\.yaml)$/gm)].map((match) => match[1]).sort();
  t.deepEqual(listed, manifests);
});

test('every platform Deployment is probed on /livez and /readyz, limited, non-root with a read-only root', (t) => {
  const documents = manifests.flatMap((file) => readFileSync(join(k8sDir, file), 'utf8').split(/^---$/m));
  const deployments = documents.filter((doc) => /^kind: Deployment$/m.test(doc));
  t.deepEqual(deployments.map((doc) => /^ {2}name: (\S+)$/m.exec(doc)?.[1]).sort(), ['diamond-downstream', 'diamond-orchestrator', 'diamond-upstream']);
  for (const doc of deployments) {
    const name = /^ {2}name: (\S+)$/m.exec(doc)?.[1] ?? '?';
    for (const needed of ['path: /livez', 'path: /readyz', 'runAsNonRoot: true', 'readOnlyRootFilesystem: true', 'allowPrivilegeEscalation: false', 'limits:', 'requests:', 'secretName: diamond-secrets']) {
      t.true(doc.includes(needed), `${name} lacks ${needed}`);
    }
  }
});

test('docker-compose.yml passes the compose-spec schema, and a broken copy does not', async (t) => {
  const run = await validateCompose(composeFile);
  t.is(run.code, 0, run.output);
  const broken = await validateCompose(brokenCopy(composeFile, /interval: 5s/, 'intervl: 5s'));
  t.not(broken.code, 0, broken.output);
  t.regex(broken.output, /intervl/);
});

test('docker-compose.yml carries no password or token inline: secrets are files', (t) => {
  const compose = readFileSync(composeFile, 'utf8');
  const inline = [...compose.matchAll(/^\s*([A-Z0-9_]*(?:PASSWORD|TOKEN|SECRET)[A-Z0-9_]*):\s*(\S.*)$/gm)].filter((match) => !match[1]?.endsWith('_FILE'));
  t.deepEqual(inline.map((match) => match[0].trim()), []);
  t.regex(compose, /^ {2}redis_password:\n {4}file: /m);
  t.regex(compose, /DIAMOND_REDIS_PASSWORD_FILE: \/run\/secrets\/redis_password/);
});

test('the Dockerfile passes hadolint, and one with an untagged base image does not', async (t) => {
  const run = await lintDockerfile(dockerfile);
  t.is(run.code, 0, run.output);
  const broken = await lintDockerfile(brokenCopy(dockerfile, /^FROM node:\S+ AS os$/m, 'FROM node AS os'));
  t.not(broken.code, 0, broken.output);
  t.regex(broken.output, /DL3006/);
});

test("the executor image's entrypoint passes shellcheck, and one with an unquoted $@ does not", async (t) => {
  const script = join(deployDir, 'spark-executor.sh');
  const run = await lintScript(script);
  t.is(run.code, 0, run.output);
  const broken = await lintScript(brokenCopy(script, /^ {2}"\$@"$/m, '  $@'));
  t.not(broken.code, 0, broken.output);
  t.regex(broken.output, /SC2068/);
});

test('every DIAMOND_* variable the deployment files name is a setting of shared/config.ts', (t) => {
  const known = new Set(settingDocs().map((setting) => setting.env));
  const files = [composeFile, dockerfile, ...manifests.map((file) => join(k8sDir, file))];
  const named = new Set(files.flatMap((file) => [...readFileSync(file, 'utf8').matchAll(/\bDIAMOND_[A-Z0-9_]+\b/g)].map((match) => match[0])));
  t.true(named.size >= 20, [...named].join(', '));
  t.deepEqual([...named].filter((name) => !known.has(name)).sort(), []);
});
