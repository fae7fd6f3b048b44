"""The live projection of eligibility statuses in PostgreSQL, in layers:

- ``writer``: applies events (idempotent, order-insensitive) and rebuilds from a replay;
- ``queries``: one student's statuses, one school's month, the province summary;
- ``audit``: how far the projection has read and its differences with a replay (``--verify``);
- ``provider``: the nameko dependency that gives the service the writer and the queries.
"""
