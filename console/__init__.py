"""The pages people use: a terminal kiosk, the school console, the authorities' console, the
auditor's view and the operations pages, served by one web process (``python -m console``).

Server-rendered (Jinja2) pages; the only scripts are the kiosk's camera and the live counts.
The console holds no data of its own: every page calls the services' HTTP APIs server-side with
the signed-in user's token (the same roles and areas as any client, see docs/access.md), so a
page can never show more than its user may read. The token stays on the server, in a session
named by an HttpOnly cookie; no personal data goes into URLs or browser storage.

It imports no service package (tests/console/test_console_unit.py keeps it so): what it knows of
the services is their HTTP API. A new flow is a new module in ``console/pages`` with its
templates: pages register themselves with :func:`console.web.page`, nav entries included.
"""
