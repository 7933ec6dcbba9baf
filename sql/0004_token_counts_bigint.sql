-- 0004_token_counts_bigint: token counts as wide as the local store takes them (64-bit). A run
-- reporting 3,000,000,000 prompt tokens was kept locally but refused here by INTEGER, and the
-- refused row stopped every later sync. (0001 stays as released: migrations are never edited.)
-- Rewrites ai_gateway_logs once, under its ACCESS EXCLUSIVE lock: on a large table run
-- `aigw migrate` when few calls are being synced.
ALTER TABLE public.ai_gateway_logs
  ALTER COLUMN prompt_tokens TYPE bigint,
  ALTER COLUMN completion_tokens TYPE bigint,
  ALTER COLUMN total_tokens TYPE bigint;
