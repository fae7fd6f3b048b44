"""Eligibility: every student's monthly aid status, derived from a replay of the event log.

- ``domain/``: the pure rules engine (facts folded from envelopes, ``derive`` applies the rules);
- ``policy/policy.yml``: the rules' numbers and calendars, versioned by effective date;
- ``replay``: the audit CLI (``python -m services.eligibility.replay``);
- ``projection/``: the live PostgreSQL projection: writer, queries, audit, nameko dependency;
- ``service``: the nameko entry point (events in; HTTP and RPC queries);
- ``roster``: import of the national student-aid list (``python -m services.eligibility.roster``).
"""
