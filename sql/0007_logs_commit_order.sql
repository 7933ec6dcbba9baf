-- 0007_logs_commit_order: `aigw logs tail -f` on the remote store follows rows in the order
-- their writes ended instead of by created_at (when a call started) with a lag window. Each row
-- records the transaction that inserted it (filled by the database, not by aigw); a follower
-- reads only rows of transactions older than every one still open (pg_snapshot_xmin), which
-- are all committed and visible, so a long call or a slow sync that commits after a short one
-- is still shown, once. Rows written before this migration have none: history, not followed.
-- Adding the column rewrites nothing (no default for existing rows); the index build holds
-- writes to ai_gateway_logs back while it runs: on a large table run `aigw migrate` when few
-- calls are being synced.
ALTER TABLE public.ai_gateway_logs ADD COLUMN xact_id xid8;
ALTER TABLE public.ai_gateway_logs ALTER COLUMN xact_id SET DEFAULT pg_current_xact_id();
CREATE INDEX ai_gateway_logs_xact_id_id_idx ON public.ai_gateway_logs (xact_id, id);
