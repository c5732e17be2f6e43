from pathlib import Path

from diamond_sdk.testing import run_usecase

FOLDER = Path(__file__).resolve().parents[1]


def record(record_id, **fields):
    base = {"record_id": record_id, "customer_id": "c1", "source": "test", "event_time": "2026-11-01T10:00:00Z",
            "type": "purchase", "amount": 10.0, "currency": "EUR", "attributes": {}, "ingested_at": "2026-11-01T10:00:01Z"}
    return {**base, **fields}


def kinds(result):
    return sorted((row["record_ids"][0], row["kind"]) for row in result.feedback)


def test_sample_gives_one_finding_per_problem():
    result = run_usecase(FOLDER)
    assert kinds(result) == [
        ("r-002", "missing_amount"), ("r-003", "missing_currency"), ("r-004", "negative_amount"),
        ("r-005", "amount_out_of_range"), ("r-006", "future_timestamp"),
    ]
    assert result.rejected == []


def test_a_clean_record_gets_no_feedback():
    assert run_usecase(FOLDER, [record("ok")]).feedback == []


def test_rows_fit_the_feedback_contract():
    [row] = run_usecase(FOLDER, [record("big", amount=5_000_000.0)]).feedback
    assert row["usecase"] == "data_quality" and row["variant"] == "A" and len(row["version"]) == 12
    assert row["severity"] == "critical" and row["details"] == {"field": "amount", "type": "purchase"}
    assert "5,000,000.00" in row["message"]


def test_feedback_ids_are_stable_across_runs():
    first = run_usecase(FOLDER, [record("x", amount=None)]).feedback
    second = run_usecase(FOLDER, [record("x", amount=None)]).feedback
    assert [r["feedback_id"] for r in first] == [r["feedback_id"] for r in second]
