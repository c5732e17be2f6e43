"""How this job reaches Kafka and the registry when they are secured: SASL/SCRAM, TLS CAs, basic auth.

The orchestrator writes them to a 0600 file (shared/job-connections.ts) and passes
`--connections-file`; `install()` reads it once, before any use case code runs, and removes it.
Nothing here is ever taken from the environment, and `__repr__` never shows a password.
Without a file every client connects as before (PLAINTEXT, no auth).

    connections.install(args.connections_file)
    Producer({"bootstrap.servers": brokers, **connections.current().producer_config()})
    spark.readStream.format("kafka").options(**connections.current().spark_kafka_options())
"""
from __future__ import annotations

import base64
import json
import os
import ssl
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Connections:
    security_protocol: str = "PLAINTEXT"
    sasl_mechanism: str | None = None
    kafka_username: str | None = None
    kafka_password: str | None = field(default=None, repr=False)
    kafka_ca_pem: str | None = field(default=None, repr=False)
    registry_username: str | None = None
    registry_password: str | None = field(default=None, repr=False)
    registry_ca_pem: str | None = field(default=None, repr=False)

    def producer_config(self) -> dict[str, str]:
        """confluent_kafka (librdkafka) settings."""
        config: dict[str, str] = {}
        if self.security_protocol != "PLAINTEXT":
            config["security.protocol"] = self.security_protocol.lower()
        if self.sasl_mechanism and self.kafka_username is not None and self.kafka_password is not None:
            config.update({"sasl.mechanism": self.sasl_mechanism, "sasl.username": self.kafka_username, "sasl.password": self.kafka_password})
        if self.kafka_ca_pem:
            config["ssl.ca.pem"] = self.kafka_ca_pem
        return config

    def spark_kafka_options(self) -> dict[str, str]:
        """Options of Spark's Kafka source and sink (`kafka.`-prefixed Java client settings).

        The CA goes inline (PEM truststore), so executors on other machines need no file; Spark
        redacts `sasl.jaas.config` in its UI and logs (KafkaRedactionUtil).
        """
        options: dict[str, str] = {}
        if self.security_protocol != "PLAINTEXT":
            options["kafka.security.protocol"] = self.security_protocol
        if self.sasl_mechanism and self.kafka_username is not None and self.kafka_password is not None:
            options["kafka.sasl.mechanism"] = self.sasl_mechanism
            options["kafka.sasl.jaas.config"] = (
                "org.apache.kafka.common.security.scram.ScramLoginModule required "
                f'username="{_jaas_quote(self.kafka_username)}" password="{_jaas_quote(self.kafka_password)}";'
            )
        if self.kafka_ca_pem:
            options["kafka.ssl.truststore.type"] = "PEM"
            options["kafka.ssl.truststore.certificates"] = self.kafka_ca_pem
        return options

    def registry_headers(self) -> dict[str, str]:
        if self.registry_username is None or self.registry_password is None:
            return {}
        token = base64.b64encode(f"{self.registry_username}:{self.registry_password}".encode()).decode()
        return {"Authorization": f"Basic {token}"}

    def registry_ssl_context(self) -> ssl.SSLContext | None:
        return ssl.create_default_context(cadata=self.registry_ca_pem) if self.registry_ca_pem else None


def _jaas_quote(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')


_current = Connections()


def load(path: str) -> Connections:
    with open(path, encoding="utf-8") as handle:
        body: dict[str, Any] = json.load(handle)
    kafka = body.get("kafka") or {}
    registry = body.get("registry") or {}
    return Connections(
        security_protocol=str(kafka.get("securityProtocol") or "PLAINTEXT"),
        sasl_mechanism=kafka.get("saslMechanism"),
        kafka_username=kafka.get("username"),
        kafka_password=kafka.get("password"),
        kafka_ca_pem=kafka.get("caPem"),
        registry_username=registry.get("username"),
        registry_password=registry.get("password"),
        registry_ca_pem=registry.get("caPem"),
    )


def install(path: str | None) -> Connections:
    """Reads the file (then removes it: use case code that runs later finds nothing) and makes it current."""
    global _current
    if path:
        _current = load(path)
        try:
            os.remove(path)
        except OSError:
            pass  # not ours to remove (a read-only folder): it stays 0600
    return _current


def current() -> Connections:
    return _current
