"""hardship service: family-hardship identification (家庭经济困难学生认定), from the advance notice
to the archive (issue 12), and the single determinations of the first version (/determinations).

Writes go to the event log: one stream per case (``hardship-case-{student}.{year}``), one per
school and year (notice, public notices, archive), one per year for registry lists. Sensitive
values are sealed (AES-GCM, a key derived from ``AID_SECRET_KEY``) before they enter an event.
Every read of a case is recorded (personal-data read log)."""

from __future__ import annotations

import base64
import functools
from typing import Any

from backbone import config
from backbone.edge import Answer, Call, EdgeService, route, school_for, student_for
from backbone.errors import DomainError, NotFound
from backbone.messaging import EventStoreAccess, EventStoreProvider
from backbone.sealing import JsonSealer, purpose_key
from contracts.calendar import local_date, semester_of
from contracts.events import Event
from contracts.identity import InvalidIdNumber, hash_id_number
from contracts.registry import build_envelope
from contracts.students import student_stream, student_view
from services.hardship import domain, exports, registry
from services.hardship.commands import (
    Archive,
    Determine,
    DetermineCase,
    Determined,
    FileExport,
    FileObjection,
    ImportRegistry,
    IssueNotice,
    OpenCase,
    PublishNotice,
    Questionnaire,
    Recorded,
    ReportChange,
    Review,
    ReviewObjection,
    Revoke,
    YearQuery,
)
from services.hardship.domain import cases
from services.hardship.domain.policy import HardshipPolicy, in_force, load

STAFF = ("school",)
READERS = ("school", "county", "city", "province", "auditor")
REGISTRY_WRITERS = ("province",)  # the province's comparison system and departments' lists
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@functools.cache
def _policies() -> tuple[HardshipPolicy, ...]:
    return load()


def policy_now() -> HardshipPolicy:
    return in_force(_policies(), local_date(config.now()))


@functools.cache
def sealer() -> JsonSealer:
    return JsonSealer(purpose_key(config.load().secret_key, "hardship"))


def _unseal(text: str | None, aad: str) -> Any:
    return None if not text else sealer().open(text, aad)


class HardshipService(EdgeService):
    name = "hardship"
    store = EventStoreProvider()

    # ------------------------------------------------------------------ first version

    @route(
        "POST",
        "/determinations",
        roles=STAFF,
        body=Determine,
        returns=Determined,
        status=201,
        idempotent=True,
    )
    def determine(self, call: Call) -> Answer:
        """Record a student's family-hardship determination."""
        command: Determine = call.body
        student = student_for(call, self.store, command.student_id)
        event = domain.determine(command, str(student.school_id))
        stored = self.store.record(event, domain.hardship_stream(event.student_id), call.actor())
        return 201, Determined(
            determination_id=event.determination_id, level=event.level, position=int(stored.position or 0)
        )

    # ------------------------------------------------------------------ helpers

    def _year(self, school_id: str, school_year: str) -> cases.SchoolYearView:
        return cases.school_year_view(
            school_id, school_year, self.store.read_stream(cases.school_year_stream(school_id, school_year))
        )

    def _case(self, call: Call) -> cases.CaseView:
        """The case of the route's ``case_id``, if the caller may see its student (404 / 403)."""
        case_id = call.path["case_id"]
        view = cases.case_view(case_id, self.store.read_stream(cases.case_stream(case_id)))
        if view.opened is None:
            raise NotFound("UNKNOWN_CASE", f"no case {case_id}")
        student_for(call, self.store, view.opened["student_id"])
        return view

    def _record(self, call: Call, case: cases.CaseView, *events: Event, status: int = 201) -> Answer:
        store: EventStoreAccess = self.store
        stream = cases.case_stream(case.case_id)
        envelopes = [
            build_envelope(e, stream=stream, actor=call.actor(), occurred_at=config.now()) for e in events
        ]
        stored = store.append(envelopes, case.version)
        after = cases.case_view(case.case_id, store.read_stream(stream))
        year = self._year(after.opened["school_id"], after.opened["school_year"]) if after.opened else None
        state = cases.status_of(after, year) if year else "opened"
        return status, Recorded(
            case_id=case.case_id,
            event_id=str(stored[-1].event_id),
            position=int(stored[-1].position or 0),
            status=state,
        )

    def _school_cases(self, school_id: str, school_year: str) -> list[cases.CaseView]:
        with self.store.pool.connection() as conn:
            rows = conn.execute(
                "SELECT payload->>'case_id' FROM events WHERE type = 'HardshipCaseOpened'"
                " AND payload->>'school_id' = %s AND payload->>'school_year' = %s ORDER BY position",
                (school_id, school_year),
            ).fetchall()
        return [cases.case_view(r[0], self.store.read_stream(cases.case_stream(r[0]))) for r in rows]

    # ------------------------------------------------------------------ notice, cases

    @route(
        "POST",
        "/schools/<school_id>/hardship-notice",
        roles=STAFF,
        body=IssueNotice,
        status=201,
        idempotent=True,
    )
    def issue_notice(self, call: Call) -> Answer:
        """Advance notice (提前告知) of the school year's identification."""
        school_id = call.path["school_id"]
        school_for(call, self.store, school_id)
        cmd: IssueNotice = call.body
        year = self._year(school_id, cmd.school_year)
        event = cases.issue_notice(cmd, school_id, year)
        stored = self.store.record(
            event,
            cases.school_year_stream(school_id, cmd.school_year),
            call.actor(),
            expected_version=year.version,
        )
        return 201, {"notice_id": event.notice_id, "event_id": str(stored.event_id)}

    @route("POST", "/cases", roles=STAFF, body=OpenCase, returns=Recorded, status=201, idempotent=True)
    def open_case(self, call: Call) -> Answer:
        """Open a student's case for a school year (application, home-visit form, or comparison)."""
        cmd: OpenCase = call.body
        student = student_for(call, self.store, cmd.student_id)
        school_id = str(student.school_id)
        guardian_hash = None
        if cmd.guardian_id_number is not None:
            try:
                guardian_hash = hash_id_number(config.load().id_hash_key, cmd.guardian_id_number)
            except InvalidIdNumber as exc:
                raise DomainError("INVALID_ID_NUMBER", f"guardian_id_number: {exc}") from None
        case_id = cases.case_id_for(cmd.student_id, cmd.school_year)
        existing = cases.case_view(case_id, self.store.read_stream(cases.case_stream(case_id)))
        event = cases.open_case(
            cmd,
            school_id,
            self._year(school_id, cmd.school_year),
            existing,
            policy_now(),
            sealer(),
            guardian_hash,
        )
        return self._record(call, existing, event)

    @route(
        "POST",
        "/registries",
        roles=REGISTRY_WRITERS,
        body=ImportRegistry,
        status=201,
        idempotent=True,
        max_body=4 * 1024 * 1024,
    )
    def import_registry(self, call: Call) -> Answer:
        """Import a registry list for a school year (ID numbers are hashed at once, never stored)."""
        cmd: ImportRegistry = call.body
        cases.check_school_year(cmd.school_year)
        key = config.load().id_hash_key
        hashes = set(cmd.id_number_hashes)
        for i, number in enumerate(cmd.id_numbers):
            try:
                hashes.add(hash_id_number(key, number))
            except InvalidIdNumber as exc:
                raise DomainError("INVALID_ID_NUMBER", f"id_numbers[{i}]: {exc}") from None
        import uuid

        from contracts.events import HardshipRegistryImported

        event = HardshipRegistryImported(
            import_id=str(uuid.uuid4()),
            registry=cmd.registry,
            system=cmd.system,
            school_year=cmd.school_year,
            id_number_hashes=sorted(hashes),
        )
        envelope = build_envelope(event, stream=cases.registry_stream(cmd.school_year), actor=call.actor(),
                                  occurred_at=config.now())
        with self.store.pool.transaction() as conn:
            stored = registry.record_import(conn, envelope)
        return 201, {"import_id": event.import_id, "rows": len(hashes), "event_id": str(stored.event_id)}

    @route("POST", "/cases/<case_id>/comparison", roles=STAFF, returns=Recorded, status=201)
    def compare(self, call: Call) -> Answer:
        """Information comparison (信息比对) of the case's claims against the registry lists."""
        case = self._case(call)
        opened = case.opened or {}
        student = student_view(
            opened["student_id"], self.store.read_stream(student_stream(opened["student_id"]))
        )
        own = student.registered.id_number_hash if student.registered else None
        guardian = opened.get("guardian_id_hash")
        with self.store.pool.connection() as conn:
            found = registry.lookup(conn, opened["school_year"], own, guardian)
        return self._record(call, case, cases.compare(case, found))

    @route(
        "POST",
        "/cases/<case_id>/assessment",
        roles=STAFF,
        body=Questionnaire,
        returns=Recorded,
        status=201,
        idempotent=True,
    )
    def assess(self, call: Call) -> Answer:
        """Quantitative assessment: the scored questionnaire (the latest replaces the earlier)."""
        case = self._case(call)
        return self._record(call, case, cases.assess(case, call.body, policy_now(), sealer()))

    @route(
        "POST",
        "/cases/<case_id>/reviews",
        roles=STAFF,
        body=Review,
        returns=Recorded,
        status=201,
        idempotent=True,
    )
    def review(self, call: Call) -> Answer:
        """Record a democratic review (class vote) or an investigation (home visit, interview, phone)."""
        case = self._case(call)
        return self._record(call, case, cases.record_review(case, call.body, sealer()))

    @route(
        "POST",
        "/cases/<case_id>/determination",
        roles=STAFF,
        body=DetermineCase,
        returns=Recorded,
        status=201,
        idempotent=True,
    )
    def determine_case(self, call: Call) -> Answer:
        """The school's determination with a level (first, or a re-assessment)."""
        case = self._case(call)
        event = cases.determine_case(case, call.body, policy_now(), sealer(), local_date(config.now()))
        return self._record(call, case, event)

    @route(
        "POST",
        "/cases/<case_id>/changes",
        roles=STAFF,
        body=ReportChange,
        returns=Recorded,
        status=201,
        idempotent=True,
    )
    def report_change(self, call: Call) -> Answer:
        """A family's situation changed: the case is due for re-assessment."""
        case = self._case(call)
        return self._record(call, case, cases.report_change(case, call.body, sealer()))

    @route(
        "POST",
        "/cases/<case_id>/objections",
        roles=STAFF,
        body=FileObjection,
        returns=Recorded,
        status=201,
        idempotent=True,
    )
    def file_objection(self, call: Call) -> Answer:
        """Record an objection to a public notice, within its objection period."""
        case = self._case(call)
        opened = case.opened or {}
        year = self._year(opened["school_id"], opened["school_year"])
        return self._record(call, case, cases.file_objection(case, call.body, year, sealer()))

    @route(
        "POST",
        "/cases/<case_id>/objections/<objection_id>/review",
        roles=STAFF,
        body=ReviewObjection,
        returns=Recorded,
        status=201,
        idempotent=True,
    )
    def review_objection(self, call: Call) -> Answer:
        """Review an objection (复核); upheld sets a new level (a new determination)."""
        objection_id = call.path["objection_id"]
        case = self._case(call)
        out = cases.review_objection(case, objection_id, call.body, sealer(), local_date(config.now()))
        return self._record(call, case, *out)

    @route(
        "POST",
        "/cases/<case_id>/revocation",
        roles=STAFF,
        body=Revoke,
        returns=Recorded,
        status=201,
        idempotent=True,
    )
    def revoke(self, call: Call) -> Answer:
        """Revoke for false information: aid stops from the next month; the amount to recover is recorded."""
        case = self._case(call)
        event = cases.revoke_case(case, call.body, policy_now(), local_date(config.now()))
        return self._record(call, case, event)

    # ------------------------------------------------------------------ reads

    @route("GET", "/cases/<case_id>", roles=READERS, personal=True)
    def get_case(self, call: Call) -> Answer:
        """A case with its steps, the sealed details opened (every read is recorded)."""
        case = self._case(call)
        opened = case.opened or {}
        call.read_personal(opened["student_id"])
        year = self._year(opened["school_id"], opened["school_year"])
        return 200, self._detail(case, year)

    @route("GET", "/schools/<school_id>/cases", roles=READERS, query=YearQuery)
    def school_cases(self, call: Call) -> Answer:
        """A school's cases of a school year: status and level (every student listed is a read)."""
        school_id = call.path["school_id"]
        school_for(call, self.store, school_id)
        year_id = call.query.school_year
        year = self._year(school_id, year_id)
        out = []
        semester = semester_of(local_date(config.now()))
        for case in self._school_cases(school_id, year_id):
            opened = case.opened or {}
            call.read_personal(opened["student_id"])
            current = case.current
            out.append(
                {
                    "case_id": case.case_id,
                    "student_id": opened["student_id"],
                    "stage": opened["stage"],
                    "status": cases.status_of(case, year),
                    "level": current["level"] if current and case.revoked is None else None,
                    "semester_review_due": cases.semester_review_due(case, semester),
                }
            )
        return 200, {
            "school_id": school_id,
            "school_year": year_id,
            "notice_issued": year.notice is not None,
            "archived": year.archived is not None,
            "publications": [
                {k: p[k] for k in ("notice_id", "published_on", "objections_until")}
                | {"cases": len(p["case_ids"])}
                for p in year.publications
            ],
            "cases": out,
        }

    def _detail(self, case: cases.CaseView, year: cases.SchoolYearView) -> dict[str, Any]:
        opened = case.opened or {}
        cid = case.case_id
        assessment = None
        if case.assessment:
            a = case.assessment
            assessment = {k: a[k] for k in ("policy_version", "score", "suggested_level")} | _unseal(
                a["sealed"], f"HardshipAssessed:{cid}"
            )
        return {
            "case_id": cid,
            "student_id": opened["student_id"],
            "school_id": opened["school_id"],
            "school_year": opened["school_year"],
            "stage": opened["stage"],
            "route": opened["route"],
            "household_registration": opened["household_registration"],
            "tier": opened.get("tier"),
            "status": cases.status_of(case, year),
            "application": _unseal(opened["sealed"], f"HardshipCaseOpened:{cid}"),
            "comparison": case.comparisons,
            "assessment": assessment,
            "reviews": [
                {
                    "review_id": r["review_id"],
                    "kind": r["kind"],
                    "proposed_level": r.get("proposed_level"),
                    **_unseal(r["sealed"], f"HardshipReviewRecorded:{r['review_id']}"),
                }
                for r in case.reviews
            ],
            "determinations": [
                {
                    k: d.get(k)
                    for k in (
                        "determination_id",
                        "level",
                        "categories",
                        "effective_semester",
                        "effective_month",
                        "methods",
                        "trigger",
                    )
                }
                | (_unseal(d.get("sealed"), f"HardshipDetermined:{d['determination_id']}") or {})
                for d in case.determinations
            ],
            "changes": [{"reported_on": c["reported_on"]} for c in case.changes],
            "objections": [
                {
                    "objection_id": o["objection_id"],
                    "notice_id": o["notice_id"],
                    "filed_on": o["filed_on"],
                    "outcome": o["outcome"],
                }
                for o in case.objections.values()
            ],
            "revocation": None
            if case.revoked is None
            else {
                k: case.revoked.get(k)
                for k in ("reason", "revoked_on", "effective_month", "recover_yuan", "recover_months")
            },
        }

    # ------------------------------------------------------------------ public notice, archive

    @route(
        "POST",
        "/schools/<school_id>/public-notices",
        roles=STAFF,
        body=PublishNotice,
        status=201,
        idempotent=True,
    )
    def publish_notice(self, call: Call) -> Answer:
        """Public notice (公示) of the determinations not yet noticed, with its objection period."""
        school_id = call.path["school_id"]
        school_for(call, self.store, school_id)
        cmd: PublishNotice = call.body
        year = self._year(school_id, cmd.school_year)
        event = cases.publish_notice(
            cmd, school_id, year, self._school_cases(school_id, cmd.school_year), policy_now()
        )
        stored = self.store.record(
            event,
            cases.school_year_stream(school_id, cmd.school_year),
            call.actor(),
            expected_version=year.version,
        )
        return 201, {
            "notice_id": event.notice_id,
            "cases": len(event.case_ids),
            "objections_until": event.objections_until,
            "event_id": str(stored.event_id),
        }

    def _notice_rows(
        self, school_id: str, school_year: str, notice_id: str
    ) -> tuple[str, list[str], list[list[str]]]:
        year = self._year(school_id, school_year)
        publication = next((p for p in year.publications if p["notice_id"] == notice_id), None)
        if publication is None:
            raise NotFound("UNKNOWN_NOTICE", f"no public notice {notice_id}")
        policy = policy_now()
        rows: list[list[str]] = []
        shown = dict(zip(publication["case_ids"], publication.get("determination_ids") or [], strict=False))
        for case_id in publication["case_ids"]:
            case = cases.case_view(case_id, self.store.read_stream(cases.case_stream(case_id)))
            opened = case.opened or {}
            det = next((d for d in case.determinations if d["determination_id"] == shown.get(case_id)),
                       case.current)
            label = policy.stages[opened["stage"]].levels.get(det["level"]) if det else None
            if label is None:  # not identified as difficult: not listed (no one learns who applied)
                continue
            student = student_view(
                opened["student_id"], self.store.read_stream(student_stream(opened["student_id"]))
            )
            reg = student.registered
            name, class_name = (reg.name_masked, reg.class_name) if reg else ("*", "")
            rows.append([str(len(rows) + 1), name, class_name, label])
        from contracts.students import school_stream, school_view

        school = school_view(school_id, self.store.read_stream(school_stream(school_id))).registered
        title = f"{school_year}学年家庭经济困难学生认定结果公示"
        lines = exports.notice_lines(
            school.name if school else school_id,
            school_year,
            publication["published_on"],
            publication["objections_until"],
        )
        return title, lines, rows

    @route(
        "GET",
        "/schools/<school_id>/public-notices/<notice_id>/pdf",
        roles=READERS,
        query=YearQuery,
        returns=FileExport,
    )
    def notice_pdf(self, call: Call) -> Answer:
        """The public notice as PDF (masked name, class, level only), base64."""
        school_id = call.path["school_id"]
        notice_id = call.path["notice_id"]
        school_for(call, self.store, school_id)
        title, lines, rows = self._notice_rows(school_id, call.query.school_year, notice_id)
        content = exports.notice_pdf(title, lines, rows)
        return 200, FileExport(
            filename=f"公示-{school_id}-{notice_id}.pdf",
            media_type="application/pdf",
            content_base64=base64.b64encode(content).decode(),
            rows=len(rows),
        )

    @route(
        "GET",
        "/schools/<school_id>/public-notices/<notice_id>/xlsx",
        roles=READERS,
        query=YearQuery,
        returns=FileExport,
    )
    def notice_xlsx(self, call: Call) -> Answer:
        """The public notice as XLSX (masked name, class, level only), base64."""
        school_id = call.path["school_id"]
        notice_id = call.path["notice_id"]
        school_for(call, self.store, school_id)
        title, lines, rows = self._notice_rows(school_id, call.query.school_year, notice_id)
        content = exports.xlsx(title, lines, exports.NOTICE_HEADER, rows)
        return 200, FileExport(
            filename=f"公示-{school_id}-{notice_id}.xlsx",
            media_type=XLSX,
            content_base64=base64.b64encode(content).decode(),
            rows=len(rows),
        )

    @route("POST", "/schools/<school_id>/archive", roles=STAFF, body=Archive, status=201, idempotent=True)
    def archive(self, call: Call) -> Answer:
        """Archive and report (建档备案) the school year, once no objection is open."""
        school_id = call.path["school_id"]
        school_for(call, self.store, school_id)
        cmd: Archive = call.body
        year = self._year(school_id, cmd.school_year)
        event = cases.archive(
            school_id, cmd.school_year, cmd.archived_on, year, self._school_cases(school_id, cmd.school_year)
        )
        stored = self.store.record(
            event,
            cases.school_year_stream(school_id, cmd.school_year),
            call.actor(),
            expected_version=year.version,
        )
        return 201, {
            "archive_id": event.archive_id,
            "cases": len(event.case_ids),
            "event_id": str(stored.event_id),
        }

    @route("GET", "/schools/<school_id>/archive", roles=READERS, query=YearQuery, returns=FileExport)
    def archive_export(self, call: Call) -> Answer:
        """The year's archive as XLSX (masked names; categories and methods for the authorities)."""
        school_id = call.path["school_id"]
        school_for(call, self.store, school_id)
        year_id = call.query.school_year
        year = self._year(school_id, year_id)
        if year.archived is None:
            raise NotFound("NOT_ARCHIVED", f"school year {year_id} is not archived")
        policy = policy_now()
        rows = []
        for seq, case in enumerate(self._school_cases(school_id, year_id), 1):
            opened = case.opened or {}
            call.read_personal(opened["student_id"])
            student = student_view(
                opened["student_id"], self.store.read_stream(student_stream(opened["student_id"]))
            )
            reg = student.registered
            det = case.current or {}
            publication = year.publication_of(case.case_id)
            rows.append(
                [
                    str(seq),
                    opened["student_id"],
                    reg.name_masked if reg else "*",
                    reg.class_name if reg else "",
                    opened["stage"],
                    policy.stages[opened["stage"]].levels.get(det.get("level", ""), "不困难"),
                    ",".join(str(c) for c in det.get("categories", [])),
                    ",".join(det.get("methods", [])),
                    det.get("effective_semester", ""),
                    publication["published_on"] if publication else "",
                    cases.status_of(case, year),
                ]
            )
        title = f"{year_id}学年家庭经济困难学生认定档案"
        content = exports.xlsx(
            title,
            [f"学校：{school_id}", f"建档日期：{year.archived['archived_on']}"],
            exports.ARCHIVE_HEADER,
            rows,
        )
        return 200, FileExport(
            filename=f"档案-{school_id}-{year_id}.xlsx",
            media_type=XLSX,
            content_base64=base64.b64encode(content).decode(),
            rows=len(rows),
        )


SERVICE = HardshipService
