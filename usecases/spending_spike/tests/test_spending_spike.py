from pathlib import Path

from diamond_sdk.testing import run_usecase

FOLDER = Path(__file__).resolve().parents[1]


def purchase(record_id, customer, time, amount):
    return {"record_id": record_id, "customer_id": customer, "source": "test", "event_time": time, "type": "purchase",
            "amount": amount, "currency": "EUR", "attributes": {}, "ingested_at": time}


def windows(result):
    return sorted((row["customer_id"], row["details"]["window_start"]) for row in result.feedback)


def test_variant_a_flags_spend_above_the_threshold_in_every_window_that_holds_it():
    result = run_usecase(FOLDER)
    # 10:10 lies in the windows starting 09:30 and 10:00 (1 hour, sliding every 30 minutes).
    assert windows(result) == [("acme", "2026-11-01T09:30:00Z"), ("acme", "2026-11-01T10:00:00Z")]
    assert {row["record_ids"] == ["s-001"] for row in result.feedback} == {True}
    assert {row["severity"] for row in result.feedback} == {"warning"}


def test_variant_b_needs_several_purchases():
    result = run_usecase(FOLDER, variant="B")
    assert windows(result) == [("globex", "2026-11-01T09:30:00Z"), ("globex", "2026-11-01T10:00:00Z")]
    assert result.feedback[0]["record_ids"] == ["s-010", "s-011", "s-012", "s-013"]


def test_a_spend_three_times_the_threshold_is_critical():
    result = run_usecase(FOLDER, [purchase("x1", "c", "2026-11-01T10:00:00Z", 2000.0), purchase("x2", "c", "2026-11-01T10:01:00Z", 1500.0)])
    assert {row["severity"] for row in result.feedback} == {"critical"}
    assert {round(row["score"], 2) for row in result.feedback} == {3.5}


def test_the_same_window_always_gets_the_same_feedback_id():
    a = run_usecase(FOLDER, [purchase("x1", "c", "2026-11-01T10:00:00Z", 5000.0)])
    b = run_usecase(FOLDER, [purchase("x1", "c", "2026-11-01T10:00:00Z", 5000.0)])
    assert [r["feedback_id"] for r in a.feedback] == [r["feedback_id"] for r in b.feedback]
    assert len({r["feedback_id"] for r in a.feedback}) == len(a.feedback)


def test_a_record_sent_twice_counts_once():
    """A client retrying after a 503 lands the same record_id twice; the sums must not change."""
    once = [purchase("d1", "c", "2026-11-01T10:00:00Z", 600.0), purchase("d2", "c", "2026-11-01T10:05:00Z", 500.0)]
    twice = once + [dict(once[0], ingested_at="2026-11-01T10:00:09Z")]
    sums = lambda result: sorted((row["details"]["window_start"], row["details"]["spend"], tuple(row["record_ids"])) for row in result.feedback)
    assert sums(run_usecase(FOLDER, twice)) == sums(run_usecase(FOLDER, once)) == [
        ("2026-11-01T09:30:00Z", "1,100.00", ("d1", "d2")), ("2026-11-01T10:00:00Z", "1,100.00", ("d1", "d2"))]
