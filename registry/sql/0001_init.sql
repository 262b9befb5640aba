-- 0001: workspaces, nodes, bootstrap tokens, pipelines, desired state, audit.
-- Times are milliseconds since the Unix epoch (bigint), set by the services.

CREATE TABLE IF NOT EXISTS workspaces (
  name        text PRIMARY KEY,
  description text NOT NULL DEFAULT '',
  created_ms  bigint NOT NULL
);

CREATE TABLE IF NOT EXISTS nodes (
  workspace       text NOT NULL REFERENCES workspaces(name) ON DELETE CASCADE,
  name            text NOT NULL,
  labels          jsonb NOT NULL DEFAULT '{}'::jsonb,
  -- new | online | stale | offline | revoked
  state           text NOT NULL DEFAULT 'new',
  state_since_ms  bigint NOT NULL,
  created_ms      bigint NOT NULL,
  last_seen_ms    bigint NOT NULL DEFAULT 0,
  bd_seq          bigint NOT NULL DEFAULT 0,
  health          bytea,            -- latest cairn.v1.NodeHealth
  health_ms       bigint NOT NULL DEFAULT 0,
  health_interval_s integer NOT NULL DEFAULT 10,
  agent_version   text NOT NULL DEFAULT '',
  cert_sha256     text NOT NULL DEFAULT '',
  cert_expires_ms bigint NOT NULL DEFAULT 0,
  PRIMARY KEY (workspace, name)
);
CREATE INDEX IF NOT EXISTS nodes_labels_gin ON nodes USING gin (labels);

CREATE TABLE IF NOT EXISTS bootstrap_tokens (
  id            text PRIMARY KEY,
  workspace     text NOT NULL REFERENCES workspaces(name) ON DELETE CASCADE,
  secret_sha256 text NOT NULL,     -- only a hash of the secret is stored
  labels        jsonb NOT NULL DEFAULT '{}'::jsonb,
  description   text NOT NULL DEFAULT '',
  created_ms    bigint NOT NULL,
  expires_ms    bigint NOT NULL DEFAULT 0,   -- 0 = never
  uses_allowed  integer NOT NULL DEFAULT 0,  -- 0 = unlimited
  uses          integer NOT NULL DEFAULT 0,
  revoked       boolean NOT NULL DEFAULT false
);
CREATE INDEX IF NOT EXISTS bootstrap_tokens_ws ON bootstrap_tokens (workspace);

CREATE TABLE IF NOT EXISTS pipelines (
  workspace  text NOT NULL REFERENCES workspaces(name) ON DELETE CASCADE,
  name       text NOT NULL,
  selector   text NOT NULL,
  version    integer NOT NULL,
  digest     text NOT NULL,
  spec       bytea NOT NULL,         -- cairn.v1.PipelineSpec
  created_ms bigint NOT NULL,
  updated_ms bigint NOT NULL,
  PRIMARY KEY (workspace, name)
);

CREATE TABLE IF NOT EXISTS pipeline_versions (
  workspace  text NOT NULL,
  name       text NOT NULL,
  version    integer NOT NULL,
  selector   text NOT NULL,
  digest     text NOT NULL,
  spec       bytea NOT NULL,
  created_ms bigint NOT NULL,
  PRIMARY KEY (workspace, name, version)
);

-- What the scheduler last published as each node's retained desired state.
CREATE TABLE IF NOT EXISTS node_desired (
  workspace  text NOT NULL,
  node       text NOT NULL,
  generation bigint NOT NULL,
  desired    bytea NOT NULL,         -- cairn.v1.DesiredState
  updated_ms bigint NOT NULL,
  PRIMARY KEY (workspace, node)
);

CREATE TABLE IF NOT EXISTS audit_log (
  id        bigserial PRIMARY KEY,
  at_ms     bigint NOT NULL,
  actor     text NOT NULL,
  action    text NOT NULL,
  workspace text NOT NULL DEFAULT '',
  target    text NOT NULL DEFAULT '',
  detail    text NOT NULL DEFAULT ''
);
