"""``python -m services.appeals close-unhandled``: close the appeal filings whose month is over
with students not ruled (AppealClosedUnhandled), as the appeals service's timer does every
``AID_APPEALS_CLOSE_INTERVAL_SECONDS`` (300). For a cron job at 00:05 on the 1st of each month
when the service's timer is not wanted; running both is harmless (a filing closes once)."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args != ["close-unhandled"]:
        print(__doc__, file=sys.stderr)
        return 0 if args in (["-h"], ["--help"]) else 2
    from backbone import config
    from backbone.db import Pool
    from backbone.messaging import EventStoreAccess
    from services.appeals.service import close_due, today

    pool = Pool(config.load().database_url, size=1)
    try:
        closed = close_due(EventStoreAccess(pool, "appeals"), today())
    finally:
        pool.close()
    print(f"closed {len(closed)} filing(s) unhandled: {' '.join(closed)}".rstrip(": "))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
