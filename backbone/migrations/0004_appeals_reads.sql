-- Complete, bounded reads for appeals (services/appeals/service.py, backbone/eventstore.py):
-- the authority's inbox and the month-end closing select filings by the day filed, the evidence
-- of a student selects the checks of a month; no "newest N events of a type" read.

-- Filings (AppealFiled) by the day filed (v2 ``filed_on``; v1 appeals have none: NULL, read by
-- occurred_at from the same index's NULL entries).
CREATE INDEX events_filings_by_filed_on_idx ON events ((payload->>'filed_on'), position)
    WHERE type = 'AppealFiled';

-- Checks opened (CheckOpened) by the month checked.
CREATE INDEX events_checks_by_month_idx ON events ((payload->>'month'), position)
    WHERE type = 'CheckOpened';
