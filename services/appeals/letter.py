"""The formal letter (公函) of an appeal filing as a PDF to print, sign and stamp: set with
:func:`backbone.pdf.table_pdf` in reportlab's built-in CJK font STSong-Light (no font file
shipped or downloaded; the text stays extractable, which the tests check)."""

from __future__ import annotations

from backbone.pdf import table_pdf
from services.appeals.domain import Letter


def letter_pdf(letter: Letter) -> bytes:
    return table_pdf(letter.title, letter.lines, letter.header, letter.rows, letter.footer)
