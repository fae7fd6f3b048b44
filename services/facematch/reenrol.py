"""Re-enrol templates made by an older model version from the stored enrolment photos.

    python -m services.facematch.reenrol [--dry-run] [--limit N]

After a model change (``MODEL_VERSION`` in ``services/facematch/calibration.py``), spot checks
against old templates are refused with MODEL_VERSION_MISMATCH until this has run. Students do
not come back: each template is rebuilt from its sealed source photo in the blob store.
Progress goes to stderr; the exit status is 1 when any template could not be rebuilt.
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import UTC, datetime

import psycopg

from backbone import config
from backbone.blobs import BlobNotFound, BlobStore
from services.facematch.calibration import MODEL_VERSION
from services.facematch.reasons import Code, FaceError
from services.facematch.repository import PostgresTemplateRepository


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m services.facematch.reenrol", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--dry-run", action="store_true", help="only count the templates to rebuild")
    parser.add_argument("--limit", type=int, help="rebuild at most N templates")
    args = parser.parse_args(argv)
    settings = config.load()
    blobs = BlobStore(settings.blob_dir, settings.secret_key)
    with psycopg.connect(settings.database_url, autocommit=True) as conn:
        stale = PostgresTemplateRepository(conn, settings.secret_key).stale(MODEL_VERSION)
    stale = stale[: args.limit] if args.limit else stale
    print(f"{len(stale)} template(s) made by another model than {MODEL_VERSION}", file=sys.stderr)
    if args.dry_run or not stale:
        return 0
    from services.facematch.engine import FaceEngine

    engine = FaceEngine()
    done = failed = 0
    started = time.monotonic()
    with psycopg.connect(settings.database_url, autocommit=True) as conn:
        repo = PostgresTemplateRepository(conn, settings.secret_key)
        for index, (student_id, source_ref) in enumerate(stale, 1):
            try:
                template = repo.get(student_id)
                if template is None or source_ref is None:
                    raise FaceError(Code.TEMPLATE_INVALID, "no stored enrolment photo")
                fresh = engine.reenrol(template, blobs.get(source_ref), datetime.now(UTC))
                with conn.transaction():
                    repo.put(fresh)
                done += 1
            except (FaceError, BlobNotFound) as exc:
                failed += 1
                code = getattr(exc, "code", "BLOB_NOT_FOUND")
                print(f"student {student_id}: not rebuilt ({code}); re-capture at a terminal",
                      file=sys.stderr)
            if index % 100 == 0 or index == len(stale):
                rate = index / max(time.monotonic() - started, 1e-9)
                print(f"{index}/{len(stale)} processed ({rate:.1f}/s)", file=sys.stderr)
    print(f"rebuilt {done}, failed {failed}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
