"""The job's connection settings: read from the orchestrator's 0600 file, removed, never shown."""
import json

from diamond_sdk._runtime import connections


def test_a_secured_file_becomes_client_settings_and_is_removed(tmp_path):
    path = tmp_path / "connections.json"
    path.write_text(json.dumps({
        "kafka": {"securityProtocol": "SASL_SSL", "saslMechanism": "SCRAM-SHA-512", "username": "diamond", "password": 'se"cret', "caPem": "PEM"},
        "registry": {"username": "reg", "password": "regpw", "caPem": None},
    }))
    secured = connections.install(str(path))
    try:
        assert not path.exists()
        assert secured.producer_config() == {"security.protocol": "sasl_ssl", "sasl.mechanism": "SCRAM-SHA-512", "sasl.username": "diamond", "sasl.password": 'se"cret', "ssl.ca.pem": "PEM"}
        options = secured.spark_kafka_options()
        assert options["kafka.security.protocol"] == "SASL_SSL"
        assert options["kafka.sasl.jaas.config"] == 'org.apache.kafka.common.security.scram.ScramLoginModule required username="diamond" password="se\\"cret";'
        assert options["kafka.ssl.truststore.type"] == "PEM"
        assert secured.registry_headers() == {"Authorization": "Basic cmVnOnJlZ3B3"}
        assert "cret" not in repr(secured) and "regpw" not in repr(secured)
    finally:
        connections._current = connections.Connections()


def test_without_a_file_clients_connect_as_before():
    assert connections.install(None).producer_config() == {}
    assert connections.current().spark_kafka_options() == {}
    assert connections.current().registry_headers() == {}
