import datetime as dt
import random
from collections import Counter, defaultdict
from pathlib import Path

import pytest

from diamond_sdk.testing import run_function

FOLDER = Path(__file__).resolve().parents[1]
SINCE = dt.datetime(2026, 11, 1, tzinfo=dt.timezone.utc)


def sample(seed=7):
    """Records and feedback of three customers around SINCE, over several days and currencies."""
    rng = random.Random(seed)
    records, feedback = [], []
    for i in range(120):
        at = SINCE + dt.timedelta(hours=rng.randint(-72, 72))
        currency = rng.choice(["EUR", "USD", "GBP", None])
        records.append({"record_id": f"r{i}", "customer_id": rng.choice(["acme", "globex", "initech"]), "source": "test",
                        "event_time": at, "type": "purchase", "amount": None if currency is None else round(rng.uniform(1, 500), 2),
                        "currency": currency, "ingested_at": at})
    for i in range(40):
        at = SINCE + dt.timedelta(hours=rng.randint(-72, 72))
        feedback.append({"feedback_id": f"f{i}", "customer_id": rng.choice(["acme", "globex"]), "usecase": "data_quality", "variant": "A",
                         "version": "v1", "kind": rng.choice(["missing_amount", "spending_spike"]), "severity": "warning",
                         "message": "m", "event_time": at, "produced_at": at})
    return records, feedback


def expected(records, feedback, customer_id, since):
    """The summary computed in plain Python, not with Spark."""
    mine = [r for r in records if r["customer_id"] == customer_id and r["event_time"] >= since]
    spend = defaultdict(float)
    for r in mine:
        if r["currency"] is not None and r["amount"] is not None:
            spend[r["currency"]] += r["amount"]
    kinds = Counter(f["kind"] for f in feedback if f["customer_id"] == customer_id and f["event_time"] >= since)
    return {"customer_id": customer_id, "since": since.isoformat().replace("+00:00", "Z"), "records": len(mine),
            "spend_by_currency": {c: round(v, 2) for c, v in spend.items()}, "feedback_by_kind": dict(kinds)}


def assert_same(summary, wanted):
    # Spark and Python add the amounts in different orders: equal to the cent.
    assert summary["spend_by_currency"] == pytest.approx(wanted["spend_by_currency"], abs=0.011)
    assert {**summary, "spend_by_currency": None} == {**wanted, "spend_by_currency": None}


def test_the_summary_matches_one_computed_independently():
    records, feedback = sample()
    summary = run_function(FOLDER, "customer_summary", {"customer_id": "acme", "since": "2026-11-01T00:00:00Z"}, records=records, feedback=feedback)
    assert_same(summary, expected(records, feedback, "acme", SINCE))
    assert summary["records"] > 0 and summary["feedback_by_kind"]


def test_another_customers_data_never_shows():
    records, feedback = sample()
    summary = run_function(FOLDER, "customer_summary", {"customer_id": "initech", "since": "2026-10-01T00:00:00Z"}, records=records, feedback=feedback)
    assert_same(summary, expected(records, feedback, "initech", dt.datetime(2026, 10, 1, tzinfo=dt.timezone.utc)))
    assert summary["feedback_by_kind"] == {}  # initech has no feedback in the sample


def test_since_defaults_to_thirty_days_back():
    now = dt.datetime.now(dt.timezone.utc)
    records = [{"record_id": "old", "customer_id": "acme", "source": "t", "event_time": now - dt.timedelta(days=40), "type": "purchase", "amount": 5.0, "currency": "EUR", "ingested_at": now},
               {"record_id": "new", "customer_id": "acme", "source": "t", "event_time": now - dt.timedelta(days=2), "type": "purchase", "amount": 7.0, "currency": "EUR", "ingested_at": now}]
    summary = run_function(FOLDER, "customer_summary", {"customer_id": "acme"}, records=records)
    assert (summary["records"], summary["spend_by_currency"]) == (1, {"EUR": 7.0})
