/**
 * The secured local profile (DIAMOND_SECURITY=1, docs/SECURITY.md): what each local service
 * adds to its own settings to require TLS and credentials, and the files that needs.
 *
 *   ensureSecurityFiles(config);                              // once: CA, server certificate, passwords
 *   lines.push(...kafkaSecurityProperties(config));           // server.properties (later keys win)
 *   formatArgs.push(...kafkaScramFormatArgs(config));         // SCRAM user at KRaft format time
 *   yaml += cassandraSecurityYaml(config);                    // PasswordAuthenticator + client TLS
 *
 * Every function returns nothing (empty) when the profile is off, so the services' own files
 * append these unconditionally. Certificates come from Debian's openssl (an RSA CA and one
 * server certificate for 127.0.0.1/localhost, valid ten years); passwords from the CSPRNG.
 * All of it lives in DIAMOND_HOME/security (0700, files 0600).
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { LOCAL_SECURE_USER, type DiamondConfig } from '../../shared/config.ts';
import { createCassandra } from '../../shared/cassandra.ts';
import { ServiceStartError } from '../../shared/errors.ts';
import { readSecretFile } from '../../shared/secret-file.ts';

export interface SecurityFiles {
  readonly dir: string;
  readonly caCert: string;
  /** Server key + certificate in one PEM (Kafka's PEM keystore). */
  readonly serverPem: string;
  readonly serverCert: string;
  readonly serverKey: string;
  /** The same key and certificate as PKCS#12 (Cassandra's keystore), with its store password. */
  readonly serverP12: string;
  readonly storePasswordFile: string;
}

export function securityFiles(config: Pick<DiamondConfig, 'security'>): SecurityFiles {
  const dir = config.security.dir;
  return {
    dir,
    caCert: join(dir, 'ca.pem'),
    serverPem: join(dir, 'server-keystore.pem'),
    serverCert: join(dir, 'server.crt'),
    serverKey: join(dir, 'server.key'),
    serverP12: join(dir, 'server.p12'),
    storePasswordFile: join(dir, 'store.password'),
  };
}

/** A password file at `file`, generated once (an existing one is kept: services were provisioned with it). */
function ensurePassword(file: string): string {
  if (!existsSync(file)) {
    mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
    writeFileSync(file, randomBytes(18).toString('base64url') + '\n', { mode: 0o600, flag: 'wx' });
  }
  return readSecretFile(file, file);
}

function openssl(args: readonly string[], dir: string): void {
  try {
    execFileSync('openssl', [...args], { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
  } catch (cause) {
    throw new ServiceStartError('security', `openssl ${args[0]} failed`, { hint: 'install openssl (apt-get install openssl) or remove DIAMOND_HOME/security and try again', cause });
  }
}

/**
 * The CA, the server certificate and every generated password, made once (a marker is the
 * PKCS#12 file, written last). Returns their paths. Nothing when the profile is off.
 */
export function ensureSecurityFiles(config: DiamondConfig): SecurityFiles | null {
  if (!config.security.localProfile) return null;
  const files = securityFiles(config);
  mkdirSync(files.dir, { recursive: true, mode: 0o700 });
  chmodSync(files.dir, 0o700);
  for (const file of localPasswordFiles(config)) ensurePassword(file);
  if (existsSync(files.serverP12)) return files;
  ensurePassword(files.storePasswordFile);
  const caKey = join(files.dir, 'ca.key');
  openssl(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', caKey, '-out', files.caCert, '-days', '3650', '-subj', '/CN=diamond local CA'], files.dir);
  openssl(['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', files.serverKey, '-out', join(files.dir, 'server.csr'), '-subj', '/CN=localhost'], files.dir);
  writeFileSync(join(files.dir, 'server.ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n');
  openssl(['x509', '-req', '-in', join(files.dir, 'server.csr'), '-CA', files.caCert, '-CAkey', caKey, '-CAcreateserial', '-out', files.serverCert, '-days', '3650', '-extfile', join(files.dir, 'server.ext')], files.dir);
  // Kafka's PEM keystore wants an unencrypted PKCS#8 key followed by the certificate.
  openssl(['pkcs8', '-topk8', '-nocrypt', '-in', files.serverKey, '-out', join(files.dir, 'server.pk8')], files.dir);
  writeFileSync(files.serverPem, readFileSync(join(files.dir, 'server.pk8'), 'utf8') + readFileSync(files.serverCert, 'utf8'), { mode: 0o600 });
  openssl(['pkcs12', '-export', '-in', files.serverCert, '-inkey', files.serverKey, '-out', files.serverP12, '-name', 'server', '-passout', `file:${files.storePasswordFile}`], files.dir);
  for (const file of [caKey, files.serverKey, files.serverP12, join(files.dir, 'server.pk8')]) chmodSync(file, 0o600);
  return files;
}

/** The password files the clients read (the config's), which the profile generates. */
function localPasswordFiles(config: DiamondConfig): string[] {
  return [config.kafka.security.sasl?.passwordFile, config.cassandra.auth?.passwordFile, config.registry.auth?.passwordFile].filter((file): file is string => file !== undefined);
}

function password(file: string | undefined, setting: string): string {
  if (file === undefined) throw new ServiceStartError('security', `DIAMOND_SECURITY=1 but ${setting} is unset`, { hint: 'leave the client settings at their DIAMOND_SECURITY defaults, or set them all' });
  return readSecretFile(setting, file);
}

const SCRAM = 'SCRAM-SHA-512';

/**
 * server.properties lines appended after the open ones (Java properties: the later key wins):
 * the client listener becomes SASL_SSL with SCRAM, brokers talk to each other the same way.
 * The controller listener stays PLAINTEXT on loopback: it serves no client requests.
 * The file holds the broker's own SCRAM password: the caller writes it 0600.
 */
export function kafkaSecurityProperties(config: DiamondConfig, port: number): string[] {
  if (!config.security.localProfile) return [];
  const files = securityFiles(config);
  const sasl = config.kafka.security.sasl;
  const secret = password(sasl?.passwordFile, 'DIAMOND_KAFKA_PASSWORD_FILE');
  const jaas = `org.apache.kafka.common.security.scram.ScramLoginModule required username="${sasl?.username ?? LOCAL_SECURE_USER}" password="${secret}";`;
  return [
    `listeners=SASL_SSL://127.0.0.1:${port},CONTROLLER://127.0.0.1:${config.kafka.controllerPort}`,
    `advertised.listeners=SASL_SSL://127.0.0.1:${port}`,
    'inter.broker.listener.name=SASL_SSL',
    'listener.security.protocol.map=SASL_SSL:SASL_SSL,CONTROLLER:PLAINTEXT',
    `sasl.enabled.mechanisms=${SCRAM}`,
    `sasl.mechanism.inter.broker.protocol=${SCRAM}`,
    `listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=${jaas}`,
    'ssl.keystore.type=PEM',
    `ssl.keystore.location=${files.serverPem}`,
    'ssl.truststore.type=PEM',
    `ssl.truststore.location=${files.caCert}`,
    'ssl.client.auth=none',
    '',
  ];
}

/** `kafka-storage format` arguments that create the SCRAM user in the metadata log (no broker needed). */
export function kafkaScramFormatArgs(config: DiamondConfig): string[] {
  if (!config.security.localProfile) return [];
  const sasl = config.kafka.security.sasl;
  return ['--add-scram', `${SCRAM}=[name=${sasl?.username ?? LOCAL_SECURE_USER},password=${password(sasl?.passwordFile, 'DIAMOND_KAFKA_PASSWORD_FILE')}]`];
}

/** The authenticator line of cassandra.yaml. */
export function cassandraAuthenticator(config: Pick<DiamondConfig, 'security'>): string {
  return config.security.localProfile ? 'PasswordAuthenticator' : 'AllowAllAuthenticator';
}

/** cassandra.yaml keys appended to the open ones: client-to-node TLS, required (the file holds the store password: written 0600). */
export function cassandraSecurityYaml(config: DiamondConfig): string {
  if (!config.security.localProfile) return '';
  const files = securityFiles(config);
  return `client_encryption_options:
  enabled: true
  optional: false
  keystore: ${files.serverP12}
  keystore_password: "${readSecretFile('store.password', files.storePasswordFile)}"
  store_type: PKCS12
  require_client_auth: false
`;
}

/**
 * After the first start: the role the clients use (a superuser: the platform creates its
 * keyspaces), created with the default cassandra/cassandra superuser, whose password is then
 * replaced by a random one nobody keeps, so the well-known login no longer works.
 */
export async function provisionCassandraRole(config: DiamondConfig): Promise<string | null> {
  if (!config.security.localProfile || config.cassandra.auth === null) return null;
  const own = createCassandra(config);
  try {
    await own.connect();
    return null; // provisioned already
  } catch {
    // not yet: below
  } finally {
    await own.shutdown().catch(() => undefined);
  }
  const { auth } = config.cassandra;
  const admin = createCassandra(config, undefined, { username: 'cassandra', password: 'cassandra' });
  try {
    await admin.connect();
    const secret = readSecretFile('DIAMOND_CASSANDRA_PASSWORD_FILE', auth.passwordFile);
    // CQL takes no bind marker for a role's password: a string literal, quotes doubled.
    const literal = (value: string): string => `'${value.replaceAll("'", "''")}'`;
    await admin.execute(`CREATE ROLE IF NOT EXISTS "${auth.username}" WITH PASSWORD = ${literal(secret)} AND LOGIN = true AND SUPERUSER = true`);
    await admin.execute(`ALTER ROLE cassandra WITH PASSWORD = ${literal(randomBytes(24).toString('base64url'))}`);
    return `created the Cassandra role ${auth.username} and retired the default cassandra login`;
  } finally {
    await admin.shutdown().catch(() => undefined);
  }
}

/** redis.conf lines after `requirepass`: the ACL user of the clients, and the default user switched off. */
export function redisAclLines(config: DiamondConfig, secret: string): string[] {
  if (!config.security.localProfile) return [];
  const user = config.redis.username ?? LOCAL_SECURE_USER;
  return [`user ${user} on >${secret} ~* &* +@all`, 'user default off'];
}

/**
 * Quarkus settings of the registry: https only (the CA's server certificate), HTTP basic auth
 * against Quarkus' embedded users (Apicurio 3.3 ships quarkus-elytron-security-properties-file
 * and reads `quarkus.http.auth.basic`; no OIDC server needed), and its kafkasql journal
 * reaching the secured broker through `apicurio.kafka.common.*`. Holds passwords: the caller
 * writes them to a 0600 config/application.properties in the registry's working directory,
 * never its command line.
 */
export function registrySecurityProperties(config: DiamondConfig, port: string): Record<string, string> {
  if (!config.security.localProfile) return {};
  const files = securityFiles(config);
  const auth = config.registry.auth;
  const sasl = config.kafka.security.sasl;
  const kafkaSecret = password(sasl?.passwordFile, 'DIAMOND_KAFKA_PASSWORD_FILE');
  const user = auth?.username ?? LOCAL_SECURE_USER;
  return {
    'quarkus.http.ssl-port': port,
    'quarkus.http.insecure-requests': 'disabled',
    'quarkus.http.ssl.certificate.files': files.serverCert,
    'quarkus.http.ssl.certificate.key-files': files.serverKey,
    'quarkus.oidc.tenant-enabled': 'false',
    'quarkus.http.auth.basic': 'true',
    'quarkus.http.auth.permission.everything.paths': '/apis/*',
    'quarkus.http.auth.permission.everything.policy': 'authenticated',
    'quarkus.security.users.embedded.enabled': 'true',
    'quarkus.security.users.embedded.plain-text': 'true',
    [`quarkus.security.users.embedded.users.${user}`]: password(auth?.passwordFile, 'DIAMOND_REGISTRY_PASSWORD_FILE'),
    [`quarkus.security.users.embedded.roles.${user}`]: 'sr-admin',
    'apicurio.kafka.common.security.protocol': 'SASL_SSL',
    'apicurio.kafka.common.sasl.mechanism': SCRAM,
    'apicurio.kafka.common.sasl.jaas.config': `org.apache.kafka.common.security.scram.ScramLoginModule required username="${sasl?.username ?? LOCAL_SECURE_USER}" password="${kafkaSecret}";`,
    'apicurio.kafka.common.ssl.truststore.type': 'PEM',
    'apicurio.kafka.common.ssl.truststore.location': files.caCert,
  };
}

/** Writes the registry's secured settings where Quarkus reads them (`<cwd>/config/application.properties`, 0600). */
export function writeRegistrySecurity(config: DiamondConfig, cwd: string, port: string): void {
  const props = registrySecurityProperties(config, port);
  if (Object.keys(props).length === 0) return;
  mkdirSync(join(cwd, 'config'), { recursive: true, mode: 0o700 });
  const escape = (value: string): string => value.replaceAll('\\', '\\\\');
  writeFileSync(join(cwd, 'config', 'application.properties'), Object.entries(props).map(([key, value]) => `${key}=${escape(value)}`).join('\n') + '\n', { mode: 0o600 });
}
