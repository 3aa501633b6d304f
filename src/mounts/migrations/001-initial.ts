import type { Migration } from './index.ts'

// Timestamps: SQLite keeps ISO 8601 UTC text (Date#toISOString sorts chronologically);
// PostgreSQL uses timestamptz. JSON arrays (mount options, credential key names) are JSON text.

export const initial: Migration = {
  version: 1,
  name: 'initial',
  sqlite: `
CREATE TABLE sandboxes (
  id TEXT PRIMARY KEY,
  tenant TEXT NOT NULL,
  agent_url TEXT NOT NULL,
  agent_token_secret TEXT NOT NULL,
  state TEXT NOT NULL,
  created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL
) STRICT;

CREATE TABLE mounts (
  id TEXT PRIMARY KEY,
  sandbox_id TEXT NOT NULL REFERENCES sandboxes (id) ON DELETE CASCADE,
  path TEXT NOT NULL,
  remote TEXT NOT NULL,
  backend TEXT NOT NULL,
  credentials_ref TEXT,
  read_write INTEGER NOT NULL,
  mount_options TEXT NOT NULL,
  status TEXT NOT NULL,
  last_error TEXT,
  last_checked_at TEXT,
  spec_hash TEXT NOT NULL,
  config_secret TEXT NOT NULL,
  created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL,
  CONSTRAINT mounts_sandbox_path_unique UNIQUE (sandbox_id, path)
) STRICT;
CREATE INDEX mounts_sandbox_created ON mounts (sandbox_id, created_at, id);
CREATE INDEX mounts_credentials_ref ON mounts (credentials_ref) WHERE credentials_ref IS NOT NULL;
CREATE INDEX mounts_status ON mounts (status);

CREATE TABLE credentials (
  tenant TEXT NOT NULL,
  name TEXT NOT NULL,
  backend TEXT NOT NULL,
  keys TEXT NOT NULL,
  secret TEXT NOT NULL,
  created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL,
  PRIMARY KEY (tenant, name)
) STRICT;

CREATE TABLE idempotency_keys (
  tenant TEXT NOT NULL,
  key TEXT NOT NULL,
  request_hash TEXT NOT NULL,
  status_code INTEGER NOT NULL,
  body TEXT NOT NULL,
  created_at TEXT NOT NULL,
  PRIMARY KEY (tenant, key)
) STRICT;
CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);

-- expires_at: milliseconds since the epoch, from the process clock (one host owns the file).
CREATE TABLE leases (
  name TEXT PRIMARY KEY,
  holder TEXT NOT NULL,
  expires_at INTEGER NOT NULL
) STRICT;
`,
  postgres: `
CREATE TABLE sandboxes (
  id text PRIMARY KEY,
  tenant text NOT NULL,
  agent_url text NOT NULL,
  agent_token_secret text NOT NULL,
  state text NOT NULL,
  created_at timestamptz NOT NULL,
  updated_at timestamptz NOT NULL
);

CREATE TABLE mounts (
  id text PRIMARY KEY,
  sandbox_id text NOT NULL REFERENCES sandboxes (id) ON DELETE CASCADE,
  path text NOT NULL,
  remote text NOT NULL,
  backend text NOT NULL,
  credentials_ref text,
  read_write boolean NOT NULL,
  mount_options text NOT NULL,
  status text NOT NULL,
  last_error text,
  last_checked_at timestamptz,
  spec_hash text NOT NULL,
  config_secret text NOT NULL,
  created_at timestamptz NOT NULL,
  updated_at timestamptz NOT NULL,
  CONSTRAINT mounts_sandbox_path_unique UNIQUE (sandbox_id, path)
);
CREATE INDEX mounts_sandbox_created ON mounts (sandbox_id, created_at, id);
CREATE INDEX mounts_credentials_ref ON mounts (credentials_ref) WHERE credentials_ref IS NOT NULL;
CREATE INDEX mounts_status ON mounts (status);

CREATE TABLE credentials (
  tenant text NOT NULL,
  name text NOT NULL,
  backend text NOT NULL,
  keys text NOT NULL,
  secret text NOT NULL,
  created_at timestamptz NOT NULL,
  updated_at timestamptz NOT NULL,
  PRIMARY KEY (tenant, name)
);

CREATE TABLE idempotency_keys (
  tenant text NOT NULL,
  key text NOT NULL,
  request_hash text NOT NULL,
  status_code integer NOT NULL,
  body text NOT NULL,
  created_at timestamptz NOT NULL,
  PRIMARY KEY (tenant, key)
);
CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);

-- expires_at comes from the database clock, shared by every replica.
CREATE TABLE leases (
  name text PRIMARY KEY,
  holder text NOT NULL,
  expires_at timestamptz NOT NULL
);
`
}
