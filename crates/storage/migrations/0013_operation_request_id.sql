-- The request behind an operation (issue 17, item 7).
--
-- `request_id`: the `x-request-id` of the HTTP request whose intent planned the operation, or
-- the id of the periodic job round that did (a scheduled backup); NULL when neither is known
-- (operations written before this column, tools). The reconciler's span of the operation
-- carries it, so every attempt's log lines name their cause, in whatever process runs it.
ALTER TABLE operations ADD COLUMN request_id text;
