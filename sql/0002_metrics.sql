-- 0002_metrics: the SQL functions behind `aigw metrics` and `aigw logs prune`.
--
-- The same numbers reach aigw through a direct connection (SELECT * FROM aigw_metrics(...))
-- and through supabase-py (`rpc('aigw_metrics', {...})`): the aggregation always runs here,
-- never row by row in the client.
--
-- The set-returning functions are plain `LANGUAGE sql STABLE` single SELECTs with no SET
-- clause, so Postgres inlines them into the calling query: the planner sees the actual window
-- and uses ai_gateway_logs_created_at_idx, and EXPLAIN on the call shows the real plan. That is
-- also why they name every table with its schema instead of setting search_path. They run as
-- SECURITY INVOKER, with the caller's rights and row-level security.

-- Raw paths as endpoint templates, so rows from other writers (the seed app logs raw paths such
-- as /v1/threads/thread_abc/runs) group with aigw's own. The same rules as
-- aigw/gateway/endpoints.py, which templates aigw's own rows (tests/test_metrics_endpoints.py
-- checks both on a table of paths): the query string, fragment, scheme://host and anything
-- before /v1 are dropped; a segment after a collection (threads, runs, …) that is not itself a
-- collection or an action is that collection's id ({thread_id}); elsewhere a segment that looks
-- generated (8+ characters with a digit) is {id}.
CREATE FUNCTION public.aigw_endpoint_template(raw text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  WITH cleaned AS (
    SELECT CASE
      WHEN strpos(x, '://') = 0 THEN x
      ELSE CASE WHEN strpos(rest, '/') = 0 THEN ''
                ELSE substr(rest, strpos(rest, '/') + 1) END
    END AS path
    FROM (SELECT x, substr(x, strpos(x, '://') + 3) AS rest
          FROM (SELECT split_part(split_part(raw, '?', 1), '#', 1) AS x) q) r
  ),
  collections (name, id_name) AS (VALUES
    ('assistants', 'assistant_id'), ('threads', 'thread_id'), ('messages', 'message_id'),
    ('runs', 'run_id'), ('steps', 'step_id'), ('files', 'file_id'),
    ('vector_stores', 'vector_store_id'), ('file_batches', 'batch_id'),
    ('batches', 'batch_id'), ('models', 'model'), ('responses', 'response_id')
  ),
  segments AS (
    SELECT s, row_number() OVER (ORDER BY n) AS i
    FROM cleaned, unnest(string_to_array(cleaned.path, '/')) WITH ORDINALITY u(s, n)
    WHERE s <> ''
  ),
  kept AS (
    SELECT s, i, lag(s) OVER (ORDER BY i) AS previous
    FROM segments
    WHERE i >= coalesce((SELECT min(i) FROM segments WHERE s = 'v1'), 1)
  )
  SELECT '/' || coalesce(string_agg(
    CASE
      WHEN pc.id_name IS NOT NULL AND sc.name IS NULL
           AND k.s NOT IN ('cancel', 'submit_tool_outputs', 'content')
        THEN '{' || pc.id_name || '}'
      WHEN pc.id_name IS NULL AND sc.name IS NULL
           AND k.s ~ '^(?=.*[0-9])[A-Za-z0-9_.:-]{8,}$' THEN '{id}'
      ELSE k.s
    END, '/' ORDER BY k.i), '')
  FROM kept k
  LEFT JOIN collections pc ON pc.name = k.previous
  LEFT JOIN collections sc ON sc.name = k.s
$$;

-- Templates are made when a row is written, not when it is read: a BEFORE trigger moves a raw
-- endpoint to `path` (when the writer left it empty) and stores the template in `endpoint`.
-- So every reader — aigw metrics, the seed's own GROUP BY endpoint query, a dashboard — groups
-- the seed app's rows with aigw's, and metrics never pay for templating per row at read time
-- (measured: several times the cost of the seed's query). aigw's own rows (source 'aigw')
-- arrive as templates already; the WHEN clause skips them without calling the function, so
-- the sync rate does not pay for it either.
CREATE FUNCTION public.aigw_logs_template_endpoint() RETURNS trigger
LANGUAGE plpgsql SET search_path = '' AS $$
BEGIN
  NEW.path := coalesce(NEW.path, NEW.endpoint);
  NEW.endpoint := public.aigw_endpoint_template(NEW.endpoint);
  RETURN NEW;
END;
$$;

CREATE TRIGGER ai_gateway_logs_template_endpoint
  BEFORE INSERT OR UPDATE OF endpoint ON public.ai_gateway_logs
  FOR EACH ROW
  WHEN (NEW.source IS DISTINCT FROM 'aigw')
  EXECUTE FUNCTION public.aigw_logs_template_endpoint();

-- Rows written before this migration: the same treatment, once.
UPDATE public.ai_gateway_logs
SET path = coalesce(path, endpoint), endpoint = public.aigw_endpoint_template(endpoint)
WHERE source IS DISTINCT FROM 'aigw' AND endpoint <> public.aigw_endpoint_template(endpoint);

-- One scan of the window gives three groupings (GROUPING SETS): per `p_by` key (endpoint
-- template, agent, model or UTC hour) with dimension 'by', per UTC hour for the trend with
-- dimension 'hour', and the whole window with dimension 'total'. Per group: calls and attempts
-- counted apart (the attempts of one call share call_id; rows without one, e.g. the seed app's,
-- are one call each), successful calls (those with a 2xx attempt), the error split, latency average and percentile_cont
-- percentiles, cache lookups and token sums. `attempts`, `successful_attempts` and
-- `avg_latency_ms` are exactly the seed's example query's total_calls, successful_calls and
-- avg_latency over the same rows.
CREATE FUNCTION public.aigw_metrics(
  p_since timestamptz DEFAULT NULL,
  p_until timestamptz DEFAULT NULL,
  p_by text DEFAULT 'endpoint',
  p_endpoint text DEFAULT NULL,
  p_agent text DEFAULT NULL
) RETURNS TABLE (
  dimension text,
  group_key text,
  group_label text,
  calls bigint,
  attempts bigint,
  successful_calls bigint,
  successful_attempts bigint,
  client_errors bigint,
  rate_limited bigint,
  server_errors bigint,
  network_errors bigint,
  avg_latency_ms double precision,
  p50_ms double precision,
  p95_ms double precision,
  p99_ms double precision,
  cache_hits bigint,
  cache_lookups bigint,
  prompt_tokens bigint,
  completion_tokens bigint
)
LANGUAGE sql STABLE AS $$
  SELECT
    CASE WHEN GROUPING(w.by_key, w.by_hour) = 0 THEN 'by'
         WHEN GROUPING(w.hour) = 0 THEN 'hour' ELSE 'total' END,
    -- hours are grouped as timestamps and formatted once per group, not once per row
    CASE WHEN GROUPING(w.by_key, w.by_hour) = 0
           THEN coalesce(w.by_key, to_char(w.by_hour, 'YYYY-MM-DD"T"HH24":00:00Z"'))
         WHEN GROUPING(w.hour) = 0 THEN to_char(w.hour, 'YYYY-MM-DD"T"HH24":00:00Z"') END,
    CASE WHEN GROUPING(w.by_key, w.by_hour) = 0 THEN min(w.group_label) END,
    count(DISTINCT w.call_id) + count(*) FILTER (WHERE w.call_id IS NULL),
    count(*),
    -- a call succeeds at most once (retries stop at the first 2xx), so its successful attempt
    -- counts it: no second DISTINCT sort, and never more successes than calls
    count(*) FILTER (WHERE w.status_code BETWEEN 200 AND 299),
    count(*) FILTER (WHERE w.status_code BETWEEN 200 AND 299),
    count(*) FILTER (WHERE w.status_code BETWEEN 400 AND 499 AND w.status_code <> 429),
    count(*) FILTER (WHERE w.status_code = 429),
    count(*) FILTER (WHERE w.status_code BETWEEN 500 AND 599),
    count(*) FILTER (WHERE w.status_code IS NULL OR w.status_code = 0),
    avg(w.latency_ms)::double precision,
    -- the same aggregate three times is computed once: one sort per group for all three
    (percentile_cont(ARRAY[0.5, 0.95, 0.99]) WITHIN GROUP (ORDER BY w.latency_ms))[1],
    (percentile_cont(ARRAY[0.5, 0.95, 0.99]) WITHIN GROUP (ORDER BY w.latency_ms))[2],
    (percentile_cont(ARRAY[0.5, 0.95, 0.99]) WITHIN GROUP (ORDER BY w.latency_ms))[3],
    count(*) FILTER (WHERE lower(w.cache_status) = 'hit'),
    count(*) FILTER (WHERE lower(w.cache_status) IN ('hit', 'miss', 'stale', 'expired')),
    sum(w.prompt_tokens)::bigint,
    sum(w.completion_tokens)::bigint
  FROM (
    SELECT
      CASE p_by
        WHEN 'endpoint' THEN l.endpoint
        WHEN 'agent' THEN coalesce(l.agent_id::text, a.id::text, l.assistant_id)
        WHEN 'model' THEN l.model
        WHEN 'hour' THEN NULL
        ELSE 'total'
      END AS by_key,
      CASE WHEN p_by = 'hour' THEN date_trunc('hour', l.created_at AT TIME ZONE 'UTC') END
        AS by_hour,
      date_trunc('hour', l.created_at AT TIME ZONE 'UTC') AS hour,
      CASE WHEN p_by = 'agent' THEN coalesce(a.name, (
        SELECT n.name FROM public.agents n WHERE n.id = l.agent_id)) END AS group_label,
      l.call_id, l.status_code, l.latency_ms, l.cache_status, l.prompt_tokens,
      l.completion_tokens
    FROM public.ai_gateway_logs l
    LEFT JOIN public.agents a ON l.agent_id IS NULL AND a.openai_assistant_id = l.assistant_id
    WHERE l.created_at >= coalesce(p_since, '-infinity'::timestamptz)
      AND l.created_at < coalesce(p_until, 'infinity'::timestamptz)
      AND (p_endpoint IS NULL OR l.endpoint = public.aigw_endpoint_template(p_endpoint))
      AND (p_agent IS NULL
           OR l.agent_id::text = p_agent OR l.assistant_id = p_agent OR a.id::text = p_agent
           OR l.agent_id IN (SELECT f.id FROM public.agents f WHERE f.name = p_agent))
  ) w
  GROUP BY GROUPING SETS ((w.by_key, w.by_hour), (w.hour), ())
$$;

-- The cost view reads messages by time (the seed's cost query does too).
CREATE INDEX messages_created_at_idx ON public.messages (created_at);

-- Tokens per (agent, model) for the cost view. Recorded usage comes from the log rows; for
-- conversations whose thread has no recorded usage in the window, the seed's approximation
-- (LENGTH(content)/4 over the messages of the agent's conversations) fills in: user messages
-- as input, assistant messages as output, est_tokens = SUM(LENGTH(content))/4 exactly as the
-- seed's cost query computes it. Prices are applied by aigw (a per-model table in config).
CREATE FUNCTION public.aigw_metrics_usage(
  p_since timestamptz DEFAULT NULL,
  p_until timestamptz DEFAULT NULL,
  p_endpoint text DEFAULT NULL,
  p_agent text DEFAULT NULL
) RETURNS TABLE (
  agent_key text,
  agent_name text,
  model text,
  attempts bigint,
  usage_rows bigint,
  prompt_tokens bigint,
  completion_tokens bigint,
  est_messages bigint,
  est_prompt_tokens bigint,
  est_completion_tokens bigint,
  est_tokens bigint
)
LANGUAGE sql STABLE AS $$
  WITH recorded AS (
    SELECT
      coalesce(l.agent_id::text, a.id::text, l.assistant_id) AS agent_key,
      coalesce(l.model, own.model, a.model) AS model,
      count(*) AS attempts,
      count(*) FILTER (WHERE l.prompt_tokens IS NOT NULL OR l.completion_tokens IS NOT NULL)
        AS usage_rows,
      sum(l.prompt_tokens)::bigint AS prompt_tokens,
      sum(l.completion_tokens)::bigint AS completion_tokens
    FROM public.ai_gateway_logs l
    LEFT JOIN public.agents own ON own.id = l.agent_id
    LEFT JOIN public.agents a ON l.agent_id IS NULL AND a.openai_assistant_id = l.assistant_id
    WHERE l.created_at >= coalesce(p_since, '-infinity'::timestamptz)
      AND l.created_at < coalesce(p_until, 'infinity'::timestamptz)
      AND (p_endpoint IS NULL OR l.endpoint = public.aigw_endpoint_template(p_endpoint))
      AND (p_agent IS NULL
           OR l.agent_id::text = p_agent OR l.assistant_id = p_agent OR a.id::text = p_agent
           OR own.name = p_agent OR a.name = p_agent)
    GROUP BY 1, 2
  ),
  threads_with_usage AS (
    SELECT DISTINCT l.thread_id
    FROM public.ai_gateway_logs l
    WHERE l.created_at >= coalesce(p_since, '-infinity'::timestamptz)
      AND l.created_at < coalesce(p_until, 'infinity'::timestamptz)
      AND l.thread_id IS NOT NULL
      AND (l.prompt_tokens IS NOT NULL OR l.completion_tokens IS NOT NULL)
  ),
  estimated AS (
    SELECT
      a.id::text AS agent_key,
      a.model AS model,
      count(m.id) AS est_messages,
      (coalesce(sum(length(m.content)) FILTER (WHERE m.role = 'user'), 0) / 4)::bigint
        AS est_prompt_tokens,
      (coalesce(sum(length(m.content)) FILTER (WHERE m.role = 'assistant'), 0) / 4)::bigint
        AS est_completion_tokens,
      (sum(length(m.content)) / 4)::bigint AS est_tokens
    FROM public.agents a
    JOIN public.conversations c ON c.agent_id = a.id
    JOIN public.messages m ON m.conversation_id = c.id
    WHERE m.created_at >= coalesce(p_since, '-infinity'::timestamptz)
      AND m.created_at < coalesce(p_until, 'infinity'::timestamptz)
      AND p_endpoint IS NULL -- messages belong to no endpoint: no estimate for one
      AND NOT EXISTS (SELECT 1 FROM threads_with_usage t WHERE t.thread_id = c.openai_thread_id)
      AND (p_agent IS NULL OR a.id::text = p_agent OR a.name = p_agent
           OR a.openai_assistant_id = p_agent)
    GROUP BY a.id, a.model
  )
  SELECT
    coalesce(r.agent_key, e.agent_key),
    n.name,
    coalesce(r.model, e.model),
    coalesce(r.attempts, 0)::bigint,
    coalesce(r.usage_rows, 0)::bigint,
    r.prompt_tokens,
    r.completion_tokens,
    coalesce(e.est_messages, 0)::bigint,
    coalesce(e.est_prompt_tokens, 0)::bigint,
    coalesce(e.est_completion_tokens, 0)::bigint,
    coalesce(e.est_tokens, 0)::bigint
  FROM recorded r
  FULL JOIN estimated e
    ON e.agent_key = r.agent_key AND coalesce(e.model, '') = coalesce(r.model, '')
  LEFT JOIN public.agents n ON n.id::text = coalesce(r.agent_key, e.agent_key)
  ORDER BY 1, 3
$$;

-- Retention for `aigw logs prune --dry-run`: how many rows are older than the cutoff.
CREATE FUNCTION public.aigw_logs_count_before(p_before timestamptz) RETURNS bigint
LANGUAGE sql STABLE AS $$
  SELECT count(*) FROM public.ai_gateway_logs WHERE created_at < p_before
$$;

-- Who may call them: the service role (and the owner, i.e. a direct connection) — metrics are
-- the operator's team-wide view. anon and authenticated may not: they cannot read `agents`,
-- which the functions join for agent names.
REVOKE ALL ON FUNCTION public.aigw_metrics(timestamptz, timestamptz, text, text, text),
  public.aigw_metrics_usage(timestamptz, timestamptz, text, text),
  public.aigw_logs_count_before(timestamptz) FROM PUBLIC, anon;
GRANT EXECUTE ON FUNCTION public.aigw_metrics(timestamptz, timestamptz, text, text, text),
  public.aigw_metrics_usage(timestamptz, timestamptz, text, text),
  public.aigw_logs_count_before(timestamptz) TO service_role;
