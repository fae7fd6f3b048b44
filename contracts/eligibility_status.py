"""The eligibility status: one student's aid status for one semester, with the event ids behind
every decision, as the replay writes it (``--out-json``) and the live projection stores it.

These frozen dataclasses are the source of ``contracts/schemas/eligibility-status.v1.json``
(``python -m contracts generate``; ``check`` and a test fail when the file is stale). The
rules (``services/eligibility/domain/rules.py``) derive statuses as plain dicts, for speed;
:meth:`EligibilityStatus.from_dict` reads one into the model (refusing a missing or an unknown
field) and :meth:`~EligibilityStatus.to_dict` gives it back. ``Annotated[..., {...}]`` adds
JSON-Schema keywords (pattern, format, minimum, description) to a field's generated schema.
"""

from __future__ import annotations

import dataclasses
import json
import types
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import (
    Annotated,
    Any,
    ClassVar,
    Final,
    Literal,
    NamedTuple,
    TypeVar,
    Union,
    cast,
    dataclass_transform,
    get_args,
    get_origin,
    get_type_hints,
)

SCHEMA_ID: Final = "eligibility-status.v1"

MONTH_PATTERN = "^[0-9]{4}-[0-9]{2}$"
EventIds = Annotated[list[str], {"items": {"type": "string", "format": "uuid"}}]
Month = Annotated[str, {"pattern": MONTH_PATTERN}]
MonthStatusName = Literal["passed", "excused", "forced_pass", "failed", "pending", "no_check",
                          "placement_internship", "not_enrolled_in_time", "replaced_by_targeted",
                          "passed_on_appeal", "left_school"]
Outcome = Literal["passed", "failed", "pending", "no_check", "left"]
RuleName = Literal["roster_mismatch", "unfiled_internship", "no_hardship_determination",
                   "placement_internship", "failed_check_month", "check_pending", "awaiting_check",
                   "fewer_than_consecutive_passed", "left_school"]

M = TypeVar("M", bound="Model")


class Model:
    """Base of the status records: strict reading from, and writing to, JSON-ready dicts.

    Reading checks that the fields are exactly the record's and reads nested records; it does
    not check the values' types (the schema does, and mypy where records are built in code).
    It fills the instance without calling ``__init__``: statuses are read by the hundred thousand.
    """

    DEF: ClassVar[str] = ""  # the name of the record's schema in ``$defs``

    @classmethod
    def from_dict(cls: type[M], data: dict[str, Any]) -> M:
        spec = _spec(cls)
        if data.keys() != spec.names:
            unknown, missing = data.keys() - spec.names, spec.names - data.keys()
            if unknown:
                raise TypeError(f"{cls.__name__}: unknown field(s) {sorted(unknown)}")
            raise TypeError(f"{cls.__name__}: missing field {sorted(missing)[0]!r}")
        values = dict(data)
        for name, read in spec.read:
            values[name] = read(values[name])
        record = object.__new__(cls)
        record.__dict__.update(values)
        return record

    def to_dict(self) -> dict[str, Any]:
        values = dict(self.__dict__)
        for name, write in _spec(type(self)).write:
            values[name] = write(values[name])
        return values

    def to_json(self) -> str:
        """``json.dumps(self.to_dict())``, without building the dicts."""
        return json.dumps(self, ensure_ascii=False, default=_record_fields)


@dataclass_transform(frozen_default=True)
def record(name: str) -> Callable[[type[M]], type[M]]:
    """Declare a status record: a frozen dataclass, ``#/$defs/<name>`` in the generated schema."""

    def declare(cls: type[M]) -> type[M]:
        cls.DEF = name
        return dataclass(frozen=True)(cls)

    return declare


def _record_fields(value: Any) -> dict[str, Any]:
    if isinstance(value, Model):
        return value.__dict__
    raise TypeError(f"{type(value).__name__} is not a status record")


# --------------------------------------------------------------------------- the records


@record("rule")
class Rule(Model):
    rule: RuleName
    month: Annotated[str | None, {"pattern": MONTH_PATTERN}]
    event_ids: EventIds


@record("check")
class CheckResult(Model):
    check_id: str
    kind: Literal["routine", "targeted"]
    result: Literal["passed", "forced_pass", "excused", "failed", "pending", "placement", "left"]
    reason: Annotated[
        Literal[None, "leave", "cognitive_internship", "shadowing_internship", "no_capture",
                "leave_reported_late", "unfiled_internship", "not_enrolled_in_time",
                "leave_in_targeted_check", "verdict_pending", "internship_filed_late"],
        {"description": "excuse when excused; why when failed or pending"}]
    event_ids: EventIds


@record("replaced")
class Replaced(Model):
    status: MonthStatusName
    outcome: Outcome


@record("month")
class MonthStatus(Model):
    month: Month
    status: MonthStatusName
    outcome: Annotated[Outcome, {"description": "what the rules count: placement months count as passed;"
                                                " left: after the student left school"}]
    provisional: Annotated[bool, {"description": "took part under a provisional enrolment"}]
    excuse: Literal[None, "leave", "cognitive_internship", "shadowing_internship"]
    replaced: Annotated[Replaced | None,
                        {"description": "the result a targeted check or an approved appeal replaced"}]
    notes: list[str]
    checks: list[CheckResult]
    event_ids: EventIds


@record("grant")
class GrantMonth(Model):
    month: Month
    decision: Literal["granted", "withheld", "pending"]
    amount_yuan: Annotated[int | None, {"minimum": 0}]
    policy_version: str
    rules: Annotated[list[Rule], {"description": "withholding rules (first = main reason) or, when pending,"
                                                 " what it waits for"}]
    event_ids: EventIds


@record("waiver")
class Waiver(Model):
    decision: Literal["granted", "denied", "pending"]
    required_consecutive: Annotated[int, {"minimum": 1}]
    longest_passed_run: Annotated[int, {"minimum": 0}]
    rules: list[Rule]
    event_ids: EventIds


@record("placement")
class PlacementStatus(Model):
    placement_id: str
    starts_on: str
    ends_on: str
    in_force_from: str | None
    ignored: Literal[None, "first_year_not_allowed", "not_filed", "ended_before_start", "invalid_dates"]
    event_ids: EventIds


@record("participation")
class Participation(Model):
    status: Literal["enrolled", "provisional", "not_enrolled_in_time", "not_enrolled", "not_registered",
                    "not_proposed_for_aid"]
    deadline: Annotated[str | None, {"format": "date"}]
    event_ids: EventIds


@record("hardship")
class HardshipStatus(Model):
    status: Literal["in_force", "none", "not_difficult", "revoked"]
    level: Literal[None, "especially_difficult", "difficult", "not_difficult"]
    determination_id: str | None
    event_ids: EventIds


@record("roster")
class RosterStatus(Model):
    status: Literal["not_imported", "matched", "system_only", "national_only", "id_mismatch", "not_listed"]
    import_id: str | None
    event_ids: EventIds


@record("suspension")
class Suspension(Model):
    rule: Literal["unfiled_internship"]
    months: list[str]
    event_ids: EventIds


@record("status")
class EligibilityStatus(Model):
    """One student's aid status for one semester (a row of the live projection)."""

    schema: Literal["eligibility-status.v1"]
    student_id: Annotated[str, {"description": "national student number (全国学籍系统学号)"}]
    semester: Annotated[str, {"pattern": "^[0-9]{4}-(spring|autumn)$"}]
    school_id: str | None
    city: str | None
    county: str | None
    name_masked: Annotated[str | None, {"description": "as registered, already masked"}]
    grade: int | None
    class_name: str | None
    policy_version: Annotated[str, {"description": "policy version in force at the semester's start"}]
    participation: Participation
    hardship: HardshipStatus
    roster: RosterStatus
    placements: list[PlacementStatus]
    suspension: Suspension | None
    months: Annotated[list[MonthStatus], {"description": "one per check month"}]
    grant: Annotated[list[GrantMonth], {"description": "one per aid month"}]
    grant_total_yuan: Annotated[int, {"minimum": 0}]
    tuition_waiver: Waiver


# --------------------------------------------------------------------------- the document


@dataclass(frozen=True, kw_only=True)
class ReportHeader(Model):
    """What a status report says about itself, before its statuses."""

    schema: Literal["eligibility-status.v1"]
    generated_at: Annotated[str, {"format": "date-time"}]
    as_of: Annotated[str | None, {"format": "date-time",
                                  "description": "only events recorded on or before this instant were used"}]
    source: str
    policy_versions: list[str]
    filters: dict[str, list[str]] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class StatusDocument(ReportHeader):
    """Eligibility statuses (replay output and projection rows).

    The document written by `python -m services.eligibility.replay --out-json`. Each item of
    `statuses` (and each `eligibility_status.status` row of the live projection) is a
    `#/$defs/status`: one student's aid status for one semester, with the event ids behind
    every decision. Generated from `contracts/eligibility_status.py`.
    """

    statuses: list[EligibilityStatus]
    count: Annotated[int, {"minimum": 0}]


# --------------------------------------------------------------------------- reading and writing


def unwrap(tp: Any) -> Any:
    """The type inside ``Annotated[...]``."""
    return get_args(tp)[0] if hasattr(tp, "__metadata__") else tp


def _model(tp: Any) -> type[Model] | None:
    return tp if isinstance(tp, type) and issubclass(tp, Model) else None


def _converter(tp: Any,
               convert: Callable[[type[Model]], Callable[[Any], Any]]) -> Callable[[Any], Any] | None:
    """How a field of type ``tp`` is read or written (``convert`` gives it for a record); None:
    as it is (strings, numbers, lists of them)."""
    tp = unwrap(tp)
    model = _model(tp)
    if model is not None:
        return convert(model)
    origin = get_origin(tp)
    if origin is list:
        item = _converter(get_args(tp)[0], convert)
        return None if item is None else (lambda v: [item(i) for i in v])
    if origin in (Union, types.UnionType):
        (arg,) = [a for a in get_args(tp) if a is not type(None)]
        inner = _converter(arg, convert)
        return None if inner is None else (lambda v: None if v is None else inner(v))
    return None


class _Spec(NamedTuple):
    names: frozenset[str]
    read: tuple[tuple[str, Callable[[Any], Any]], ...]  # the fields holding records, and how
    write: tuple[tuple[str, Callable[[Any], Any]], ...]


_SPECS: dict[type[Model], _Spec] = {}


def _spec(cls: type[Model]) -> _Spec:
    found = _SPECS.get(cls)
    if found is None:
        hints = get_type_hints(cls, include_extras=True)
        fields = [f.name for f in dataclasses.fields(cast(Any, cls))]
        read = ((name, _converter(hints[name], lambda m: m.from_dict)) for name in fields)
        write = ((name, _converter(hints[name], lambda m: m.to_dict)) for name in fields)
        found = _SPECS[cls] = _Spec(frozenset(fields), tuple((n, f) for n, f in read if f is not None),
                                    tuple((n, f) for n, f in write if f is not None))
    return found
