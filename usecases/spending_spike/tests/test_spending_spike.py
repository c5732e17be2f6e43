"""spending_spike through the streaming query the job runs (diamond_sdk.testing feeds each
step as one micro-batch): a window is emitted once the watermark (the newest purchase seen
minus params.watermark, 10 minutes, moved at the end of each micro-batch) reaches its end,
exactly once, and a purchase at or behind the watermark of earlier batches is dropped."""
from pathlib import Path

from diamond_sdk.testing import StreamingHarness, run_usecase

FOLDER = Path(__file__).resolve().parents[1]


def purchase(record_id, customer, time, amount):
    return {"record_id": record_id, "customer_id": customer, "source": "test", "event_time": time, "type": "purchase",
            "amount": amount, "currency": "EUR", "attributes": {}, "ingested_at": time}


def clock(time):
    """A small purchase of another customer: it only moves the watermark to `time` − 10 minutes."""
    return purchase(f"clock-{time}", "zz-clock", time, 1.0)


def windows(result):
    return sorted((row["customer_id"], row["details"]["window_start"]) for row in result.feedback)


def spends(result):
    return sorted((row["customer_id"], row["details"]["window_start"], row["details"]["spend"], tuple(row["record_ids"])) for row in result.feedback)


def test_variant_a_flags_spend_above_the_threshold_in_every_window_that_holds_it():
    # sample.jsonl ends with a purchase at 11:45: the watermark (11:35) closed both windows of 10:10.
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
    result = run_usecase(FOLDER, [purchase("x1", "c", "2026-11-01T10:00:00Z", 2000.0), purchase("x2", "c", "2026-11-01T10:01:00Z", 1500.0), clock("2026-11-01T12:00:00Z")])
    assert windows(result) == [("c", "2026-11-01T09:30:00Z"), ("c", "2026-11-01T10:00:00Z")]
    assert {row["severity"] for row in result.feedback} == {"critical"}
    assert {round(row["score"], 2) for row in result.feedback} == {3.5}


def test_the_same_window_always_gets_the_same_feedback_id():
    records = [purchase("x1", "c", "2026-11-01T10:00:00Z", 5000.0), clock("2026-11-01T12:00:00Z")]
    a, b = run_usecase(FOLDER, records), run_usecase(FOLDER, records)
    assert len(a.feedback) == 2
    assert [r["feedback_id"] for r in a.feedback] == [r["feedback_id"] for r in b.feedback]
    assert len({r["feedback_id"] for r in a.feedback}) == len(a.feedback)


def test_a_record_sent_twice_counts_once_in_one_batch_and_across_batches():
    """A client retrying after a 503 lands the same record_id twice; the sums must not change."""
    once = [purchase("d1", "c", "2026-11-01T10:00:00Z", 600.0), purchase("d2", "c", "2026-11-01T10:05:00Z", 500.0)]
    retry = dict(once[0], ingested_at="2026-11-01T10:00:09Z")
    close = clock("2026-11-01T12:00:00Z")
    expected = [("c", "2026-11-01T09:30:00Z", "1,100.00", ("d1", "d2")), ("c", "2026-11-01T10:00:00Z", "1,100.00", ("d1", "d2"))]
    assert spends(run_usecase(FOLDER, once + [close])) == expected
    assert spends(run_usecase(FOLDER, once + [retry, close])) == expected
    # The retry in the next micro-batch: Spark remembers the record id within the watermark.
    assert spends(run_usecase(FOLDER, steps=[once, [retry], [close]])) == expected


def test_a_window_is_emitted_only_once_the_watermark_reaches_its_end_and_only_once():
    with StreamingHarness(FOLDER) as job:
        # 10:10 is in the windows [09:30, 10:30) and [10:00, 11:00); the watermark is 10:00.
        assert job.feed([purchase("w1", "c", "2026-11-01T10:10:00Z", 1500.0)]).feedback == []
        # Watermark 10:29: both windows still open.
        assert job.feed([clock("2026-11-01T10:39:00Z")]).feedback == []
        # Watermark 10:30 = the first window's end: it is emitted, the second one is not.
        assert windows(job.feed([clock("2026-11-01T10:40:00Z")])) == [("c", "2026-11-01T09:30:00Z")]
        # Watermark 11:05: the second window; the first is not emitted again.
        assert windows(job.feed([clock("2026-11-01T11:15:00Z")])) == [("c", "2026-11-01T10:00:00Z")]
        # Much later: nothing of c's windows comes back.
        assert job.feed([clock("2026-11-01T14:00:00Z")]).feedback == []
        everything = job.rows().feedback
    assert windows(job.rows()) == [("c", "2026-11-01T09:30:00Z"), ("c", "2026-11-01T10:00:00Z")]
    assert len({row["feedback_id"] for row in everything}) == len(everything) == 2


def test_a_purchase_behind_the_watermark_is_dropped_and_out_of_order_ones_ahead_of_it_count():
    result = run_usecase(FOLDER, steps=[
        # Watermark after this batch: 10:40. c's purchase at 10:10 is in [09:30, 10:30) and [10:00, 11:00).
        [purchase("c-1", "c", "2026-11-01T10:10:00Z", 600.0), clock("2026-11-01T10:50:00Z")],
        # 10:20 is behind the watermark: dropped (it would lift [10:00, 11:00) to 1,100 and
        # [09:30, 10:30) too). 10:45 is older than the newest purchase (10:50) but ahead of
        # the watermark: it counts.
        [purchase("c-2", "c", "2026-11-01T10:20:00Z", 500.0), purchase("c-3", "c", "2026-11-01T10:45:00Z", 450.0)],
        [clock("2026-11-01T12:30:00Z")],
    ])
    assert spends(result) == [("c", "2026-11-01T10:00:00Z", "1,050.00", ("c-1", "c-3"))]


def test_windows_still_open_after_the_last_batch_are_not_written():
    """What the job writes from these records alone: nothing, the watermark (10:01) closed no window."""
    result = run_usecase(FOLDER, [purchase("x1", "c", "2026-11-01T10:00:00Z", 2000.0), purchase("x2", "c", "2026-11-01T10:11:00Z", 1500.0)])
    assert result.feedback == [] and result.rejected == []
