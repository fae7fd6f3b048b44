"""The pages in a real browser: Playwright drives Debian's Chromium (no browser download) against
the running services, the real issuer, PostgreSQL and RabbitMQ, and the console process. The
kiosk's camera is Chromium's fake capture, fed a video made here from ../shared/faces photos.

Each test is bounded (seconds; the face-matching ones wait at most 40 s for a verdict). With
``AID_CONSOLE_SCREENSHOTS=<dir>`` each page is also saved there (docs/pages/ holds the copies
shown in docs/pages.md)."""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
import pytest

from tests import flows
from tests.console.fakecam import write_y4m
from tests.facematch.conftest import find_faces_dir
from tests.support import Proc, System, throwaway_database, throwaway_vhost, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.faces]
SHANGHAI = ZoneInfo("Asia/Shanghai")
SERVICES = ("enrolment", "spotcheck", "facematch", "eligibility", "appeals", "hardship")
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
VERDICT_MS = 40_000


def clock_offset() -> tuple[float, datetime]:
    """Shift the services' clock (AID_CLOCK_OFFSET_SECONDS) to 11:00 Asia/Shanghai today, inside
    the 10:00-15:00 check window whatever the hour the tests run."""
    now = datetime.now(SHANGHAI)
    target = now.replace(hour=11, minute=0, second=0, microsecond=0)
    return (target - now).total_seconds(), target


def enrol_by_api(system: System, enrolment: Proc, terminal: dict[str, Any], student_id: str,
                 folder: Path) -> None:
    """A new capture through the API (another person than the camera shows): three poses and the
    ID-card photo of ``folder``."""
    import base64
    import io

    from tests.console.fakecam import letterboxed

    def jpeg(path: Path) -> str:
        buffer = io.BytesIO()
        letterboxed(path).save(buffer, "JPEG", quality=90)
        return base64.b64encode(buffer.getvalue()).decode()

    status, body = flows.terminal_token(system, terminal["client_id"], terminal["client_secret"])
    assert status == 200, body
    token = body["access_token"]
    frames = [jpeg(folder / n) for n in ("img1.jpg", "img10.jpg", "img11.jpg")]
    id_photo = base64.b64encode((folder / "img2.jpg").read_bytes()).decode()
    status, body = enrolment.api("POST", "/enrolments", {"student_id": student_id, "frames": frames,
                                                         "id_photo": id_photo}, token=token)
    assert status == 202, body
    school = flows.school_token(system, "SC1")
    wait_for(lambda: enrolment.api("GET", f"/students/{student_id}", token=school)[1].get("enrolled"), 60,
             what=f"{student_id} enrolled")


class Stack:
    def __init__(self, system: System, procs: dict[str, Proc], console: Proc, day: datetime,
                 check_id: str, terminal: dict[str, Any], video: Path) -> None:
        self.system, self.procs, self.console, self.day = system, procs, console, day
        self.check_id, self.terminal, self.video = check_id, terminal, video
        self.second: dict[str, Any] = {}
        self.url = f"http://127.0.0.1:{console.api_port}"
        self.month = day.strftime("%Y-%m")


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    faces = find_faces_dir()
    assert faces is not None, "../shared/faces is needed for the kiosk's camera"
    tmp = tmp_path_factory.mktemp("console")
    video = write_y4m([faces / "obama" / n for n in ("obama_1.jpg", "obama_2.jpg", "obama_4.jpg")],
                      tmp / "camera.y4m")
    offset, day = clock_offset()
    with throwaway_database() as db, throwaway_vhost() as vhost:
        system = System(db, vhost, tmp)
        try:
            relay = system.relay(AID_CLOCK_OFFSET_SECONDS=str(offset)).start(wait=False)
            # Chromium's fake camera plays photos, not one continuous take, so it cannot act out
            # a server-issued liveness challenge: the kiosk runs without challenges
            # (AID_CONSOLE_CHALLENGES=off) and facematch takes its terminal bursts with the
            # unchallenged check (a head turn, not one still picture), as for older terminals.
            procs = {name: system.service(name, AID_CLOCK_OFFSET_SECONDS=str(offset),
                                          AID_FACE_UNCHALLENGED="terminal").start(wait=False)
                     for name in SERVICES}
            for proc in (relay, *procs.values()):
                proc.wait_healthy(timeout=180)
            enrolment = procs["enrolment"]
            flows.setup_school(system, enrolment, "SC1", "驻马店市", "驿城区")
            flows.setup_school(system, enrolment, "SC2", "驻马店市", "西平县")
            students = (("A0001", "SC1"), ("A0002", "SC1"), ("B0001", "SC2"), ("A0003", "SC1"))
            for seq, (student, school) in enumerate(students, 1):
                flows.register_student(system, enrolment, student, seq, school)
            terminal = flows.register_terminal(system, enrolment, "T1", "SC1")
            second = flows.register_terminal(system, enrolment, "T2", "SC1")
            enrol_by_api(system, enrolment, second, "A0003", faces.parent / "faces-extra" / "person01")
            status, body = procs["spotcheck"].api("POST", "/checks", {
                "opens_at": day.replace(hour=10).isoformat(),
                "closes_at": day.replace(hour=14, minute=50).isoformat(), "school_ids": ["SC1"]},
                token=flows.province_token(system))
            assert status == 201, body
            console = system.console(AID_CLOCK_OFFSET_SECONDS=str(offset),
                                     AID_CONSOLE_CHALLENGES="off").start()
            stack = Stack(system, procs, console, day, str(body["check_id"]), terminal, video)
            stack.second = second
            yield stack
        finally:
            system.stop_all()


@pytest.fixture(scope="module")
def browser(stack: Stack) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
            f"--use-file-for-fake-video-capture={stack.video}", "--no-sandbox"])
        yield launched
        launched.close()


@pytest.fixture()
def page(browser: Any, stack: Stack) -> Iterator[Any]:
    context = browser.new_context(base_url=stack.url, locale="zh-CN", viewport={"width": 1200, "height": 900})
    context.grant_permissions(["camera"], origin=stack.url)
    tab = context.new_page()
    tab.set_default_timeout(15_000)
    yield tab
    context.close()


def shot(page: Any, name: str) -> None:
    target = os.environ.get("AID_CONSOLE_SCREENSHOTS")
    if target:
        Path(target).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(target) / f"{name}.png"), full_page=True)


def sign_in(page: Any, role: str, **area: str) -> None:
    page.goto("/signin")
    page.get_by_label("角色").select_option(role)
    for name, value in area.items():
        page.locator(f"#f-{name}").fill(value)
    page.get_by_role("button", name="登录").click()


def test_kiosk_enrols_and_then_checks_a_student_with_the_camera(page: Any, stack: Stack) -> None:
    page.goto("/kiosk/signin")
    shot(page, "kiosk-signin")
    page.get_by_label("终端编号").fill(stack.terminal["client_id"])
    page.get_by_label("终端密钥").fill(stack.terminal["client_secret"])
    page.get_by_role("button", name="登录").click()
    page.wait_for_url("**/kiosk")
    # new capture: live burst and the ID-card photo (as the card reader gives it)
    page.get_by_label("新增采集").check()
    page.get_by_label("身份证照片（读卡器）").set_input_files(str(find_faces_dir() / "obama" / "obama_3.jpg"))
    page.get_by_label("学号").fill("A0001")
    page.get_by_label("学号").press("Enter")
    page.locator("#prompt").filter(has_text="请").wait_for()
    page.locator(".verdict.good, .verdict.bad").wait_for(timeout=VERDICT_MS)
    shot(page, "kiosk-enrolled")
    assert "比对通过" in page.locator("#verdict").inner_text(), page.locator("#verdict").inner_text()
    enrolment = stack.procs["enrolment"]
    school = flows.school_token(stack.system, "SC1")
    wait_for(lambda: enrolment.api("GET", "/students/A0001", token=school)[1].get("enrolled"), 30,
             what="enrolled")
    # check-in: the same camera, keyboard only (card reader: digits then Enter)
    page.get_by_label("抽查确认").check()
    page.get_by_role("button", name="下一位").click()
    page.get_by_label("学号").fill("A0001")
    page.get_by_label("学号").press("Enter")
    page.locator(".verdict.good, .verdict.bad").wait_for(timeout=VERDICT_MS)
    shot(page, "kiosk-checked")
    assert "比对通过" in page.locator("#verdict").inner_text(), page.locator("#verdict").inner_text()
    assert not page.locator("#screen-revoked").is_visible() and not page.locator("#id-photo").is_visible()
    # operations revoke the terminal: the kiosk clears its screen within seconds (it polls)
    status, body = enrolment.api("POST", "/terminals/T1/revoke", {"reason": "设备遗失"},
                                 token=flows.operations_token(stack.system))
    assert status == 200, body
    page.locator("#screen-revoked").wait_for(timeout=20_000)
    assert not page.locator("#kiosk-main").is_visible()
    shot(page, "kiosk-revoked")


def test_school_marks_an_absence_and_publishes_its_month(page: Any, stack: Stack) -> None:
    sign_in(page, "school", school="SC1")
    page.wait_for_url("**/schools/SC1")
    shot(page, "school-home")
    page.get_by_role("link", name=f"routine · {stack.check_id[:8]}").click()
    page.get_by_label("学号").fill("A0002")
    page.get_by_label("原因").select_option("leave")
    page.get_by_role("button", name="保存").click()
    page.get_by_role("status").filter(has_text="完成").wait_for()
    shot(page, "school-check")
    page.goto(f"/schools/SC1/months/{stack.month}")
    page.get_by_role("button", name="公示本月结果").click()
    page.get_by_role("status").filter(has_text="已公示").wait_for()
    shot(page, "school-month")
    page.get_by_role("link", name="English").click()
    assert page.get_by_role("button", name="Publish the month's results").is_visible()


def test_province_opens_a_check_and_sees_the_live_count_move(page: Any, stack: Stack) -> None:
    sign_in(page, "province")
    page.wait_for_url("**/authority")
    page.get_by_label("开始时间").fill(stack.day.replace(hour=10, minute=30).strftime("%Y-%m-%dT%H:%M"))
    page.get_by_label("结束时间").fill(stack.day.replace(hour=14, minute=30).strftime("%Y-%m-%dT%H:%M"))
    page.get_by_label("学校代码（逗号分隔，省级可空）").fill("SC2")
    page.get_by_role("button", name="发起抽查").last.click()
    page.locator(".ok, .error").first.wait_for()
    assert page.locator(".ok").count() == 1, page.locator(".error").inner_text()
    shot(page, "authority-checks")
    check_id = page.locator("dd").nth(0).inner_text()
    page.goto(f"/authority/live?month={stack.month}&county=西平县")
    before = int(page.locator("#v-students").inner_text())
    # a school registers a student in that county: the live tile follows without a reload
    flows.register_student(stack.system, stack.procs["enrolment"], "B0002", 4, "SC2")
    page.locator("#v-students").filter(has_text=str(before + 1)).wait_for(timeout=20_000)
    school_row = page.locator("#by-school tr").filter(has_text="SC2")
    school_row.locator("td").nth(2).filter(has_text=str(before + 1)).wait_for(timeout=10_000)
    assert "西平县" in page.locator("#by-county").inner_text()
    shot(page, "authority-live")
    assert check_id


def test_auditor_reads_a_status_as_of_an_instant(page: Any, stack: Stack) -> None:
    sign_in(page, "auditor")
    page.wait_for_url("**/audit")
    page.get_by_label("学号").fill("A0002")
    at = datetime.now(SHANGHAI) + timedelta(minutes=1)
    page.get_by_label("截至时间").fill(at.strftime("%Y-%m-%dT%H:%M"))
    page.get_by_role("button", name="查询").click()
    page.locator("#h-asof").wait_for()
    shot(page, "audit")
    assert "2026" in page.locator("#h-asof").inner_text()
    assert page.locator("#differences li").count() >= 1


def test_a_school_user_cannot_open_another_schools_page(page: Any, stack: Stack) -> None:
    sign_in(page, "school", school="SC1")
    page.wait_for_url("**/schools/SC1")
    response = page.goto(f"/schools/SC2/months/{stack.month}")
    assert response.status == 403
    assert "无权访问此页面" in page.content()
    assert page.goto("/authority").status == 403
    shot(page, "forbidden")


def test_kiosk_offers_the_forced_pass_after_three_failures(page: Any, stack: Stack) -> None:
    """A0003 is enrolled as another person than the camera shows: three check-ins are rejected,
    each with its reason in Chinese, then the evidence photo records the forced pass."""
    page.goto("/kiosk/signin")
    page.get_by_label("终端编号").fill(stack.second["client_id"])
    page.get_by_label("终端密钥").fill(stack.second["client_secret"])
    page.get_by_role("button", name="登录").click()
    page.wait_for_url("**/kiosk")
    page.get_by_label("学号").fill("A0003")
    for attempt in (1, 2, 3):
        page.get_by_label("学号").press("Enter")
        page.locator(".verdict.bad").filter(has_text=f"第 {attempt} 次").wait_for(timeout=VERDICT_MS)
        assert "比对未通过" in page.locator("#verdict").inner_text()
        assert page.locator("#verdict li").count() >= 1  # the reasons, in Chinese
        assert page.locator("#forced").is_visible() == (attempt == 3)
    shot(page, "kiosk-forced")
    page.get_by_role("button", name="拍摄佐证照片并确认").click()
    page.locator(".verdict.good").filter(has_text="已强行确认通过").wait_for()
    assert not page.locator("#forced").is_visible()


def test_school_imports_a_roster_and_reads_the_report_row_by_row(page: Any, stack: Stack,
                                                                tmp_path: Path) -> None:
    roster = tmp_path / "名单.csv"
    roster.write_text(
        "学号,姓名,身份证号,年级,班级,专业,入学年份,入学季节\n"
        f"A0101,王小明,{flows.id_number(101)},1,会计1班,会计,2026,秋季\n"
        "A0102,李小红,11010120070307,1,会计1班,会计,2026,秋季\n", encoding="utf-8")
    sign_in(page, "school", school="SC1")
    page.goto("/schools/SC1/roster")
    page.get_by_label("名单文件（CSV 或 XLSX）").set_input_files(str(roster))
    page.get_by_role("button", name="导入").click()
    page.locator("#registered").wait_for()
    shot(page, "school-roster")
    assert (page.locator("#registered").inner_text(), page.locator("#refused").inner_text()) == ("1", "1")
    rows = page.locator("tbody tr")
    assert "已登记" in rows.nth(0).inner_text() and "内容有误" in rows.nth(1).inner_text()
    assert "李小红" not in page.content() and "11010120070307" not in page.content()


def test_operations_register_a_terminal_and_see_its_secret_once(page: Any, stack: Stack) -> None:
    sign_in(page, "operations")
    page.wait_for_url("**/operations")
    page.get_by_label("终端编号").fill("T9")
    page.get_by_label("学校代码").fill("SC2")
    page.get_by_label("位置").fill("二楼走廊")
    page.get_by_role("button", name="登记").last.click()
    secret = page.locator("#secret").inner_text()
    assert len(secret) >= 32
    shot(page, "operations-terminals")
    page.goto("/operations")
    assert secret not in page.content() and "T9" in page.content()


def test_kiosk_answers_a_server_issued_liveness_challenge(browser: Any, stack: Stack) -> None:
    """With challenges on (the default), the kiosk asks spotcheck for one, prompts that action
    and sends the frames' times with the challenge id; the capture is decided (the fake camera
    plays photos, so facematch may well refuse the take: what counts here is a verdict with its
    reasons, not a refused request)."""
    offset = str(clock_offset()[0])
    console = stack.system.console(name="console-challenged", AID_CLOCK_OFFSET_SECONDS=offset)
    console.start()
    url = f"http://127.0.0.1:{console.api_port}"
    context = browser.new_context(base_url=url, locale="zh-CN")
    context.grant_permissions(["camera"], origin=url)
    page = context.new_page()
    page.set_default_timeout(15_000)
    try:
        page.goto("/kiosk/signin")
        page.get_by_label("终端编号").fill(stack.second["client_id"])
        page.get_by_label("终端密钥").fill(stack.second["client_secret"])
        page.get_by_role("button", name="登录").click()
        page.wait_for_url("**/kiosk")
        page.get_by_label("学号").fill("A0001")
        page.get_by_label("学号").press("Enter")
        prompts = {"请眨眼", "请缓慢向左转头", "请缓慢向右转头"}
        page.locator("#prompt").filter(has_text=re.compile("|".join(prompts))).wait_for()
        page.locator(".verdict.good, .verdict.bad").wait_for(timeout=VERDICT_MS)
        head = page.locator(".verdict-head").inner_text()
        assert head.startswith(("比对通过", "比对未通过")), head
        with psycopg.connect(stack.system.database_url) as conn:
            issued = conn.execute("SELECT count(*) FROM events WHERE type = 'LivenessChallengeIssued'"
                                  " AND payload->>'student_id' = 'A0001'").fetchone()[0]
            answered = conn.execute("SELECT count(*) FROM events WHERE type = 'CaptureSubmitted'"
                                    " AND payload->>'student_id' = 'A0001'"
                                    " AND payload->>'challenge_id' IS NOT NULL").fetchone()[0]
        assert (issued, answered) == (1, 1)
    finally:
        context.close()
        console.stop()


def test_school_files_an_objection_and_the_county_rules_on_it(page: Any, stack: Stack,
                                                              tmp_path: Path) -> None:
    """The month is published; the school records a student's objection, files the month, gets
    the letter (PDF) and attaches the signed scan; the county approves it in its inbox."""
    status, body = stack.procs["spotcheck"].api("POST", "/results/publish", {
        "school_id": "SC1", "month": stack.month}, token=flows.school_token(stack.system, "SC1"))
    assert status in (201, 409), body  # published here, or by the school's test before
    sign_in(page, "school", school="SC1")
    page.goto("/schools/SC1/appeals")
    form = page.locator("form").filter(has_text="登记学生异议")
    form.get_by_label("学号").fill("A0002")
    form.get_by_label("月份").fill(stack.month)
    form.get_by_label("提出异议日期").fill(stack.day.strftime("%Y-%m-%d"))
    form.get_by_label("原因").fill("当天病假，已补交假条")
    form.get_by_role("button", name="保存").click()
    page.locator(".ok, .error").first.wait_for()
    assert page.locator(".ok").count() == 1, page.locator(".error").inner_text()
    page.locator("form").filter(has_text="提交申诉").get_by_role("button", name="提交申诉").click()
    page.locator(".ok, .error").first.wait_for()
    assert page.locator(".ok").count() == 1, page.locator(".error").inner_text()
    filing_id = page.locator(".ok code").inner_text()
    letter = page.request.get(page.get_by_role("link", name="下载公函（PDF）").get_attribute("href"))
    assert letter.status == 200, letter.text()[:300]
    assert letter.headers["content-type"] == "application/pdf" and letter.body().startswith(b"%PDF")
    scan = tmp_path / "signed.jpg"
    scan.write_bytes((find_faces_dir() / "obama" / "obama_small.jpg").read_bytes())  # any JPEG will do
    signed = page.locator("form").filter(has_text="签字申诉书扫描件")
    signed.get_by_label("申诉编号").fill(filing_id)
    signed.locator("input[type=file]").set_input_files(str(scan))
    signed.get_by_role("button", name="保存").click()
    page.locator(".ok, .error").first.wait_for()
    assert page.locator(".ok").count() == 1, page.locator(".error").inner_text()
    shot(page, "school-appeals")
    page.get_by_role("button", name="退出").click()
    sign_in(page, "county", city="驻马店市", county="驿城区")
    page.goto("/authority/appeals")
    row = page.locator("tr").filter(has_text="A0002")
    row.get_by_label("原因").fill("假条属实")
    row.get_by_role("button", name="同意").click()
    page.locator(".ok, .error").first.wait_for()
    assert page.locator(".ok").count() == 1, page.locator(".error").inner_text()
    shot(page, "authority-appeals")
    page.goto(f"/schools/SC1/appeals/filings/{filing_id}")  # the filing in detail, ruled and signed
    detail = page.locator("main").inner_text()
    assert "申诉已通过" in detail and "假条属实" in detail and "已上传签字盖章扫描件" in detail
    shown = page.request.get(page.get_by_role("link", name="查看签字盖章扫描件").get_attribute("href"))
    assert shown.status == 200, shown.text()[:300]  # the scan as attached
    assert shown.headers["content-type"] == "image/jpeg" and shown.body() == scan.read_bytes()
    shot(page, "appeal-filing")


def test_terminal_confirms_a_placement_and_the_school_exports_attachment_2(page: Any, stack: Stack) -> None:
    page.goto("/kiosk/signin")
    page.get_by_label("终端编号").fill(stack.second["client_id"])
    page.get_by_label("终端密钥").fill(stack.second["client_secret"])
    page.get_by_role("button", name="登录").click()
    page.wait_for_url("**/kiosk")
    page.get_by_role("link", name="顶岗实习离校前确认").click()
    page.get_by_label("学号").fill("A0001")
    page.get_by_label("实习所在公司（全称）").fill("驻马店市天中机械制造有限公司")
    page.get_by_label("实习所在地（详细地址）").fill("驻马店市驿城区开源大道88号")
    page.get_by_label("学校实习负责人").fill("王老师")
    page.get_by_label("负责人联系电话").fill("0396-1234567")
    page.get_by_label("开始日期").fill((stack.day + timedelta(days=1)).strftime("%Y-%m-%d"))
    page.get_by_label("结束日期").fill((stack.day + timedelta(days=120)).strftime("%Y-%m-%d"))
    page.get_by_role("button", name="顶岗实习离校前确认").click()
    page.locator(".ok, .error").first.wait_for()
    assert page.locator(".ok").count() == 1, page.locator(".error").inner_text()
    shot(page, "kiosk-placement")
    placement_id = page.locator("#placement-id").inner_text()
    page.get_by_role("button", name="退出").click()
    sign_in(page, "school", school="SC1")
    page.get_by_role("link", name="顶岗实习", exact=True).click()  # reachable from the school's nav
    page.wait_for_url("**/schools/SC1/placements")
    page.get_by_label("月份").fill(stack.month)
    with page.expect_download() as download:
        page.get_by_role("button", name="下载").click()
    saved = Path(download.value.path())
    assert download.value.suggested_filename.endswith(".xlsx") and saved.read_bytes().startswith(b"PK")
    import io

    from openpyxl import load_workbook

    sheet = load_workbook(io.BytesIO(saved.read_bytes())).active
    cells = " ".join(str(c.value) for row in sheet.iter_rows() for c in row if c.value is not None)
    assert "驻马店市天中机械制造有限公司" in cells
    row = page.locator("#placements tbody tr").filter(has_text="驻马店市天中机械制造有限公司")  # listed
    assert row.count() == 1 and "A0001" in row.inner_text() and "*" in row.inner_text()  # name masked
    assert row.locator(f'input[name="placement_id"][value="{placement_id}"]').count() == 2
    row.locator("summary").click()  # the school changes the supervisor, then ends it early
    update = row.locator("form.update")
    update.get_by_label("学校实习负责人").fill("李老师")
    update.get_by_role("button", name="变更实习信息").click()
    page.locator(".ok, .error").first.wait_for()
    assert page.locator(".ok").count() == 1, page.locator(".error").inner_text()
    assert "李老师" in page.locator(".ok").inner_text()
    assert "李老师" in row.inner_text()
    end = row.locator("form.end")
    end.get_by_label("提前结束日期").fill((stack.day + timedelta(days=30)).strftime("%Y-%m-%d"))
    end.get_by_role("button", name="登记提前结束").click()
    page.locator(".ok, .error").first.wait_for()
    assert page.locator(".ok").count() == 1, page.locator(".error").inner_text()
    assert row.locator("form").count() == 0  # ended: no more forms on its row
    shot(page, "school-placements")
    page.get_by_role("link", name="实习备案", exact=True).click()  # departure and return
    assert page.get_by_role("button", name="登记离校").count() == 1


def test_school_files_an_internship_plan(page: Any, stack: Stack) -> None:
    sign_in(page, "school", school="SC1")
    page.goto("/schools/SC1/internships")
    form = page.locator("form").filter(has_text="提交实习计划")
    form.get_by_label("学号").fill("A0002")
    form.get_by_label("类型").select_option("shadowing")
    form.get_by_label("开始日期").fill((stack.day + timedelta(days=20)).strftime("%Y-%m-%d"))
    form.get_by_label("结束日期").fill((stack.day + timedelta(days=140)).strftime("%Y-%m-%d"))
    form.get_by_label("教育部门备案日期").fill(stack.day.strftime("%Y-%m-%d"))
    form.get_by_label("资助部门备案日期").fill(stack.day.strftime("%Y-%m-%d"))
    form.get_by_role("button", name="提交实习计划").click()
    page.locator(".ok, .error").first.wait_for()
    assert page.locator(".ok").count() == 1, page.locator(".error").inner_text()
    assert "plan_id" in page.locator(".ok").inner_text()
    shot(page, "school-internships")


def test_school_records_a_hardship_determination(page: Any, stack: Stack) -> None:
    sign_in(page, "school", school="SC1")
    page.goto("/schools/SC1/hardship")
    page.get_by_label("学号").fill("A0002")
    page.get_by_label("困难类别（1-8，逗号分隔）").fill("2")
    page.get_by_label("学期").fill("2026-autumn")
    page.get_by_label("school_review").check()
    page.get_by_role("button", name="提交认定").click()
    page.locator(".ok, .error").first.wait_for()
    assert page.locator(".ok").count() == 1, page.locator(".error").inner_text()
    assert "level" in page.locator(".ok").inner_text()
    shot(page, "school-hardship")


def _submit(page: Any, form: Any, button: str) -> str:
    form.get_by_role("button", name=button, exact=True).click()
    page.locator(".ok, .error").first.wait_for()
    assert page.locator(".ok").count() == 1, page.locator(".error").inner_text()
    return str(page.locator(".ok").inner_text())


def test_school_takes_a_hardship_case_from_notice_to_public_notice(page: Any, stack: Stack) -> None:
    """Advance notice, an application, the questionnaire, a democratic review, the determination
    with a level, the public notice and its PDF, each from the page; the case's state is shown."""
    sign_in(page, "school", school="SC1")
    page.goto("/schools/SC1/hardship/steps")
    today = stack.day.strftime("%Y-%m-%d")
    forms = page.locator("form")
    notice = forms.filter(has_text="提前告知")
    notice.get_by_label("告知日期").fill(today)
    _submit(page, notice, "保存")
    opened = forms.filter(has_text="受理申请 / 建立案卷")
    opened.get_by_label("学号").fill("A0001")
    opened.get_by_label("学段").select_option("vocational")
    opened.get_by_label("户籍").select_option("in_province")
    opened.get_by_label("困难类别（1-8，逗号分隔）").fill("7")
    opened.get_by_label("家庭人口").fill("4")
    opened.get_by_label("家庭年收入（元）").fill("12000")
    opened.get_by_label("住房").select_option("rent")
    _submit(page, opened, "受理申请 / 建立案卷")
    assert "opened" in page.locator("#case").inner_text()
    assess = forms.filter(has_text="量化评估（问卷）")
    for label, value in (("当地最低生活保障标准（元/年）", "6000"), ("家庭人口", "4"),
                         ("家庭年收入（元）", "12000"), ("学生月均消费（元）", "500"),
                         ("学校参考月均消费（元）", "900")):
        assess.get_by_label(label, exact=True).fill(value)
    assess.get_by_label("住房").select_option("rent")
    assess.get_by_label("家庭成员患重大疾病").check()
    _submit(page, assess, "保存")
    assert "assessed" in page.locator("#case").inner_text()
    review = forms.filter(has_text="民主评议 / 调查核实")
    review.get_by_label("类型").select_option("democratic_review")
    review.get_by_label("方式").select_option("class_vote")
    review.get_by_label("日期").fill(today)
    review.get_by_label("参加人员（逗号分隔）").fill("王老师，学生代表")
    review.get_by_label("赞成票").fill("30")
    review.get_by_label("评议或调查意见").fill("家庭困难属实")
    review.get_by_label("建议等级").select_option("difficult")
    _submit(page, review, "保存")
    determine = forms.filter(has_text="学校认定（等级）")
    determine.get_by_label("认定等级").select_option("difficult")
    determine.get_by_label("困难类别（1-8，逗号分隔）").fill("7")
    determine.get_by_label("原因").fill("民主评议建议困难")
    _submit(page, determine, "提交认定")
    state = page.locator("#case").inner_text()
    assert "determined" in state and "困难" in state
    publish = forms.filter(has_text="认定结果公示")
    publish.get_by_label("公示日期").fill(today)
    _submit(page, publish, "认定结果公示")
    shot(page, "school-hardship-steps")
    with page.expect_download() as download:
        page.get_by_role("link", name="PDF").click()
    assert Path(download.value.path()).read_bytes().startswith(b"%PDF")
    with page.expect_download() as sheet:
        page.get_by_role("link", name="XLSX").click()
    assert sheet.value.suggested_filename.endswith(".xlsx")
    assert Path(sheet.value.path()).read_bytes().startswith(b"PK")
    objection = forms.filter(has_text="登记公示异议")
    objection.get_by_label("提出日期").fill(today)
    objection.get_by_label("异议内容").fill("认为等级偏低")
    _submit(page, objection, "保存")
    assert "objection_under_review" in page.locator("#case").inner_text()
    objection_id = page.locator("#case code").first.inner_text()
    reviewed = forms.filter(has_text="异议复核")
    reviewed.get_by_label("异议编号（见案卷状态）").fill(objection_id)
    reviewed.get_by_label("结果").select_option("dismissed")
    reviewed.get_by_label("原因").fill("复核后维持原等级")
    _submit(page, reviewed, "保存")
    assert "dismissed" in page.locator("#case").inner_text()
    assert "A0001" not in page.url


def test_school_registers_one_student_and_records_them_leaving(page: Any, stack: Stack) -> None:
    sign_in(page, "school", school="SC1")
    page.get_by_role("link", name="学生登记与离校").click()
    page.wait_for_url("**/schools/SC1/students")
    number = flows.id_number(90)
    register = page.locator("form#register")
    for label, value in (("学号", "A0090"), ("姓名", "王小明"), ("身份证号", number), ("年级", "1"),
                         ("班级", "电商1班"), ("专业", "电子商务"), ("入学年份", "2026")):
        register.get_by_label(label, exact=True).fill(value)
    _submit(page, register, "登记一名学生")
    text = page.locator("main").inner_text()
    assert "A0090" in text and number not in text and "王小明" not in text  # masked only
    leave = page.locator("form#leave")
    leave.get_by_label("学号").fill("A0090")
    leave.get_by_label("离校原因").select_option("withdrawn")
    leave.get_by_label("离校日期").fill(stack.day.strftime("%Y-%m-%d"))
    assert "withdrawn" in _submit(page, leave, "登记学生离校")
    shot(page, "school-students")
    assert "A0090" not in page.url
