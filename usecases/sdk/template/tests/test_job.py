from pathlib import Path

from diamond_sdk.testing import run_usecase

FOLDER = Path(__file__).resolve().parents[1]


def test_sample_flags_the_large_purchase_only():
    result = run_usecase(FOLDER)
    assert [(row["customer_id"], row["kind"], row["record_ids"]) for row in result.feedback] == [("acme", "large_amount", ["r-2"])]
    assert result.rejected == []


def test_a_record_without_amount_gets_no_feedback():
    record = {"record_id": "x", "customer_id": "c", "source": "t", "event_time": "2026-11-01T00:00:00Z", "type": "login", "ingested_at": "2026-11-01T00:00:00Z"}
    assert run_usecase(FOLDER, [record]).feedback == []
