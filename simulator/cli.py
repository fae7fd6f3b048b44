"""``aid sim``: drive a semester by hand against the running services, as a school terminal,
the school's aid office, an authority and operations would.

Every command prints the service's answer as JSON on stdout. A refusal prints one line on
stderr (``aid sim: HTTP 409 ALREADY_CLOSED: ...``). Exit codes: 0 done; 1 the service refused
(4xx) or failed (5xx); 2 bad usage or a file that cannot be read; 3 a service or the issuer
did not answer; 4 ``capture``/``enrol``/``verdict --wait``: the capture was rejected (5: still
undecided when the wait ended).
"""

from __future__ import annotations

import argparse
import base64
import json
import sys
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path
from typing import Any

from simulator.client import AidClient, ApiError, Authority, Unreachable, read_files

SHANGHAI = timezone(timedelta(hours=8))
EXIT_REFUSED, EXIT_USAGE, EXIT_UNREACHABLE, EXIT_REJECTED, EXIT_UNDECIDED = 1, 2, 3, 4, 5


class Usage(Exception):
    """A wrong argument the service never saw (exit 2)."""


def _out(answer: Any) -> None:
    print(json.dumps(answer, ensure_ascii=False, indent=2))


def _school(args: argparse.Namespace) -> str:
    if not args.school:
        raise Usage("name the school: --school SCHOOL_ID (or set AID_SIM_SCHOOL)")
    return str(args.school)


def _instant(text: str, today: date) -> str:
    """``HH:MM`` (today, Asia/Shanghai) or a full ISO 8601 instant."""
    try:
        if len(text) <= 5 and ":" in text:
            hour, minute = (int(x) for x in text.split(":"))
            return datetime.combine(today, time(hour, minute), SHANGHAI).isoformat()
        parsed = datetime.fromisoformat(text)
        return (parsed if parsed.tzinfo else parsed.replace(tzinfo=SHANGHAI)).isoformat()
    except ValueError:
        raise Usage(f"not a time: {text!r} (HH:MM today, or 2026-10-22T10:00:00+08:00)") from None


def _by(args: argparse.Namespace) -> Authority:
    return Authority(args.by, args.city, args.county)


def _verdict_exit(verdict: dict[str, Any]) -> int:
    return {"verified": 0, "rejected": EXIT_REJECTED}.get(str(verdict.get("status")), EXIT_UNDECIDED)


# ----------------------------------------------------------------------------- commands


def cmd_school(client: AidClient, args: argparse.Namespace) -> int:
    _out(client.register_school(args.school_id, args.name, args.city, args.county, args.direct))
    return 0


def cmd_terminal(client: AidClient, args: argparse.Namespace) -> int:
    _out(client.register_terminal(args.terminal_id, _school(args), args.label))
    print(f"credentials of {args.terminal_id} kept in {client.tokens.credentials.path}", file=sys.stderr)
    return 0


def cmd_roster(client: AidClient, args: argparse.Namespace) -> int:
    path = Path(args.file)
    fmt = args.format or ("xlsx" if path.suffix.lower() == ".xlsx" else "csv")
    (content,) = read_files([path])
    report = client.import_roster(_school(args), content, fmt, args.dry_run)
    _out(report)
    return 0


def cmd_check_open(client: AidClient, args: argparse.Namespace) -> int:
    today = date.fromisoformat(args.day) if args.day else datetime.now(SHANGHAI).date()
    kind = "targeted" if args.student else "routine"
    schools = args.check_school or ([args.school] if args.school and not args.student else None)
    _out(client.open_check(_instant(args.opens, today), _instant(args.closes, today), schools,
                           args.student, kind, _by(args)))
    return 0


def cmd_check_close(client: AidClient, args: argparse.Namespace) -> int:
    _out(client.close_check(args.check_id, _by(args)))
    return 0


def _decided(client: AidClient, args: argparse.Namespace, answer: dict[str, Any]) -> int:
    if not args.wait:
        _out(answer)
        return 0
    verdict = client.wait_verdict(answer["capture_id"], args.wait, terminal_id=args.terminal)
    _out(verdict)
    return _verdict_exit(verdict)


def _frame_times(args: argparse.Namespace, frames: int) -> list[int] | None:
    """``--frame-times 0,350,700`` (ms of the camera's clock, one per frame); with a challenge and
    no times, frames are taken as 400 ms apart."""
    if args.frame_times:
        try:
            times = [int(t) for t in args.frame_times.split(",")]
        except ValueError:
            raise Usage("--frame-times takes whole milliseconds, comma-separated: 0,350,700") from None
        if len(times) != frames:
            raise Usage(f"--frame-times gives {len(times)} times for {frames} frames")
        return times
    return [400 * n for n in range(frames)] if args.challenge else None


def cmd_challenge(client: AidClient, args: argparse.Namespace) -> int:
    _out(client.challenge(args.terminal, args.student_id, args.check))
    return 0


def cmd_enrol(client: AidClient, args: argparse.Namespace) -> int:
    frames = read_files(args.frames)
    (id_photo,) = read_files([args.id_photo])
    answer = client.enrol(args.terminal, args.student_id, frames, id_photo, args.challenge,
                          _frame_times(args, len(frames)))
    return _decided(client, args, answer)


def cmd_capture(client: AidClient, args: argparse.Namespace) -> int:
    frames = read_files(args.frames)
    answer = client.capture(args.terminal, args.check_id, args.student_id, frames, args.attempt,
                            args.challenge, _frame_times(args, len(frames)))
    return _decided(client, args, answer)


def cmd_leave(client: AidClient, args: argparse.Namespace) -> int:
    _out(client.record_leaving(_school(args), args.student_id, args.reason, args.on, args.to))
    return 0


def cmd_results(client: AidClient, args: argparse.Namespace) -> int:
    answer = client.results_list(_school(args), args.month, args.format)
    if args.out and answer.get("content_base64"):
        Path(args.out).write_bytes(base64.b64decode(answer["content_base64"]))
        print(f"{answer.get('filename')} written to {args.out}", file=sys.stderr)
        answer = {k: v for k, v in answer.items() if k != "content_base64"}
    _out(answer)
    return 0


def cmd_absence(client: AidClient, args: argparse.Namespace) -> int:
    reported = _instant(args.reported_at, datetime.now(SHANGHAI).date()) if args.reported_at else None
    _out(client.mark_absence(_school(args), args.check_id, args.student_id, args.reason, reported))
    return 0


def cmd_internship(client: AidClient, args: argparse.Namespace) -> int:
    if args.action == "file":
        if not (args.kind and args.starts and args.ends and args.education_filed and args.aid_filed):
            raise Usage("internship file needs --kind --starts --ends --education-filed --aid-filed")
        _out(client.file_internship(_school(args), args.target, args.kind, args.starts, args.ends,
                                    args.education_filed, args.aid_filed))
    else:
        if not args.on:
            raise Usage(f"internship {args.action} needs --on YYYY-MM-DD")
        _out(client.internship_moved(_school(args), args.target, args.action, args.on))
    return 0


def cmd_placement(client: AidClient, args: argparse.Namespace) -> int:
    if args.action == "confirm":
        if not args.terminal:
            raise Usage("a placement is confirmed at a terminal: --terminal TERMINAL_ID")
        _out(client.confirm_placement(args.terminal, {
            "student_id": args.target, "company": args.company, "location": args.location,
            "supervisor": args.supervisor, "supervisor_contact": args.contact, "starts_on": args.starts,
            "ends_on": args.ends, "remark": args.remark}))
    elif args.action == "end":
        if not args.on:
            raise Usage("placement end needs --on YYYY-MM-DD")
        _out(client.end_placement(_school(args), args.target, args.on))
    else:
        changes = {"company": args.company, "location": args.location, "supervisor": args.supervisor,
                   "supervisor_contact": args.contact, "starts_on": args.starts, "ends_on": args.ends}
        _out(client.update_placement(_school(args), args.target, {k: v for k, v in changes.items() if v}))
    return 0


def cmd_force_pass(client: AidClient, args: argparse.Namespace) -> int:
    (evidence,) = read_files([args.evidence])
    _out(client.force_pass(args.terminal, args.check_id, args.student_id, evidence))
    return 0


def cmd_publish(client: AidClient, args: argparse.Namespace) -> int:
    _out(client.publish(_school(args), args.month))
    return 0


def cmd_hardship(client: AidClient, args: argparse.Namespace) -> int:
    _out(client.determine_hardship(_school(args), args.student_id, args.category, args.semester, args.method))
    return 0


def cmd_verdict(client: AidClient, args: argparse.Namespace) -> int:
    if not args.terminal and not args.school:
        raise Usage("read a verdict as the terminal (--terminal) or the school's staff (--school)")
    if args.wait:
        verdict = client.wait_verdict(args.capture_id, args.wait, args.terminal, args.school)
    else:
        verdict = client.verdict(args.capture_id, 0, args.terminal, args.school)
    _out(verdict)
    return _verdict_exit(verdict) if args.wait else 0


def cmd_status(client: AidClient, args: argparse.Namespace) -> int:
    _out(client.aid_status(_school(args), args.student_id, args.semester))
    return 0


def cmd_month(client: AidClient, args: argparse.Namespace) -> int:
    _out(client.school_month(_school(args), args.month))
    return 0


# ----------------------------------------------------------------------------- parser


def _parser() -> argparse.ArgumentParser:
    import os

    parser = argparse.ArgumentParser(
        prog="aid sim", description="Drive a semester by hand: a school terminal, the school's aid office, an"
        " authority and operations, against the running services. Service addresses: AID_ENROLMENT_URL,"
        " AID_SPOTCHECK_URL, AID_ELIGIBILITY_URL, AID_HARDSHIP_URL (default 127.0.0.1:8001..8006) and the"
        " issuer AID_AUTH_ISSUER (default 127.0.0.1:9000). People's tokens: AID_SIM_TOKEN, else the"
        " development issuer's key (as aid auth token); terminals: client credentials at the issuer.",
        epilog="exit codes: 0 done, 1 refused by a service, 2 usage, 3 unreachable, 4 capture rejected,"
               " 5 capture still undecided")
    parser.add_argument("--school", default=os.environ.get("AID_SIM_SCHOOL"),
                        help="the school whose staff act (default AID_SIM_SCHOOL)")
    parser.add_argument("--timeout", type=float, default=30, help="seconds per request (default 30)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    school = argparse.ArgumentParser(add_help=False)
    school.add_argument("--school", default=argparse.SUPPRESS, help="the school whose staff act")

    def add(name: str, func: Any, help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text, parents=[school])
        p.set_defaults(func=func)
        return p

    def authority_options(p: argparse.ArgumentParser) -> None:
        p.add_argument("--by", choices=("province", "city", "county"), default="province",
                       help="the authority acting (default province)")
        p.add_argument("--city", help="the city of a city or county authority")
        p.add_argument("--county", help="the county of a county authority")

    def challenge_options(p: argparse.ArgumentParser) -> None:
        p.add_argument("--challenge", metavar="CHALLENGE_ID",
                       help="the liveness challenge the burst answers (aid sim challenge)")
        p.add_argument("--frame-times", metavar="MS,MS,...",
                       help="when each frame was taken, ms (default with a challenge: 400 ms apart)")

    def wait_option(p: argparse.ArgumentParser) -> None:
        p.add_argument("--wait", type=int, default=0, metavar="SECONDS",
                       help="wait up to SECONDS for the verdict and print it (exit 4 if rejected)")

    p = add("school", cmd_school, "operations: register a school (or correct its registration)")
    p.add_argument("school_id")
    p.add_argument("--name", required=True)
    p.add_argument("--city", required=True)
    p.add_argument("--county", required=True)
    p.add_argument("--direct", action="store_true", help="directly administered by the province (直属)")

    p = add("terminal", cmd_terminal, "operations: register a terminal of --school; its client credentials"
                                      " are kept in AID_SIM_DIR (default var/sim) for the terminal commands")
    p.add_argument("terminal_id")
    p.add_argument("--label")

    p = add("roster", cmd_roster, "school: import the roster of proposed-aid students (CSV or XLSX) and"
                                  " print the per-row report")
    p.add_argument("file")
    p.add_argument("--format", choices=("csv", "xlsx"), help="default: from the file's extension")
    p.add_argument("--dry-run", action="store_true", help="check every row, record nothing")

    p = add("hardship", cmd_hardship, "school: record a student's family-hardship determination")
    p.add_argument("student_id")
    p.add_argument("--category", type=int, action="append", default=[], help="1..8, repeatable")
    p.add_argument("--semester", required=True, help="effective semester, e.g. 2026-autumn")
    p.add_argument("--method", action="append", default=[], required=True,
                   help="information_comparison, quantitative_assessment, school_review or"
                        " school_investigation; repeatable")

    p = add("open", cmd_check_open, "authority: open a check today; routine for --school (or each"
                                    " --check-school), targeted with --student (directly administered"
                                    " schools)")
    p.add_argument("--opens", default="10:00", help="HH:MM today (Asia/Shanghai) or ISO 8601 (default 10:00)")
    p.add_argument("--closes", default="15:00", help="HH:MM or ISO 8601 (default 15:00)")
    p.add_argument("--day", help="the day of HH:MM times (default today in Asia/Shanghai)")
    p.add_argument("--check-school", action="append", help="a school the routine check covers; repeatable")
    p.add_argument("--student", action="append", help="a student of a targeted check; repeatable")
    authority_options(p)

    p = add("close", cmd_check_close, "authority: close a check")
    p.add_argument("check_id")
    authority_options(p)

    p = add("enrol", cmd_enrol, "terminal: new capture (新增采集) of a registered student: a burst of 3-10"
                                " live frames and the ID-card photo")
    p.add_argument("student_id")
    p.add_argument("frames", nargs="+", help="photo files of the live burst")
    p.add_argument("--id-photo", required=True, help="the photo read from the ID card")
    p.add_argument("--terminal", required=True)
    challenge_options(p)
    wait_option(p)

    p = add("capture", cmd_capture, "terminal: check a student in (a burst of 3-10 frames) during a check")
    p.add_argument("check_id")
    p.add_argument("student_id")
    p.add_argument("frames", nargs="+", help="photo files of the live burst")
    p.add_argument("--terminal", required=True)
    p.add_argument("--attempt", type=int, default=1, help="the confirmation attempt, 1..10")
    challenge_options(p)
    wait_option(p)

    p = add("challenge", cmd_challenge, "terminal: draw the liveness action (blink, turn_left, turn_right)"
                                        " the student's next burst must show; with --check for a check-in,"
                                        " else for a new capture")
    p.add_argument("student_id")
    p.add_argument("--terminal", required=True)
    p.add_argument("--check", help="the check of the check-in (omit for a new capture)")

    p = add("absence", cmd_absence, "school: mark why a student misses a check")
    p.add_argument("check_id")
    p.add_argument("student_id")
    p.add_argument("--reason", required=True,
                   choices=("leave", "cognitive_internship", "shadowing_internship"))
    p.add_argument("--reported-at", help="when the papers reached the aid office (HH:MM or ISO; default now)")

    p = add("leave", cmd_leave, "school: the student left school (withdrawn, graduated or transferred);"
                                " aid stops from the next month")
    p.add_argument("student_id")
    p.add_argument("--reason", required=True, choices=("withdrawn", "graduated", "transferred"))
    p.add_argument("--on", required=True, help="the day the student left, YYYY-MM-DD")
    p.add_argument("--to", help="the school a transferred student went to")

    p = add("internship", cmd_internship, "school: file an internship plan (file STUDENT), or record the"
                                          " student's departure or return (departed|returned PLAN_ID --on)")
    p.add_argument("action", choices=("file", "departed", "returned"))
    p.add_argument("target", metavar="STUDENT_OR_PLAN")
    p.add_argument("--kind", choices=("cognitive", "shadowing"))
    p.add_argument("--starts", help="departure day, YYYY-MM-DD")
    p.add_argument("--ends", help="last day, YYYY-MM-DD")
    p.add_argument("--education-filed", help="day filed with the education department")
    p.add_argument("--aid-filed", help="day filed with the aid authority")
    p.add_argument("--on", help="day of the departure or return")

    p = add("placement", cmd_placement, "terminal: confirm a placement internship (顶岗实习)"
                                        " (confirm STUDENT); school: update or end it early"
                                        " (update|end PLACEMENT_ID)")
    p.add_argument("action", choices=("confirm", "update", "end"))
    p.add_argument("target", metavar="STUDENT_OR_PLACEMENT")
    p.add_argument("--terminal")
    p.add_argument("--company")
    p.add_argument("--location")
    p.add_argument("--supervisor")
    p.add_argument("--contact", help="the supervisor's telephone number")
    p.add_argument("--starts")
    p.add_argument("--ends")
    p.add_argument("--remark")
    p.add_argument("--on", help="end: the day it ended")

    p = add("force-pass", cmd_force_pass, "terminal: forced pass after three failed confirmations, with the"
                                          " evidence photo")
    p.add_argument("check_id")
    p.add_argument("student_id")
    p.add_argument("--evidence", required=True, help="the evidence photo file")
    p.add_argument("--terminal", required=True)

    p = add("publish", cmd_publish, "school: publish the month's results (the objection window starts)")
    p.add_argument("month", help="YYYY-MM")

    p = add("results", cmd_results, "school: the month's results list (公示名单, masked), draft or published")
    p.add_argument("month", help="YYYY-MM")
    p.add_argument("--format", choices=("json", "csv", "xlsx"), default="json")
    p.add_argument("--out", help="write the CSV or XLSX file here")

    p = add("verdict", cmd_verdict, "read a capture's verdict as the terminal or the school's staff")
    p.add_argument("capture_id")
    p.add_argument("--terminal")
    wait_option(p)

    p = add("status", cmd_status, "school: a student's aid status (per semester: months, grant, waiver)")
    p.add_argument("student_id")
    p.add_argument("--semester", help="e.g. 2026-autumn (default: every semester)")

    p = add("month", cmd_month, "school: the school's month as eligibility sees it")
    p.add_argument("month", help="YYYY-MM")
    return parser


def main(argv: list[str] | None = None, client: AidClient | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        client = client or AidClient(timeout=args.timeout)
        return int(args.func(client, args))
    except Usage as exc:
        print(f"aid sim {args.command}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except Unreachable as exc:
        print(f"aid sim {args.command}: {exc.line()}", file=sys.stderr)
        return EXIT_UNREACHABLE
    except ApiError as exc:
        print(f"aid sim {args.command}: {exc.line()}", file=sys.stderr)
        return EXIT_USAGE if exc.status == 0 else EXIT_REFUSED


if __name__ == "__main__":
    raise SystemExit(main())
