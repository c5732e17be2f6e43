/** Cassandra client (cassandra-driver) built from the config, with a readiness check. */
import cassandra from 'cassandra-driver';
import type { DiamondConfig } from './config.ts';
import { ServiceUnavailableError } from './errors.ts';
import { readCaFile, readSecretFile } from './secret-file.ts';

export type CassandraClient = cassandra.Client;

/** `login` replaces the configured credentials (the secured local profile's first login as the default superuser). */
export function createCassandra(config: Pick<DiamondConfig, 'cassandra'>, keyspace?: string, login?: { readonly username: string; readonly password: string }): CassandraClient {
  return new cassandra.Client({
    contactPoints: [...config.cassandra.contactPoints],
    localDataCenter: config.cassandra.localDataCenter,
    ...(keyspace ? { keyspace } : {}),
    socketOptions: { connectTimeout: 3000, readTimeout: 15000 },
    // Writes are LOCAL_QUORUM, so reads are too: a customer reads what was written, with a node down.
    queryOptions: { consistency: cassandra.types.consistencies.localQuorum },
    // Protocol v4 is what Cassandra 5 and driver 4.x agree on without negotiation noise.
    protocolOptions: { maxVersion: cassandra.types.protocolVersion.v4 },
    ...cassandraSecurityOptions(config),
    ...(login ? { authProvider: new cassandra.auth.PlainTextAuthProvider(login.username, login.password) } : {}),
  });
}

/** PasswordAuthenticator credentials and TLS (verifying the node's certificate) from the config. */
function cassandraSecurityOptions(config: Pick<DiamondConfig, 'cassandra'>): Pick<cassandra.ClientOptions, 'authProvider' | 'sslOptions'> {
  const { auth, tls } = config.cassandra;
  const ca = tls ? readCaFile('DIAMOND_CASSANDRA_CA_FILE', tls.caFile) : undefined;
  return {
    ...(auth ? { authProvider: new cassandra.auth.PlainTextAuthProvider(auth.username, readSecretFile('DIAMOND_CASSANDRA_PASSWORD_FILE', auth.passwordFile)) } : {}),
    ...(tls ? { sslOptions: { rejectUnauthorized: true, ...(ca !== undefined ? { ca: [ca] } : {}) } } : {}),
  };
}

/** Resolves with the server version when `system.local` answers. */
export async function checkCassandra(config: Pick<DiamondConfig, 'cassandra'>): Promise<{ releaseVersion: string }> {
  const client = createCassandra(config);
  try {
    await client.connect();
    const result = await client.execute('SELECT release_version FROM system.local');
    return { releaseVersion: String(result.first()?.get('release_version') ?? 'unknown') };
  } catch (cause) {
    throw new ServiceUnavailableError('Cassandra', config.cassandra.contactPoints.join(','), { cause });
  } finally {
    await client.shutdown().catch(() => undefined);
  }
}
