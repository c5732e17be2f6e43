"""{{name}}: one plain function per record. Return a list of feedback dicts (or an empty list).

A record is a dict with record_id, customer_id, source, event_time (datetime, UTC), type,
amount (float or None), currency, attributes (dict of strings) and ingested_at.
Each feedback dict needs kind, severity (info, warning or critical) and message, and may
carry score, details (dict of strings), record_ids and key; everything else (ids, versions,
Kafka, Avro) is done for you. If this raises on a record, the running job sends that record
to feedback.rejected with the traceback and goes on; in tests (run_usecase) it fails the
test with your file, line and the record.

Prefer PySpark for heavy work: define `transform(records: DataFrame, ctx: Context) ->
DataFrame` instead (see usecases/data_quality/job.py).
"""
from diamond_sdk import Context, Feedback, Record


def feedback(record: Record, ctx: Context) -> list[Feedback]:
    large = float(ctx.param("large_amount", 1000))
    if record["amount"] is not None and record["amount"] > large:
        return [{
            "kind": "large_amount",
            "severity": "info",
            "message": f"{record['type']} {record['record_id']} of {record['amount']:.2f} is above {large:.2f}",
            "score": record["amount"] / large,
            "details": {"currency": record["currency"] or ""},
        }]
    return []
