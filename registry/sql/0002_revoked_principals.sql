-- 0002: every broker principal ever revoked. The broker plugin keeps its own
-- revocation list by principal (certificate CN), so a name once revoked stays
-- unusable: bootstrap refuses it, even after the node or its workspace is
-- deleted.
CREATE TABLE IF NOT EXISTS revoked_principals (
  principal  text PRIMARY KEY,
  at_ms      bigint NOT NULL,
  reason     text NOT NULL DEFAULT ''
);
INSERT INTO revoked_principals (principal, at_ms, reason)
  SELECT 'node:' || workspace || ':' || name, state_since_ms, 'node revoked'
  FROM nodes WHERE state = 'revoked'
  ON CONFLICT DO NOTHING;
