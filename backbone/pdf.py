"""Simple PDF documents with Chinese text (public notices, letters): a title, lines of text and
a table, set in reportlab's built-in CID font ``STSong-Light`` (Adobe-GB1; the reader's viewer
supplies the glyphs, so no font file is shipped or downloaded). Text stays extractable."""

from __future__ import annotations

import io
from collections.abc import Sequence
from html import escape

CJK_FONT = "STSong-Light"
_registered = False


def _font() -> str:
    global _registered
    if not _registered:
        from reportlab.pdfbase import pdfmetrics
        from reportlab.pdfbase.cidfonts import UnicodeCIDFont

        pdfmetrics.registerFont(UnicodeCIDFont(CJK_FONT))
        _registered = True
    return CJK_FONT


def table_pdf(title: str, lines: Sequence[str], header: Sequence[str], rows: Sequence[Sequence[str]],
              footer: Sequence[str] = ()) -> bytes:
    """An A4 PDF: ``title``, ``lines`` of text, a table (``header`` then ``rows``, repeated
    header on each page), then ``footer`` lines."""
    from reportlab.lib import colors
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.styles import ParagraphStyle
    from reportlab.lib.units import mm
    from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

    font = _font()
    body = ParagraphStyle("body", fontName=font, fontSize=10.5, leading=15)
    head = ParagraphStyle("title", fontName=font, fontSize=16, leading=22, alignment=1)
    out = io.BytesIO()
    doc = SimpleDocTemplate(out, pagesize=A4, leftMargin=18 * mm, rightMargin=18 * mm,
                            topMargin=18 * mm, bottomMargin=18 * mm, title=title)
    story: list[object] = [Paragraph(escape(title), head), Spacer(1, 6 * mm)]
    story += [Paragraph(escape(line), body) for line in lines]
    story.append(Spacer(1, 4 * mm))
    table = Table([list(header), *[list(r) for r in rows]], repeatRows=1)
    table.setStyle(TableStyle([
        ("FONTNAME", (0, 0), (-1, -1), font), ("FONTSIZE", (0, 0), (-1, -1), 10.5),
        ("GRID", (0, 0), (-1, -1), 0.5, colors.black),
        ("BACKGROUND", (0, 0), (-1, 0), colors.lightgrey),
    ]))
    story += [table, Spacer(1, 4 * mm)]
    story += [Paragraph(escape(line), body) for line in footer]
    doc.build(story)
    return out.getvalue()
