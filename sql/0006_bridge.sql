-- 0006_bridge: the state of the Assistants API the gateway serves itself (aigw/bridge/).
--
-- Assistants map onto the seed's `agents` by openai_assistant_id (bridge_assistants.agent_id);
-- `conversations` and `messages` stay the application's own, as the seed writes them, and
-- join the bridge's threads and messages by openai_thread_id / openai_message_id. The rest of
-- an Assistants object (metadata, tools, runs, steps, tool calls) has no seed column: each
-- object is kept whole, in the API's shape, in `body`.
--
-- One active run per thread is the partial unique index bridge_runs_one_active_per_thread:
-- two gateway instances serving the same thread are held to it by the database.
-- lease_until: a run in flight belongs to the instance that wrote it until then; past it, the
-- run is failed as interrupted (its instance died).

CREATE TABLE bridge_assistants (
  id TEXT PRIMARY KEY, -- asst_…
  seq BIGINT GENERATED ALWAYS AS IDENTITY,
  agent_id UUID REFERENCES agents(id) ON DELETE SET NULL,
  body JSONB NOT NULL
);

CREATE TABLE bridge_threads (
  id TEXT PRIMARY KEY, -- thread_…, conversations.openai_thread_id
  seq BIGINT GENERATED ALWAYS AS IDENTITY,
  body JSONB NOT NULL
);

CREATE TABLE bridge_messages (
  id TEXT PRIMARY KEY, -- msg_…, messages.openai_message_id
  seq BIGINT GENERATED ALWAYS AS IDENTITY,
  thread_id TEXT NOT NULL REFERENCES bridge_threads(id) ON DELETE CASCADE,
  run_id TEXT,
  body JSONB NOT NULL
);

CREATE TABLE bridge_runs (
  id TEXT PRIMARY KEY, -- run_…
  seq BIGINT GENERATED ALWAYS AS IDENTITY,
  thread_id TEXT NOT NULL REFERENCES bridge_threads(id) ON DELETE CASCADE,
  status TEXT NOT NULL,
  lease_until DOUBLE PRECISION,
  body JSONB NOT NULL
);

CREATE TABLE bridge_run_steps (
  id TEXT PRIMARY KEY, -- step_…
  seq BIGINT GENERATED ALWAYS AS IDENTITY,
  thread_id TEXT NOT NULL REFERENCES bridge_threads(id) ON DELETE CASCADE,
  run_id TEXT NOT NULL,
  body JSONB NOT NULL
);

CREATE UNIQUE INDEX bridge_runs_one_active_per_thread ON bridge_runs (thread_id)
  WHERE status IN ('queued', 'in_progress', 'requires_action', 'cancelling');
CREATE INDEX bridge_messages_thread_id_seq_idx ON bridge_messages (thread_id, seq);
CREATE INDEX bridge_runs_thread_id_seq_idx ON bridge_runs (thread_id, seq);
CREATE INDEX bridge_run_steps_run_id_seq_idx ON bridge_run_steps (run_id, seq);
CREATE INDEX bridge_run_steps_thread_id_idx ON bridge_run_steps (thread_id);
CREATE INDEX bridge_assistants_agent_id_idx ON bridge_assistants (agent_id);

-- Row-level security as on the seed's tables: only the service role (and the owner) reads or
-- writes; the bridge's state is the gateway's, not an end user's.
ALTER TABLE bridge_assistants ENABLE ROW LEVEL SECURITY;
ALTER TABLE bridge_threads ENABLE ROW LEVEL SECURITY;
ALTER TABLE bridge_messages ENABLE ROW LEVEL SECURITY;
ALTER TABLE bridge_runs ENABLE ROW LEVEL SECURITY;
ALTER TABLE bridge_run_steps ENABLE ROW LEVEL SECURITY;

REVOKE ALL ON bridge_assistants, bridge_threads, bridge_messages, bridge_runs, bridge_run_steps
  FROM anon, authenticated;
GRANT ALL ON bridge_assistants, bridge_threads, bridge_messages, bridge_runs, bridge_run_steps
  TO service_role;

CREATE POLICY bridge_assistants_service_role_all ON bridge_assistants
  FOR ALL TO service_role USING (true) WITH CHECK (true);
CREATE POLICY bridge_threads_service_role_all ON bridge_threads
  FOR ALL TO service_role USING (true) WITH CHECK (true);
CREATE POLICY bridge_messages_service_role_all ON bridge_messages
  FOR ALL TO service_role USING (true) WITH CHECK (true);
CREATE POLICY bridge_runs_service_role_all ON bridge_runs
  FOR ALL TO service_role USING (true) WITH CHECK (true);
CREATE POLICY bridge_run_steps_service_role_all ON bridge_run_steps
  FOR ALL TO service_role USING (true) WITH CHECK (true);
