"""The runner tells an outage (Kafka or the registry unreachable) from the use case's failures by exception type."""
from __future__ import annotations

from typing import Any

from diamond_sdk._runtime import runner
from diamond_sdk._runtime.registry import RegistryError


class FakeThrowable:
    """What Py4J hands over for a Java exception: only its class name and cause are used."""

    def __init__(self, name: str, cause: Any = None) -> None:
        self.name, self.cause = name, cause

    def getClass(self) -> "FakeThrowable":
        return self

    def getName(self) -> str:
        return self.name

    def getCause(self) -> Any:
        return self.cause


def test_an_unreachable_registry_is_an_outage_even_when_wrapped() -> None:
    try:
        try:
            raise RegistryError("schema registry not reachable", None)
        except RegistryError as error:
            raise RuntimeError("could not start") from error
    except RuntimeError as wrapped:
        outage = runner.outage_of(wrapped)
    assert outage is not None and outage.service == "schema registry"
    assert runner.outage_of(RegistryError("answered 503", 503)) is not None


def test_a_registry_refusal_or_any_other_error_is_not() -> None:
    assert runner.outage_of(RegistryError("answered 409: incompatible", 409)) is None
    assert runner.outage_of(ValueError("Kafka TimeoutException in the message text only")) is None


def test_a_kafka_exception_class_anywhere_in_the_java_cause_chain_is_an_outage() -> None:
    java = FakeThrowable("org.apache.spark.sql.streaming.StreamingQueryException", FakeThrowable("org.apache.kafka.common.errors.TimeoutException"))
    outage = runner.outage_of(RuntimeError("query failed"), java)
    assert outage is not None and outage.service == "Kafka"
    assert runner.outage_of(RuntimeError("query failed"), FakeThrowable("org.apache.spark.api.python.PythonException")) is None


def test_the_outage_exit_code_is_the_orchestrators() -> None:
    source = (runner.Path(runner.__file__).parents[4] / "infra" / "orchestrator" / "outage.ts").read_text()
    assert f"EXIT_OUTAGE = {runner.EXIT_OUTAGE};" in source
