-- 0003: users and their role bindings, integrator credentials, node
-- certificates by serial, revoked serials, and the read-only view through
-- which the scheduler reads role bindings. Safe to run twice.

-- People (MQTT username "user:{name}"). password_hash is PBKDF2-SHA256
-- (cairn_policy HashPassword); the clear password is never stored.
CREATE TABLE IF NOT EXISTS users (
  name          text PRIMARY KEY,
  password_hash text NOT NULL,
  created_ms    bigint NOT NULL
);

-- One role per user and workspace; workspace '*' is a cluster-wide binding.
-- Not a foreign key to workspaces (because of '*'): DeleteWorkspace removes
-- the workspace's bindings itself.
CREATE TABLE IF NOT EXISTS role_bindings (
  user_name  text NOT NULL REFERENCES users(name) ON DELETE CASCADE,
  workspace  text NOT NULL,
  role       text NOT NULL CHECK (role IN ('viewer', 'operator', 'admin')),
  created_ms bigint NOT NULL,
  created_by text NOT NULL DEFAULT '',
  PRIMARY KEY (user_name, workspace)
);
CREATE INDEX IF NOT EXISTS role_bindings_ws ON role_bindings (workspace);

-- Read-only integrator credentials (MQTT username "cred:{ws}:{name}").
CREATE TABLE IF NOT EXISTS integrator_credentials (
  workspace     text NOT NULL REFERENCES workspaces(name) ON DELETE CASCADE,
  name          text NOT NULL,
  password_hash text NOT NULL,
  created_ms    bigint NOT NULL,
  expires_ms    bigint NOT NULL DEFAULT 0,   -- 0 = never
  revoked       boolean NOT NULL DEFAULT false,
  created_by    text NOT NULL DEFAULT '',
  PRIMARY KEY (workspace, name)
);

-- Every node certificate the registry signed (bootstrap and renewals).
-- serial: upper-case hex without leading zeros (OpenSSL BN_bn2hex). Kept
-- after the node or its workspace is deleted, for the record.
CREATE TABLE IF NOT EXISTS node_certificates (
  serial     text PRIMARY KEY,
  workspace  text NOT NULL,
  node       text NOT NULL,
  issued_ms  bigint NOT NULL,
  expires_ms bigint NOT NULL,
  issued_by  text NOT NULL DEFAULT ''       -- "bootstrap token ID" or "renewal"
);
CREATE INDEX IF NOT EXISTS node_certificates_node ON node_certificates (workspace, node);

-- The node's current certificate.
ALTER TABLE nodes ADD COLUMN IF NOT EXISTS cert_serial text NOT NULL DEFAULT '';

-- Certificates revoked by serial; replayed to the broker plugin
-- ("serial:<HEX>" on cairn/v1/sys/revoke) on every (re)connect.
CREATE TABLE IF NOT EXISTS revoked_serials (
  serial    text PRIMARY KEY,
  workspace text NOT NULL DEFAULT '',
  at_ms     bigint NOT NULL,
  reason    text NOT NULL DEFAULT ''
);

-- The one way other services read role bindings (cairn/common/authz.h).
CREATE OR REPLACE VIEW access_bindings AS
  SELECT user_name, workspace, role FROM role_bindings;
