"""Simple XLSX workbooks (published lists, Attachment 2, notices, archives): one sheet with a
title row, optional lines of text, a header row, then one row per record (openpyxl). The
companion of :mod:`backbone.pdf`; what goes into the cells (masked values only) is the caller's
business."""

from __future__ import annotations

import io
from collections.abc import Iterable, Sequence
from typing import Any


def table_xlsx(sheet: str, title: str, header: Sequence[str], rows: Iterable[Sequence[Any]],
               lines: Sequence[str] = ()) -> bytes:
    """The workbook's bytes: sheet ``sheet`` with ``title``, each of ``lines`` on a row of its
    own, the ``header`` row, then ``rows``."""
    from openpyxl import Workbook

    book = Workbook()
    page = book.active
    assert page is not None
    page.title = sheet
    page.append([title])
    for line in lines:
        page.append([line])
    page.append(list(header))
    for row in rows:
        page.append(list(row))
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()
