-- 0008_metrics_model_bucket: a model filter and a trend bucket for `aigw metrics` and the
-- dashboard, and the recorded tokens per model over time (the dashboard's cost chart).
-- (0003 stays as released: migrations are never edited.)
--
-- aigw_metrics and aigw_metrics_usage take `p_model` (only rows whose model is that one: the
-- model the call named or answered with; the seed's message estimate has no model of its own,
-- so none is made for one), and aigw_metrics `p_bucket_seconds` (the 'hour' rows are buckets
-- of that many seconds, 1 hour by default, labelled with their start to the minute). Both
-- default to what 0003 did, so calls written for 0003 get the same rows; the old signatures
-- are dropped first, or a five-argument call would match both.
-- aigw_metrics_model_trend: per (bucket, model) the tokens recorded in the logs, with the
-- model and agent resolved as aigw_metrics_usage resolves them: summed over the buckets they
-- are its recorded tokens per model. One hashed pass over the window, no sort.
DROP FUNCTION public.aigw_metrics(timestamptz, timestamptz, text, text, text);
DROP FUNCTION public.aigw_metrics_usage(timestamptz, timestamptz, text, text);

CREATE FUNCTION public.aigw_metrics(
  p_since timestamptz DEFAULT NULL,
  p_until timestamptz DEFAULT NULL,
  p_by text DEFAULT 'endpoint',
  p_endpoint text DEFAULT NULL,
  p_agent text DEFAULT NULL,
  p_model text DEFAULT NULL,
  p_bucket_seconds integer DEFAULT 3600
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
  WITH cells AS (
    SELECT
      w.by_key,
      w.hour,
      w.by_hour,
      min(w.group_label) AS group_label,
      count(*) AS attempts,
      count(*) FILTER (WHERE w.call_id IS NULL) AS calls_without_id,
      count(*) FILTER (WHERE w.status_code BETWEEN 200 AND 299) AS successful,
      count(*) FILTER (WHERE w.status_code BETWEEN 400 AND 499 AND w.status_code <> 429)
        AS client_errors,
      count(*) FILTER (WHERE w.status_code = 429) AS rate_limited,
      count(*) FILTER (WHERE w.status_code BETWEEN 500 AND 599) AS server_errors,
      count(*) FILTER (WHERE w.status_code IS NULL OR w.status_code = 0) AS network_errors,
      sum(w.latency_ms) AS latency_sum,
      count(w.latency_ms) AS latency_count,
      count(*) FILTER (WHERE w.cache = 'hit') AS cache_hits,
      count(*) FILTER (WHERE w.cache IN ('hit', 'miss', 'stale', 'expired')) AS cache_lookups,
      sum(w.prompt_tokens) AS prompt_tokens,
      sum(w.completion_tokens) AS completion_tokens,
      array_agg(w.latency_ms) AS latencies,
      array_agg(w.call_id) FILTER (WHERE w.call_id IS NOT NULL) AS call_ids
    FROM (
      SELECT
        CASE p_by
          WHEN 'endpoint' THEN l.endpoint
          WHEN 'agent' THEN coalesce(l.agent_id::text, a.id::text, l.assistant_id)
          WHEN 'model' THEN l.model
          WHEN 'hour' THEN NULL
          ELSE 'total'
        END AS by_key,
        -- the trend's bucket (p_bucket_seconds: 5 min, 1 h or 1 day as aigw picks them
        -- from the window), counted from a UTC midnight long before any row; still named
        -- `hour`, its default size
        date_bin(make_interval(secs => p_bucket_seconds), l.created_at,
                 '0001-01-01 00:00:00+00') AS hour,
        -- `p_by = 'hour'` groups by UTC hour whatever the bucket
        CASE WHEN p_by = 'hour' THEN date_bin('1 hour', l.created_at, '0001-01-01 00:00:00+00')
        END AS by_hour,
        -- (the lookup by agent_id only where there is one: without, it finds nothing)
        CASE WHEN p_by = 'agent' THEN coalesce(a.name, CASE WHEN l.agent_id IS NOT NULL THEN (
          SELECT n.name FROM public.agents n WHERE n.id = l.agent_id) END) END AS group_label,
        -- lower() only where it can change the answer: these four are lower-case already
        CASE WHEN l.cache_status IN ('hit', 'miss', 'stale', 'expired') THEN l.cache_status
             ELSE lower(l.cache_status) END AS cache,
        l.call_id, l.status_code, l.latency_ms, l.prompt_tokens, l.completion_tokens
      FROM public.ai_gateway_logs l
      LEFT JOIN public.agents a ON l.agent_id IS NULL AND a.openai_assistant_id = l.assistant_id
      WHERE l.created_at >= coalesce(p_since, '-infinity'::timestamptz)
        AND l.created_at < coalesce(p_until, 'infinity'::timestamptz)
        AND (p_endpoint IS NULL OR l.endpoint = public.aigw_endpoint_template(p_endpoint))
        AND (p_agent IS NULL
             OR l.agent_id::text = p_agent OR l.assistant_id = p_agent OR a.id::text = p_agent
             OR l.agent_id IN (SELECT f.id FROM public.agents f WHERE f.name = p_agent))
        AND (p_model IS NULL OR l.model = p_model)
      -- Kept a subquery (OFFSET 0), so the planner estimates cells as keys × hours rather than
      -- one per row, and hashes them when work_mem allows (the direct connection sets 32MB).
      -- With less it sorts the rows into cells: the same results, slower (still faster than 0002).
      OFFSET 0
    ) w
    GROUP BY w.by_key, w.hour, w.by_hour
  ),
  groups AS (
    SELECT
      CASE WHEN GROUPING(c.by_key, c.by_hour) = 0 THEN 'by'
           WHEN GROUPING(c.hour) = 0 THEN 'hour' ELSE 'total' END AS dimension,
      c.by_key, c.by_hour, c.hour,
      min(c.group_label) AS group_label,
      coalesce(sum(c.attempts), 0) AS attempts,
      coalesce(sum(c.calls_without_id), 0) AS calls_without_id,
      coalesce(sum(c.successful), 0) AS successful,
      coalesce(sum(c.client_errors), 0) AS client_errors,
      coalesce(sum(c.rate_limited), 0) AS rate_limited,
      coalesce(sum(c.server_errors), 0) AS server_errors,
      coalesce(sum(c.network_errors), 0) AS network_errors,
      -- exactly avg(latency_ms): the numeric quotient of the integer sum and count
      sum(c.latency_sum)::numeric / nullif(sum(c.latency_count), 0) AS avg_latency,
      coalesce(sum(c.cache_hits), 0) AS cache_hits,
      coalesce(sum(c.cache_lookups), 0) AS cache_lookups,
      sum(c.prompt_tokens) AS prompt_tokens,
      sum(c.completion_tokens) AS completion_tokens
    FROM cells c
    GROUP BY GROUPING SETS ((c.by_key, c.by_hour), (c.hour), ())
  )
  SELECT
    g.dimension,
    CASE g.dimension
      WHEN 'by' THEN coalesce(g.by_key,
        to_char(g.by_hour AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24":00:00Z"'))
      WHEN 'hour' THEN to_char(g.hour AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24":"MI":00Z"')
    END,
    CASE WHEN g.dimension = 'by' THEN g.group_label END,
    (s.distinct_calls + g.calls_without_id)::bigint,
    g.attempts::bigint,
    -- a call succeeds at most once (retries stop at the first 2xx): its successful attempt
    -- counts it, so successful calls are the successful attempts
    g.successful::bigint,
    g.successful::bigint,
    g.client_errors::bigint,
    g.rate_limited::bigint,
    g.server_errors::bigint,
    g.network_errors::bigint,
    g.avg_latency::double precision,
    s.percentiles[1],
    s.percentiles[2],
    s.percentiles[3],
    g.cache_hits::bigint,
    g.cache_lookups::bigint,
    g.prompt_tokens::bigint,
    g.completion_tokens::bigint
  FROM groups g
  CROSS JOIN LATERAL (
    -- the group's rows, as the values in its cells' arrays; side by side, the shorter
    -- call_ids (rows without one left out) is padded with NULLs, which count ignores
    SELECT
      percentile_cont(ARRAY[0.5, 0.95, 0.99]) WITHIN GROUP (ORDER BY v.latency_ms)
        AS percentiles,
      count(DISTINCT v.call_id) AS distinct_calls
    FROM (
      SELECT unnest(c.latencies) AS latency_ms, unnest(c.call_ids) AS call_id
      FROM cells c
      WHERE CASE g.dimension
              WHEN 'by' THEN c.by_key IS NOT DISTINCT FROM g.by_key
                             AND c.by_hour IS NOT DISTINCT FROM g.by_hour
              WHEN 'hour' THEN c.hour = g.hour
              ELSE true
            END
    ) v
  ) s
$$;


CREATE FUNCTION public.aigw_metrics_usage(
  p_since timestamptz DEFAULT NULL,
  p_until timestamptz DEFAULT NULL,
  p_endpoint text DEFAULT NULL,
  p_agent text DEFAULT NULL,
  p_model text DEFAULT NULL
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
  WITH logged AS (
    SELECT
      l.agent_id, l.assistant_id, l.model,
      count(*) AS attempts,
      count(*) FILTER (WHERE l.prompt_tokens IS NOT NULL OR l.completion_tokens IS NOT NULL)
        AS usage_rows,
      sum(l.prompt_tokens) AS prompt_tokens,
      sum(l.completion_tokens) AS completion_tokens
    FROM public.ai_gateway_logs l
    WHERE l.created_at >= coalesce(p_since, '-infinity'::timestamptz)
      AND l.created_at < coalesce(p_until, 'infinity'::timestamptz)
      AND (p_endpoint IS NULL OR l.endpoint = public.aigw_endpoint_template(p_endpoint))
    GROUP BY l.agent_id, l.assistant_id, l.model
  ),
  recorded AS (
    SELECT
      coalesce(g.agent_id::text, a.id::text, g.assistant_id) AS agent_key,
      coalesce(g.model, own.model, a.model) AS model,
      sum(g.attempts) AS attempts,
      sum(g.usage_rows) AS usage_rows,
      sum(g.prompt_tokens)::bigint AS prompt_tokens,
      sum(g.completion_tokens)::bigint AS completion_tokens
    FROM logged g
    LEFT JOIN public.agents own ON own.id = g.agent_id
    LEFT JOIN public.agents a ON g.agent_id IS NULL AND a.openai_assistant_id = g.assistant_id
    WHERE (p_agent IS NULL
       OR g.agent_id::text = p_agent OR g.assistant_id = p_agent OR a.id::text = p_agent
       OR own.name = p_agent OR a.name = p_agent)
      AND (p_model IS NULL OR g.model = p_model)
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
      AND p_model IS NULL -- the estimate knows no model of its own: none for one
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

CREATE FUNCTION public.aigw_metrics_model_trend(
  p_since timestamptz DEFAULT NULL,
  p_until timestamptz DEFAULT NULL,
  p_bucket_seconds integer DEFAULT 3600,
  p_endpoint text DEFAULT NULL,
  p_agent text DEFAULT NULL,
  p_model text DEFAULT NULL
) RETURNS TABLE (
  bucket text,
  model text,
  prompt_tokens bigint,
  completion_tokens bigint
)
LANGUAGE sql STABLE AS $$
  WITH logged AS (
    SELECT
      date_bin(make_interval(secs => p_bucket_seconds), l.created_at,
               '0001-01-01 00:00:00+00') AS bucket,
      l.agent_id, l.assistant_id, l.model,
      sum(l.prompt_tokens) AS prompt_tokens,
      sum(l.completion_tokens) AS completion_tokens
    FROM public.ai_gateway_logs l
    WHERE l.created_at >= coalesce(p_since, '-infinity'::timestamptz)
      AND l.created_at < coalesce(p_until, 'infinity'::timestamptz)
      AND (p_endpoint IS NULL OR l.endpoint = public.aigw_endpoint_template(p_endpoint))
      AND (l.prompt_tokens IS NOT NULL OR l.completion_tokens IS NOT NULL)
    GROUP BY 1, l.agent_id, l.assistant_id, l.model
  )
  SELECT
    to_char(g.bucket AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24":"MI":00Z"'),
    coalesce(g.model, own.model, a.model),
    sum(g.prompt_tokens)::bigint,
    sum(g.completion_tokens)::bigint
  FROM logged g
  LEFT JOIN public.agents own ON own.id = g.agent_id
  LEFT JOIN public.agents a ON g.agent_id IS NULL AND a.openai_assistant_id = g.assistant_id
  WHERE (p_agent IS NULL
     OR g.agent_id::text = p_agent OR g.assistant_id = p_agent OR a.id::text = p_agent
     OR own.name = p_agent OR a.name = p_agent)
    AND (p_model IS NULL OR g.model = p_model)
  GROUP BY g.bucket, coalesce(g.model, own.model, a.model)
  ORDER BY 1, 2
$$;

REVOKE ALL ON FUNCTION
  public.aigw_metrics(timestamptz, timestamptz, text, text, text, text, integer),
  public.aigw_metrics_usage(timestamptz, timestamptz, text, text, text),
  public.aigw_metrics_model_trend(timestamptz, timestamptz, integer, text, text, text)
  FROM PUBLIC, anon;
GRANT EXECUTE ON FUNCTION
  public.aigw_metrics(timestamptz, timestamptz, text, text, text, text, integer),
  public.aigw_metrics_usage(timestamptz, timestamptz, text, text, text),
  public.aigw_metrics_model_trend(timestamptz, timestamptz, integer, text, text, text)
  TO service_role;
