"""SDK tests on a local SparkSession: manifests, output conformance, per-record isolation,
feedback_id determinism, and decoding several writer schema versions."""
import copy
import datetime as dt
import json
from pathlib import Path

import fastavro
import pytest

import diamond_sdk
import diamond_sdk.testing
from diamond_sdk import ManifestError, OutputContractError, UserCodeError
from diamond_sdk._runtime import contracts, wire
from diamond_sdk._runtime.manifest import load_manifest
from diamond_sdk._runtime.version import code_version
from diamond_sdk.testing import RecordError, local_spark, run_usecase

FIXTURES = Path(__file__).parent / "fixtures"


def record(record_id, **fields):
    base = {"record_id": record_id, "customer_id": "c1", "source": "t", "event_time": "2026-11-01T10:00:00Z", "type": "purchase",
            "amount": 1.0, "currency": "EUR", "attributes": {}, "ingested_at": "2026-11-01T10:00:01Z"}
    return {**base, **fields}


# ── the public face ──────────────────────────────────────────────────────────

def test_data_scientists_see_a_small_api_and_the_runtime_stays_private():
    assert sorted(diamond_sdk.__all__) == ["Context", "Feedback", "FeedbackResult", "ManifestError", "OutputContractError", "Record", "Severity", "UserCodeError", "now"]
    assert sorted(diamond_sdk.testing.__all__) == ["DryRun", "FunctionFailed", "RecordError", "StreamingHarness", "local_spark", "read_jsonl", "run_function", "run_usecase", "write_history"]
    assert all(hasattr(diamond_sdk.testing, name) for name in diamond_sdk.testing.__all__)


def test_the_typed_record_and_feedback_name_exactly_the_contract_fields():
    from typing import get_args, get_type_hints

    from diamond_sdk import Feedback, Record, Severity
    from diamond_sdk._runtime.conform import SEVERITIES
    from diamond_sdk._runtime.records import ITEM_KEYS, RECORD_SCHEMA

    assert list(get_type_hints(Record)) == [field["name"] for field in contracts.schema_json("CustomerRecord")["fields"]] == RECORD_SCHEMA.names
    assert set(get_type_hints(Feedback)) == ITEM_KEYS
    assert Feedback.__required_keys__ == frozenset({"kind", "severity", "message"})
    assert get_args(Severity) == SEVERITIES  # what the runtime accepts
    assert list(get_type_hints(diamond_sdk.Context)) == ["usecase", "variant", "version", "params"]


# ── manifests ────────────────────────────────────────────────────────────────

def write_manifest(tmp_path, text, files=("job.py",)):
    folder = tmp_path / "my_case"
    folder.mkdir()
    (folder / "usecase.yaml").write_text(text)
    for name in files:
        (folder / name).write_text("def feedback(record):\n    return []\n")
    return folder


def test_a_valid_manifest_loads_with_defaults(tmp_path):
    folder = write_manifest(tmp_path, "name: my_case\ndescription: d\nowner: o\nvariants: {A: job.py}\n")
    manifest = load_manifest(folder)
    assert (manifest.trigger_ms, manifest.max_records_per_batch, manifest.stateful) == (1000, 100_000, False)


def test_every_manifest_problem_names_the_field_and_the_fix(tmp_path):
    folder = write_manifest(tmp_path, "name: other\nowner: ''\ntrigger: soon\nmax_records_per_batch: -1\nvariants: {A: job.py, b: missing.py}\ncolour: blue\n")
    with pytest.raises(ManifestError) as caught:
        load_manifest(folder)
    fields = [field for field, _, _ in caught.value.problems]
    assert fields == ["colour", "name", "description", "owner", "trigger", "max_records_per_batch", "variants.b", "variants.b"]
    assert "set name: my_case" in str(caught.value)
    assert "e.g. 500ms" in str(caught.value)


def test_a_missing_manifest_says_how_to_make_one(tmp_path):
    with pytest.raises(ManifestError, match="diamond usecase new"):
        load_manifest(tmp_path)


# ── output contract ──────────────────────────────────────────────────────────

def test_a_missing_output_column_names_the_use_case_and_column():
    with pytest.raises(OutputContractError, match="use case 'bad_output' output column 'message' is missing"):
        run_usecase(FIXTURES / "bad_output", [record("r1")], variant="A")


def test_a_mistyped_output_column_names_its_type():
    with pytest.raises(OutputContractError, match="'kind' is int; expected string"):
        run_usecase(FIXTURES / "bad_output", [record("r1")], variant="B")


def test_an_exception_in_transform_names_the_users_file_and_line():
    with pytest.raises(UserCodeError) as caught:
        run_usecase(FIXTURES / "bad_output", [record("r1")], variant="C")
    error = caught.value
    assert error.file.endswith("bad_output/raises.py") and error.line == 2 and error.function == "transform"
    assert "KeyError" in error.user_message


def test_a_transform_that_returns_no_dataframe_is_an_output_error(tmp_path):
    folder = write_manifest(tmp_path, "name: my_case\ndescription: d\nowner: o\nvariants: {A: job.py}\n")
    (folder / "job.py").write_text("def transform(records, ctx):\n    return [records]\n")
    with pytest.raises(OutputContractError, match=r"'transform\(\)' returned list; return a DataFrame"):
        run_usecase(folder, [record("r1")])


# ── per-record functions ─────────────────────────────────────────────────────

def test_a_record_that_raises_fails_the_test_with_the_users_exception_file_line_and_record(tmp_path, monkeypatch):
    failures_file = tmp_path / "failures.jsonl"
    monkeypatch.setenv("DIAMOND_RECORD_FAILURES", str(failures_file))
    records = [record("ok", amount=None), record("boom", attributes={"explode": "yes"}), record("fine")]
    with pytest.raises(RecordError) as caught:
        run_usecase(FIXTURES / "per_record", records)
    error = caught.value
    assert isinstance(error, UserCodeError)
    assert error.file.endswith("per_record/job.py") and error.line == 3 and error.function == "feedback"
    assert (error.exception, error.user_message) == ("ValueError", "ValueError: cannot handle boom")
    assert error.record["record_id"] == "boom" and error.record["attributes"] == {"explode": "yes"}
    text = str(error)
    assert "per_record/job.py:3 in feedback(): ValueError: cannot handle boom" in text and '"record_id": "boom"' in text
    assert "expect_rejections=True" in text
    # The same failure, in the RecordFailure contract, for `diamond usecase test` to print.
    [line] = failures_file.read_text().splitlines()
    reported = json.loads(line)
    contracts.validate_message("record_failure", reported)
    assert (reported["record_id"], reported["line"], reported["exception"], reported["expected"]) == ("boom", 3, "ValueError", False)


def test_one_records_exception_rejects_that_record_only_when_the_test_expects_rejections():
    records = [record("ok", amount=None), record("boom", attributes={"explode": "yes"}), record("fine")]
    result = run_usecase(FIXTURES / "per_record", records, expect_rejections=True)
    assert [(r["record_ids"], r["kind"], r["details"], r["score"]) for r in result.feedback] == [(["ok"], "missing_amount", {"type": "purchase"}, 1.0)]
    [rejected] = result.rejected
    assert rejected["record_id"] == "boom" and rejected["reason"] == "feedback() raised"
    assert "ValueError: cannot handle boom" in rejected["traceback"] and "per_record/job.py" in rejected["traceback"]
    assert rejected["record"]["customer_id"] == "c1"
    assert (rejected["file"].endswith("per_record/job.py"), rejected["line"], rejected["exception"]) == (True, 3, "ValueError")


def test_feedback_ids_depend_on_usecase_variant_key_and_kind_only():
    first = run_usecase(FIXTURES / "per_record", [record("a", amount=None)]).feedback[0]
    again = run_usecase(FIXTURES / "per_record", [record("a", amount=None, ingested_at="2026-11-05T00:00:00Z")]).feedback[0]
    other = run_usecase(FIXTURES / "per_record", [record("b", amount=None)]).feedback[0]
    assert first["feedback_id"] == again["feedback_id"] != other["feedback_id"]
    assert len(first["feedback_id"]) == 64


def test_code_version_changes_with_code_not_with_tests(tmp_path):
    folder = write_manifest(tmp_path, "name: my_case\ndescription: d\nowner: o\nvariants: {A: job.py}\n")
    before = code_version(folder)
    (folder / "tests").mkdir()
    (folder / "tests" / "test_x.py").write_text("def test(): pass\n")
    (folder / "sample.jsonl").write_text("{}\n")
    assert code_version(folder) == before
    (folder / "job.py").write_text("def feedback(record):\n    return None\n")
    assert code_version(folder) != before


# ── decoding every writer version ────────────────────────────────────────────

def test_records_of_every_writer_version_decode_to_the_same_columns():
    from diamond_sdk._runtime.codec import decode_records

    current = contracts.schema_json("CustomerRecord")
    older = copy.deepcopy(current)
    older["fields"] = [f for f in older["fields"] if f["name"] not in ("currency", "attributes")]
    writers = {11: older, 12: current}
    millis = int(dt.datetime(2026, 11, 1, tzinfo=dt.timezone.utc).timestamp() * 1000)
    old = {"record_id": "old", "customer_id": "c", "source": "s", "event_time": millis, "type": "purchase", "amount": 5.0, "ingested_at": millis}
    new = {**old, "record_id": "new", "currency": "EUR", "attributes": {"k": "v"}}
    frames = [
        wire.encode(11, fastavro.parse_schema(older), old),
        wire.encode(12, fastavro.parse_schema(current), new),
        wire.header(99) + b"\x00",  # an id the registry answered 404 for
        b"not framed at all",
        wire.header(12) + b"\xff\xff\xff",  # a known id with a corrupt body
    ]
    spark = local_spark()
    raw = spark.createDataFrame([(bytearray(f), "t", 0, i) for i, f in enumerate(frames)], "value binary, topic string, partition int, offset long")
    rows = decode_records(raw, writers, current, unregistered_ids={99}).orderBy("offset").collect()
    assert rows[0].record.record_id == "old" and rows[0].record.currency is None and rows[0].record.attributes == {}
    assert rows[1].record.record_id == "new" and rows[1].record.currency == "EUR" and rows[1].record.attributes == {"k": "v"}
    assert rows[1].record.event_time == dt.datetime(2026, 11, 1)
    assert rows[0].reason is None and rows[1].reason is None
    assert rows[2].record is None and rows[2].schema_id == 99 and rows[2].reason == "undecodable record: schema id 99 is unknown to the schema registry"
    assert rows[3].record is None and rows[3].reason.startswith("undecodable record: not Confluent wire format")
    assert rows[4].record is None and rows[4].reason == "undecodable record: the Avro body does not decode with writer schema id 12"


def test_a_writer_id_the_decoder_does_not_know_stops_the_batch_instead_of_nulling_the_record():
    """It may be a version registered after the job started: the runner looks it up and runs the batch again."""
    from diamond_sdk._runtime.codec import decode_records, unknown_schema_ids

    current = contracts.schema_json("CustomerRecord")
    millis = int(dt.datetime(2026, 11, 1, tzinfo=dt.timezone.utc).timestamp() * 1000)
    good = {"record_id": "r", "customer_id": "c", "source": "s", "event_time": millis, "type": "purchase", "amount": 5.0, "currency": None, "attributes": {}, "ingested_at": millis}
    frames = [wire.encode(12, fastavro.parse_schema(current), good), wire.encode(13, fastavro.parse_schema(current), good)]
    raw = local_spark().createDataFrame([(bytearray(f), "t", 0, i) for i, f in enumerate(frames)], "value binary, topic string, partition int, offset long")
    with pytest.raises(Exception) as failure:
        decode_records(raw, {12: current}, current).where("record IS NOT NULL").select("record.*").collect()
    assert unknown_schema_ids(str(failure.value)) == {13}
    rows = decode_records(raw, {12: current, 13: current}, current).orderBy("offset").collect()
    assert [row.record.record_id for row in rows] == ["r", "r"]
