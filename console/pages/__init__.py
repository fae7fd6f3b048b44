"""The console's pages, one module per kind of user; importing this package registers them.
A new flow (an appeal step, a new list) is a new ``@page`` here and a template."""

from console.pages import (  # noqa: F401
    appeal_filing,
    auditor,
    authority,
    common,
    deadletters,
    hardship_cases,
    kiosk,
    oidc,
    operations,
    school,
    students,
)
