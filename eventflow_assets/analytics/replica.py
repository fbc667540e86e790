"""Reading the analytics' inputs from a read replica without reading stale rows.

A streaming replica lags its primary. A trends window is computed once it is final on the
primary's watermark, and a partition once written is not recomputed: rows the replica has not
replayed yet would be missing from it for good. So before reading, the analytics wait until the
replica has replayed the primary's WAL up to where it was when the run began (every row committed
by then, the final windows included), within a bound, and fail clearly past it.
"""

from __future__ import annotations

import logging
import time

from eventflow_assets.errors import EventFlowError
from eventflow_assets.settings import POSTGRES_READ_VAR, redact_url
from eventflow_assets.storage.postgres import connect

# Long enough for a replica that is merely busy; a stalled one fails the run instead of feeding it old rows.
REPLICA_WAIT_SECONDS = 120.0
_POLL_SECONDS = 0.2

log = logging.getLogger("eventflow.analytics")


def wait_for_replica(primary: str, replica: str, timeout: float = REPLICA_WAIT_SECONDS) -> None:
    """Return once ``replica`` has replayed the primary's current WAL position; raise after ``timeout`` s.

    A server that is not in recovery (the primary under another URL, a logical replica, a promoted
    standby) has no replay position to compare: it is read as it is, with a warning.
    """
    with connect(primary, autocommit=True) as conn:
        target = conn.execute("SELECT pg_current_wal_lsn()::text").fetchone()[0]
    deadline = time.monotonic() + timeout
    with connect(replica, autocommit=True) as conn:
        while True:
            standby, replayed, behind = conn.execute(
                "SELECT pg_is_in_recovery(), pg_last_wal_replay_lsn()::text,"
                " pg_wal_lsn_diff(%s::pg_lsn, pg_last_wal_replay_lsn())", (target,)).fetchone()
            if not standby:
                log.warning("%s is not a streaming replica (not in recovery): its rows are read without "
                            "checking that it has caught up with the primary", redact_url(replica))
                return
            if behind is not None and behind <= 0:
                return
            if time.monotonic() >= deadline:
                raise EventFlowError(
                    f"the read replica {redact_url(replica)} has not replayed the primary's WAL up to {target} "
                    f"(the primary's position when this run began) within {timeout:g}s: it is "
                    f"{'an unknown amount' if behind is None else f'{int(behind)} bytes'} behind "
                    f"(replayed up to {replayed or 'nothing yet'}). Nothing was computed, so no window is "
                    f"written from incomplete rows. Check its replication (pg_stat_replication on the primary, "
                    f"pg_stat_wal_receiver and pg_is_wal_replay_paused() on the replica), or unset "
                    f"{POSTGRES_READ_VAR} to read the primary.")
            time.sleep(_POLL_SECONDS)
