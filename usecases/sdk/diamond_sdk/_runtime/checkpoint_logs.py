"""What a streaming query's checkpoint says about its batches, read from Spark's offset and
commit logs (`offsets/<batch id>` is written before a batch runs, `commits/<batch id>` after)."""
from __future__ import annotations

import os

LOGS = ("offsets", "commits")


def _latest_batch(directory: str) -> int:
    try:
        return max((int(name) for name in os.listdir(directory) if name.isdigit()), default=-1)
    except FileNotFoundError:
        return -1


def committed_batch(checkpoint: str) -> int:
    """The last batch the query finished (-1: none). Not query.lastProgress: an idle trigger
    (no data) also updates that, with the id of a batch that never ran."""
    return _latest_batch(os.path.join(checkpoint, "commits"))


def planned_batch(checkpoint: str) -> int | None:
    """The batch Spark planned (wrote to its offset log) but did not commit, if any."""
    planned = _latest_batch(os.path.join(checkpoint, "offsets"))
    committed = _latest_batch(os.path.join(checkpoint, "commits"))
    return planned if planned > committed else None


def remove_torn_writes(checkpoint: str) -> list[str]:
    """Removes what a kill -9 in the middle of a log write leaves: Spark writes each entry
    to a hidden temporary file and renames it, and a leftover `.0.<uuid>.tmp` makes Spark
    4.2 refuse to start batch 0 (STATE_STORE_CHECKPOINT_LOCATION_NOT_EMPTY). Never a
    committed entry: those have plain numeric names. Returns the names removed."""
    removed: list[str] = []
    for log in LOGS:
        directory = os.path.join(checkpoint, log)
        try:
            names = os.listdir(directory)
        except FileNotFoundError:
            continue
        for name in names:
            if name.startswith(".") and (name.endswith(".tmp") or name.endswith(".tmp.crc")):
                os.remove(os.path.join(directory, name))
                removed.append(f"{log}/{name}")
    return sorted(removed)
