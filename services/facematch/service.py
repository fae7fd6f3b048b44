"""facematch service: CaptureSubmitted in, CaptureVerified or CaptureRejected out.

Inference runs in a native thread (eventlet.tpool), so AMQP heartbeats and HTTP keep being
served; several instances share the load as competing consumers of one queue.

The province's template index (province.py) is loaded at start-up by a background green thread
(`ProvinceWarmup`, pausing every `PAUSE_EVERY` rows); an enrolment that arrives meanwhile waits
for that load instead of starting its own. Progress: ``progress facematch-index`` in ``/health``,
``aid_facematch_index_rows_loaded``, ``aid_facematch_index_rows_expected``,
``aid_facematch_index_ready`` and ``aid_facematch_index_templates``.
"""

from __future__ import annotations

import os
import time
from datetime import datetime
from typing import Any

os.environ.setdefault("EVENTLET_THREADPOOL_SIZE", "1")  # one engine, one inference at a time per process

import logging  # noqa: E402

import eventlet  # noqa: E402
import psycopg  # noqa: E402
from eventlet import tpool  # noqa: E402
from nameko.extensions import DependencyProvider  # noqa: E402

from backbone import config, health, observability  # noqa: E402
from backbone.blobs import BlobNotFound  # noqa: E402
from backbone.edge import Answer, Call, EdgeService, route  # noqa: E402
from backbone.fields import Model  # noqa: E402
from backbone.messaging import (  # noqa: E402
    BlobStoreProvider,
    EventStoreProvider,
    event_consumer,
    output_event_id,
)
from contracts import Actor, build_envelope  # noqa: E402
from contracts.envelope import Envelope  # noqa: E402
from services.facematch.calibration import MODEL_VERSION, LivenessPolicy  # noqa: E402
from services.facematch.engine import Outcome  # noqa: E402
from services.facematch.gallery import SchoolGalleries  # noqa: E402
from services.facematch.index import Hit  # noqa: E402
from services.facematch.province import ProvinceTemplates  # noqa: E402
from services.facematch.reasons import Code  # noqa: E402
from services.facematch.repository import PostgresTemplateRepository  # noqa: E402
from services.facematch.results import (  # noqa: E402
    challenge_of,
    duplicate_held,
    rejected_without_matching,
    result_event,
    template_to_keep,
    with_duplicates,
)

SETTINGS = config.load()
#: the province's templates, searched 1:N for every new capture (loaded on first use; province.py)
PROVINCE = ProvinceTemplates(MODEL_VERSION)
PROVINCE_LOCK = "face-province"
#: each school's templates for the proxy search of a spot check, opened once per row version
GALLERIES = SchoolGalleries()
ACTOR = Actor(kind="service", id="facematch")
VERIFICATIONS = observability.Counter("aid_facematch_verifications_total", "Captures matched", ["outcome"])
log = logging.getLogger("aid.facematch")
INDEX_ROWS_LOADED = observability.Gauge("aid_facematch_index_rows_loaded",
                                        "Rows of face_templates read by the first load of the province index")
INDEX_ROWS_EXPECTED = observability.Gauge("aid_facematch_index_rows_expected",
                                          "Rows of face_templates counted before the first load")
INDEX_READY = observability.Gauge("aid_facematch_index_ready", "1 once the province index is loaded")
INDEX_TEMPLATES = observability.Gauge("aid_facematch_index_templates", "Templates in the province index")
INDEX_ROWS_LOADED.set_function(lambda: float(PROVINCE.rows_loaded))
INDEX_ROWS_EXPECTED.set_function(lambda: float(PROVINCE.rows_expected or 0))
INDEX_READY.set_function(lambda: 1.0 if PROVINCE.loaded else 0.0)
INDEX_TEMPLATES.set_function(lambda: float(len(PROVINCE.index)))
STAGE_SECONDS = observability.Histogram("aid_facematch_stage_seconds", "Face pipeline time per stage",
                                        ["stage"], buckets=observability.LATENCY_BUCKETS)


class FaceEngineProvider(DependencyProvider):  # type: ignore[misc]
    def setup(self) -> None:
        from services.facematch.engine import FaceEngine

        policy = LivenessPolicy(unchallenged=frozenset(SETTINGS.face_unchallenged))
        # loads the models in the native thread that will use them
        self.engine = tpool.execute(FaceEngine, policy)

    def get_dependency(self, worker_ctx: Any) -> Any:
        return self.engine


class ProvinceWarmup(DependencyProvider):  # type: ignore[misc]
    """Loads the province index when the service starts, in a green thread that pauses every
    `PAUSE_EVERY` rows (heartbeats, /health and other workers keep running); retried while the
    database is away. An enrolment arriving during the load waits on `PROVINCE.lock`."""

    def setup(self) -> None:
        self.running = False
        health.track_progress("facematch-index", PROVINCE.report)

    def start(self) -> None:
        self.running = True
        self.container.spawn_managed_thread(self._warm)

    def stop(self) -> None:
        self.running = False

    def _warm(self) -> None:
        while self.running and not PROVINCE.loaded:
            try:
                with psycopg.connect(SETTINGS.database_url, autocommit=True) as conn:
                    repo = PostgresTemplateRepository(conn, SETTINGS.secret_key)
                    PROVINCE.refresh(repo, pause=eventlet.sleep)
                log.info("facematch: province index loaded: %s", PROVINCE.report())
            except Exception as exc:  # the database away: try again later
                log.warning("facematch: loading the province index failed (%s); retrying", type(exc).__name__)
                eventlet.sleep(2)


class ModelInfo(Model):
    model_version: str
    templates_needing_reenrolment: int


class FacematchService(EdgeService):
    name = "facematch"
    # one inference at a time per process: a small prefetch lets other instances take the rest
    max_workers = 2
    store = EventStoreProvider()
    blobs = BlobStoreProvider()
    engine = FaceEngineProvider()
    warmup = ProvinceWarmup()

    @event_consumer("CaptureSubmitted")
    def on_capture(self, envelope: Envelope) -> None:
        capture = envelope.payload
        if self.store.already_handled("facematch", envelope):
            self.store.handle_once("facematch", envelope, lambda conn: None)  # counts the duplicate
            return
        started = time.perf_counter()
        enrolment = capture["purpose"] == "enrolment"
        try:
            frames = [self.blobs.get(ref) for ref in capture["frame_refs"]]
            id_photo = self.blobs.get(capture["id_photo_ref"]) if capture.get("id_photo_ref") else None
        except BlobNotFound:
            event: Any = rejected_without_matching(capture, Code.FRAMES_MISSING, MODEL_VERSION)
            outcome = None
        else:
            challenge = challenge_of(capture)
            with self.store.pool.connection() as conn:
                repo = PostgresTemplateRepository(conn, SETTINGS.secret_key)
                template = repo.get(capture["student_id"])
                school = [] if enrolment else GALLERIES.school(repo, capture["school_id"])
                if enrolment:
                    PROVINCE.refresh(repo, pause=eventlet.sleep)
            if enrolment:
                outcome = tpool.execute(self.engine.enrol, frames, id_photo, capture["channel"],
                                        student_id=capture["student_id"], challenge=challenge)
                outcome = with_duplicates(capture, outcome, self._province_hits(capture, outcome))
            elif template is None:
                outcome = None
                event = rejected_without_matching(capture, Code.NOT_ENROLLED, MODEL_VERSION)
            else:
                outcome = tpool.execute(self.engine.verify, frames, template, school, capture["channel"],
                                        challenge)
        STAGE_SECONDS.labels(stage="total").observe(time.perf_counter() - started)

        def effect(conn: Any) -> list[Envelope]:
            nonlocal event
            held = None
            if outcome is not None:
                final = outcome
                keep = template_to_keep(capture, outcome)
                if keep is not None:
                    # one writer of templates at a time in the province: the duplicate search is
                    # repeated on the templates as they are now, inside the storing transaction
                    conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (PROVINCE_LOCK,))
                    repo = PostgresTemplateRepository(conn, SETTINGS.secret_key)
                    PROVINCE.refresh(repo)
                    final = with_duplicates(capture, outcome, self._province_hits(capture, outcome))
                    keep = template_to_keep(capture, final)
                    if keep is not None:
                        repo.put(keep)
                event = result_event(capture, final)
                held = duplicate_held(capture, final, self._province_hits(capture, final),
                                      self.engine.live.threshold)
            VERIFICATIONS.labels(outcome="verified" if event.TYPE == "CaptureVerified" else "rejected").inc()
            # the result is about the capture: business time is when it was taken
            captured_at = datetime.fromisoformat(capture["captured_at"])
            out = [build_envelope(event, occurred_at=captured_at, stream=envelope.stream, actor=ACTOR,
                                  event_id=output_event_id("facematch", envelope),
                                  correlation_id=envelope.correlation_id, causation_id=envelope.event_id)]
            if held is not None:
                out.append(build_envelope(held, occurred_at=captured_at, stream=envelope.stream, actor=ACTOR,
                                          event_id=output_event_id("facematch-duplicate", envelope),
                                          correlation_id=envelope.correlation_id,
                                          causation_id=envelope.event_id))
            return out

        self.store.handle_once("facematch", envelope, effect)

    def _province_hits(self, capture: dict[str, Any], outcome: Outcome) -> list[Hit]:
        if capture["purpose"] != "enrolment" or outcome.embedding is None:
            return []
        return PROVINCE.duplicates(outcome.embedding, self.engine.live.threshold, capture["student_id"])

    @route("GET", "/model", roles=("operations", "auditor"), returns=ModelInfo)
    def model(self, call: Call) -> Answer:
        """Read the face model in use and how many templates need re-enrolment."""
        with self.store.pool.connection() as conn:
            stale = PostgresTemplateRepository(conn, SETTINGS.secret_key).stale(MODEL_VERSION)
        return 200, ModelInfo(model_version=MODEL_VERSION, templates_needing_reenrolment=len(stale))


SERVICE = FacematchService
