-- 0001_core: the seed's four tables (agents, conversations, messages, ai_gateway_logs),
-- the indexes behind aigw's reads, and row-level security.
--
-- Adapted from the seed design doc's DDL (gateway-integration.md); why, in short:
--  * tables are created in dependency order (the seed creates conversations before agents);
--  * UUID defaults use gen_random_uuid(), built into PostgreSQL 13+ and Supabase, instead of
--    uuid_generate_v4(), which needs the uuid-ossp extension;
--  * created_at is NOT NULL (every time-window read filters on it);
--  * ai_gateway_logs keeps every seed column and adds what aigw records, all nullable, so the
--    seed app's own logGatewayCall inserts keep working;
--  * foreign keys from the logs do not block deleting an agent or a user (ON DELETE SET NULL);
--  * messages.openai_message_id is UNIQUE so mirrored writes can upsert on it.
-- auth.users, auth.uid() and the roles anon/authenticated/service_role come from Supabase;
-- on plain PostgreSQL `aigw migrate` creates minimal stand-ins before this file runs.

CREATE TABLE agents (
  id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
  name TEXT NOT NULL,
  openai_assistant_id TEXT UNIQUE, -- the OpenAI assistant ID (asst_…)
  instructions TEXT,
  model TEXT DEFAULT 'gpt-4-turbo',
  created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE conversations (
  id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
  agent_id UUID NOT NULL REFERENCES agents(id),
  user_id UUID NOT NULL REFERENCES auth.users(id),
  openai_thread_id TEXT UNIQUE, -- the OpenAI thread ID (thread_…)
  created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
  updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE messages (
  id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
  conversation_id UUID NOT NULL REFERENCES conversations(id),
  openai_message_id TEXT UNIQUE, -- the OpenAI message ID (msg_…); unique so mirrors can upsert
  role TEXT NOT NULL CHECK (role IN ('user', 'assistant')),
  content TEXT NOT NULL,
  created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE ai_gateway_logs (
  -- the seed's columns
  id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
  created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
  endpoint TEXT NOT NULL,
  method TEXT NOT NULL,
  status_code INTEGER,
  latency_ms INTEGER,
  request_payload JSONB,
  response_payload JSONB,
  error_message TEXT,
  user_id UUID REFERENCES auth.users(id) ON DELETE SET NULL,
  agent_id UUID REFERENCES agents(id) ON DELETE SET NULL,
  -- what aigw records besides (all nullable: the seed's inserts leave them empty)
  path TEXT,               -- the raw request path, IDs included; endpoint is the template
  request_id TEXT,         -- the upstream x-request-id
  call_id UUID,            -- one logical call; its retries share it
  attempt INTEGER,         -- 1 for the first try
  route TEXT,              -- 'gateway' or 'direct'
  cache_status TEXT,       -- hit, miss, bypass…
  thread_id TEXT,
  run_id TEXT,
  assistant_id TEXT,
  model TEXT,
  prompt_tokens INTEGER,
  completion_tokens INTEGER,
  total_tokens INTEGER,
  source TEXT              -- who wrote the row, e.g. 'aigw'; NULL for the seed app
);

-- conversations.updated_at moves on every update, not only at insert, unless the update sets
-- it itself (a mirror copying timestamps from elsewhere).
CREATE FUNCTION conversations_touch_updated_at() RETURNS trigger
LANGUAGE plpgsql SET search_path = '' AS $$
BEGIN
  IF NEW.updated_at IS NOT DISTINCT FROM OLD.updated_at THEN
    NEW.updated_at := now();
  END IF;
  RETURN NEW;
END;
$$;

CREATE TRIGGER conversations_touch_updated_at
  BEFORE UPDATE ON conversations
  FOR EACH ROW EXECUTE FUNCTION conversations_touch_updated_at();

-- Indexes for the reads: time windows, per endpoint, per agent; per user for the RLS policy
-- (and so deleting a user or an agent does not scan the logs).
CREATE INDEX ai_gateway_logs_created_at_idx ON ai_gateway_logs (created_at);
CREATE INDEX ai_gateway_logs_endpoint_created_at_idx ON ai_gateway_logs (endpoint, created_at);
CREATE INDEX ai_gateway_logs_agent_id_created_at_idx ON ai_gateway_logs (agent_id, created_at);
CREATE INDEX ai_gateway_logs_user_id_created_at_idx ON ai_gateway_logs (user_id, created_at);
CREATE INDEX messages_conversation_id_created_at_idx ON messages (conversation_id, created_at);
CREATE INDEX conversations_agent_id_idx ON conversations (agent_id);
CREATE INDEX conversations_user_id_idx ON conversations (user_id);

-- Row-level security. The table owner (the direct connection aigw uses) is not subject to it;
-- the API roles are. Grants are narrowed too, so a policy added by mistake later cannot open
-- a table to anon: anon gets nothing, authenticated only SELECT on what it may own.
ALTER TABLE agents ENABLE ROW LEVEL SECURITY;
ALTER TABLE conversations ENABLE ROW LEVEL SECURITY;
ALTER TABLE messages ENABLE ROW LEVEL SECURITY;
ALTER TABLE ai_gateway_logs ENABLE ROW LEVEL SECURITY;

REVOKE ALL ON agents, conversations, messages, ai_gateway_logs FROM anon, authenticated;
GRANT SELECT ON conversations, messages, ai_gateway_logs TO authenticated;
GRANT ALL ON agents, conversations, messages, ai_gateway_logs TO service_role;

-- Supabase's service_role already bypasses RLS; the explicit policies say so in the schema
-- and make the stand-in role (which does not bypass) behave the same.
CREATE POLICY agents_service_role_all ON agents
  FOR ALL TO service_role USING (true) WITH CHECK (true);
CREATE POLICY conversations_service_role_all ON conversations
  FOR ALL TO service_role USING (true) WITH CHECK (true);
CREATE POLICY messages_service_role_all ON messages
  FOR ALL TO service_role USING (true) WITH CHECK (true);
CREATE POLICY ai_gateway_logs_service_role_all ON ai_gateway_logs
  FOR ALL TO service_role USING (true) WITH CHECK (true);

-- `(SELECT auth.uid())` rather than `auth.uid()`: evaluated once per query, not per row
-- (Supabase's RLS performance advice).
CREATE POLICY conversations_owner_select ON conversations
  FOR SELECT TO authenticated USING (user_id = (SELECT auth.uid()));
CREATE POLICY messages_owner_select ON messages
  FOR SELECT TO authenticated USING (
    EXISTS (
      SELECT 1 FROM conversations c
      WHERE c.id = messages.conversation_id AND c.user_id = (SELECT auth.uid())
    )
  );
CREATE POLICY ai_gateway_logs_owner_select ON ai_gateway_logs
  FOR SELECT TO authenticated USING (user_id = (SELECT auth.uid()));
