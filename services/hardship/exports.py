"""Public notice (公示) and archive (建档备案) files of a school's year: PDF (Chinese, through
:mod:`backbone.pdf`) and XLSX. A public notice shows only masked name, class and level: no
category, no ID number, no income (seed 004 第十五条 (四))."""

from __future__ import annotations

from collections.abc import Sequence

from backbone.pdf import table_pdf
from backbone.xlsx import table_xlsx

NOTICE_HEADER = ("序号", "姓名", "班级", "认定等级")
ARCHIVE_HEADER = (
    "序号",
    "学生编号",
    "姓名",
    "班级",
    "学段",
    "认定等级",
    "类别",
    "认定方式",
    "生效学期",
    "公示日期",
    "状态",
)


def notice_lines(school_name: str, school_year: str, published_on: str, objections_until: str) -> list[str]:
    return [
        f"学校：{school_name}",
        f"学年：{school_year}",
        f"公示日期：{published_on}；异议期至 {objections_until}（含）。",
        "如有异议，请在异议期内向学校学生资助工作小组书面反映，学校将予以复核。",
    ]


def notice_pdf(title: str, lines: Sequence[str], rows: Sequence[Sequence[str]]) -> bytes:
    return table_pdf(title, lines, NOTICE_HEADER, rows, footer=["（本公示不含学生个人敏感信息）"])


def xlsx(title: str, lines: Sequence[str], header: Sequence[str], rows: Sequence[Sequence[str]]) -> bytes:
    return table_xlsx("公示" if header == NOTICE_HEADER else "档案", title, header, rows, lines)
