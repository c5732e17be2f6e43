"""The checks `diamond deploy` runs before a use case starts (diamond_sdk._runtime.validate): the
SDK's Feedback contract against the registry's, and a variant's output on its sample."""
import copy
import json

import pytest

from diamond_sdk import OutputContractError
from diamond_sdk._runtime import contracts, validate
from diamond_sdk._runtime.validate import check_feedback_items, contract_problems, resolves

SAMPLE = {"record_id": "s1", "customer_id": "acme", "source": "t", "event_time": "2026-11-01T10:00:00Z", "type": "purchase",
          "amount": 5000.0, "currency": "EUR", "attributes": {}, "ingested_at": "2026-11-01T10:00:01Z"}


def sdk_schema():
    return copy.deepcopy(contracts.schema_json("Feedback"))


def field(schema, name):
    return next(f for f in schema["fields"] if f["name"] == name)


# ── the SDK's contract against the registry's ────────────────────────────────

def test_the_sdk_contract_fits_itself_and_a_version_with_a_new_defaulted_field():
    assert contract_problems(sdk_schema(), sdk_schema()) == []
    newer = sdk_schema()
    newer["fields"].append({"name": "region", "type": ["null", "string"], "default": None})
    assert contract_problems(sdk_schema(), newer) == []


def test_a_registered_field_without_default_that_the_sdk_does_not_write_is_named():
    newer = sdk_schema()
    newer["fields"].append({"name": "region", "type": "string"})
    assert contract_problems(sdk_schema(), newer) == [("region", "is required by the registry (string, no default) but the SDK does not write it")]


def test_a_field_the_sdk_writes_with_another_type_or_missing_in_the_registry_is_named():
    other = sdk_schema()
    field(other, "score")["type"] = ["null", "string"]
    other["fields"] = [f for f in other["fields"] if f["name"] != "details"]
    assert contract_problems(sdk_schema(), other) == [
        ("score", "is [null, double] in the SDK but [null, string] in the registry"),
        ("details", "is written by the SDK but the registered schema has no such field"),
    ]


def test_a_different_timestamp_precision_is_not_compatible():
    other = sdk_schema()
    field(other, "event_time")["type"] = {"type": "long", "logicalType": "timestamp-micros"}
    [(name, problem)] = contract_problems(sdk_schema(), other)
    assert name == "event_time" and "timestamp-millis" in problem and "timestamp-micros" in problem


@pytest.mark.parametrize("writer, reader, ok", [
    ("int", "long", True), ("long", "int", False), ("float", "double", True),
    ("string", ["null", "string"], True), (["null", "string"], "string", False),
    ({"type": "map", "values": "string"}, {"type": "map", "values": "string"}, True),
    ({"type": "array", "items": "string"}, {"type": "array", "items": "long"}, False),
    ({"type": {"type": "map", "values": "int"}}, {"type": "map", "values": "long"}, True),
])
def test_avro_resolution(writer, reader, ok):
    assert resolves(writer, reader) is ok


class FakeRegistry:
    schemas: dict = {}

    def __init__(self, url, timeout=10.0):
        pass

    def latest(self, subject):
        schema = self.schemas.get(subject)
        return None if schema is None else {"id": 7, "version": 3, "schema": schema}


def test_the_registry_check_names_the_subject_version_and_field(monkeypatch, tmp_path):
    from diamond_sdk._runtime import registry

    other = sdk_schema()
    field(other, "message")["type"] = "long"
    monkeypatch.setattr(registry, "SchemaRegistry", FakeRegistry)
    monkeypatch.setattr(FakeRegistry, "schemas", {"fb-value": other, "ok-value": sdk_schema()})
    folder = per_record_case(tmp_path, 'return [{"kind": "k", "severity": "info", "message": "m"}]')
    refused = validate.validate(str(folder), "A", "http://registry", "fb-value")
    assert refused["ok"] is False and refused["problem"] == "feedback_schema" and refused["column"] == "message"
    assert "fb-value version 3" in refused["error"] and "'message' is string in the SDK but long in the registry" in refused["error"]
    assert validate.validate(str(folder), "A", "http://registry", "ok-value")["registry"] == {"subject": "ok-value", "version": 3}
    assert validate.validate(str(folder), "A", "http://registry", "nothing-yet")["registry"] == {"subject": "nothing-yet", "version": None}


# ── a per-record variant's output ─────────────────────────────────────────────

def test_feedback_items_that_fit_pass_and_null_required_values_are_counted():
    items = [{"kind": "k", "severity": "WARNING", "message": "m", "score": 1, "details": {"a": 1}, "record_ids": ["r"], "key": "x",
              "customer_id": "c", "event_time": "2026-11-01T10:00:00Z"},
             {"kind": None, "severity": "info", "message": "m"}]
    assert check_feedback_items("uc", items) == 1
    assert check_feedback_items("uc", None) == 0
    assert check_feedback_items("uc", {"kind": "k", "severity": "info", "message": "m"}) == 0


@pytest.mark.parametrize("item, column, problem", [
    ({"severity": "info", "message": "m"}, "kind", "is missing; return it as string"),
    ({"kind": "k", "severity": "info", "message": 42}, "message", "is int; expected string"),
    ({"kind": "k", "severity": "high", "message": "m"}, "severity", "is 'high'; expected one of info, warning, critical"),
    ({"kind": "k", "severity": "info", "message": "m", "sevrity": "x"}, "sevrity", "is not a Feedback column"),
    ({"kind": "k", "severity": "info", "message": "m", "score": "high"}, "score", "is str; expected number"),
    ({"kind": "k", "severity": "info", "message": "m", "event_time": "yesterday"}, "event_time", "is 'yesterday'"),
])
def test_a_misfit_feedback_item_names_the_column(item, column, problem):
    with pytest.raises(OutputContractError) as caught:
        check_feedback_items("uc", [item])
    assert caught.value.column == column and problem in caught.value.problem
    assert str(caught.value).startswith(f"use case 'uc' output column '{column}'")


def per_record_case(tmp_path, body, sample=(SAMPLE,)):
    folder = tmp_path / "my_case"
    folder.mkdir(exist_ok=True)
    (folder / "usecase.yaml").write_text("name: my_case\ndescription: d\nowner: o\nvariants: {A: job.py}\n")
    (folder / "job.py").write_text(f"import datetime\n\ndef feedback(record):\n    {body}\n")
    (folder / "sample.jsonl").write_text("".join(json.dumps(r) + "\n" for r in sample))
    return folder


def test_a_per_record_variant_runs_on_its_sample_in_plain_python(tmp_path):
    folder = per_record_case(tmp_path, 'assert isinstance(record["event_time"], datetime.datetime) and record["attributes"] == {}\n'
                                       '    return [{"kind": "k", "severity": "info", "message": record["record_id"]}]')
    result = validate.validate(str(folder), "A", None, "unused")
    assert result["ok"] and result["kind"] == "feedback"
    assert result["sample"] == {"records": 1, "rows": 1, "rows_with_nulls": 0, "rejected_records": 0, "first_error": None}


def test_a_per_record_variant_whose_output_misfits_is_refused_naming_the_column(tmp_path):
    folder = per_record_case(tmp_path, 'return [{"kind": "k", "level": "info", "message": "m"}]')
    result = validate.validate(str(folder), "A", None, "unused")
    assert result["ok"] is False and result["problem"] == "output" and result["column"] == "level"
    assert "use case 'my_case' output column 'level' is not a Feedback column" in result["error"] and "sample.jsonl" in result["error"]


def test_records_that_raise_are_counted_like_the_job_rejects_them(tmp_path):
    folder = per_record_case(tmp_path, 'raise ValueError("no")')
    result = validate.validate(str(folder), "A", None, "unused")
    assert result["ok"] and result["sample"]["rejected_records"] == 1 and result["sample"]["first_error"] == "ValueError: no"


def test_manifest_and_import_problems_come_first(tmp_path):
    folder = per_record_case(tmp_path, "return []")
    (folder / "job.py").write_text("import not_installed_anywhere\n")
    result = validate.validate(str(folder), "A", None, "unused")
    assert result["problem"] == "user_code" and "ModuleNotFoundError" in result["error"]
    assert validate.validate(str(folder), "Z", None, "unused")["problem"] == "manifest"


# ── a PySpark variant's output (analysed on a local session) ──────────────────

def transform_case(tmp_path, select):
    folder = tmp_path / "spark_case"
    folder.mkdir()
    (folder / "usecase.yaml").write_text("name: spark_case\ndescription: d\nowner: o\nvariants: {A: job.py}\n")
    (folder / "job.py").write_text(f"from pyspark.sql import functions as F\n\ndef transform(records, ctx):\n    return records.select({select})\n")
    (folder / "sample.jsonl").write_text(json.dumps(SAMPLE) + "\n")
    return folder


def test_a_transform_with_every_column_passes_and_one_without_severity_is_refused(tmp_path):
    good = transform_case(tmp_path, '"customer_id", "event_time", F.lit("k").alias("kind"), F.lit("info").alias("severity"), F.lit("m").alias("message")')
    assert validate.validate(str(good), "A", None, "unused")["sample"]["columns"] == ["customer_id", "event_time", "kind", "severity", "message"]
    (good / "job.py").write_text('from pyspark.sql import functions as F\n\ndef transform(records, ctx):\n'
                                 '    return records.select("customer_id", "event_time", F.lit("k").alias("kind"), F.lit("m").alias("message"))\n')
    result = validate.validate(str(good), "A", None, "unused")
    assert result["problem"] == "output" and result["column"] == "severity"
    assert "use case 'spark_case' output column 'severity' is missing" in result["error"]
