import type { CredentialRecord, IdempotencyRecord, MountPatch, MountRecord, SandboxRecord } from './registry.ts'

// Row shapes, column lists and row -> record mappers shared by both stores. The drivers differ
// only in how timestamps (T: ISO text in SQLite, Date in PostgreSQL) and booleans (B: 0/1 in
// SQLite, boolean in PostgreSQL) come back.

export interface SandboxRowOf<T> {
  id: string
  tenant: string
  agent_url: string
  agent_token_secret: string
  state: SandboxRecord['state']
  mounts_rev: number
  created_at: T
  updated_at: T
}

export interface MountRowOf<T, B> {
  id: string
  sandbox_id: string
  path: string
  remote: string
  backend: MountRecord['backend']
  credentials_ref: string | null
  read_write: B
  mount_options: string
  status: MountRecord['status']
  last_error: string | null
  last_checked_at: T | null
  spec_hash: string
  config_secret: string
  created_at: T
  updated_at: T
}

export interface CredentialRowOf<T> {
  tenant: string
  name: string
  backend: CredentialRecord['backend']
  keys: string
  secret: string
  created_at: T
  updated_at: T
}

export interface IdempotencyRowOf<T> {
  tenant: string
  key: string
  request_hash: string
  status_code: number
  body: string
  created_at: T
}

// Explicit column lists, never *: a statement prepared before a migration adds a column keeps
// working (PostgreSQL would fail with "cached plan must not change result type").
export const SANDBOX_COLUMNS = 'id, tenant, agent_url, agent_token_secret, state, mounts_rev, created_at, updated_at'
export const CREDENTIAL_COLUMNS = 'tenant, name, backend, keys, secret, created_at, updated_at'
export const IDEMPOTENCY_COLUMNS = 'tenant, key, request_hash, status_code, body, created_at'
export const MOUNT_COLUMNS = 'm.id, m.sandbox_id, m.path, m.remote, m.backend, m.credentials_ref, m.read_write, ' +
  'm.mount_options, m.status, m.last_error, m.last_checked_at, m.spec_hash, m.config_secret, m.created_at, m.updated_at'

export const PATCH_COLUMNS: Record<keyof MountPatch, string> = {
  status: 'status',
  lastError: 'last_error',
  lastCheckedAt: 'last_checked_at',
  configSecret: 'config_secret',
  specHash: 'spec_hash',
  updatedAt: 'updated_at'
}

export interface RowMappers<T, B> {
  toSandbox: (r: SandboxRowOf<T>) => SandboxRecord
  toMount: (r: MountRowOf<T, B>) => MountRecord
  toCredential: (r: CredentialRowOf<T>) => CredentialRecord
  toIdempotency: (r: IdempotencyRowOf<T>) => IdempotencyRecord
}

export function rowMappers<T, B> (time: (v: T) => string, bool: (v: B) => boolean): RowMappers<T, B> {
  return {
    toSandbox: r => ({
      id: r.id,
      tenant: r.tenant,
      agentUrl: r.agent_url,
      agentTokenSecret: r.agent_token_secret,
      state: r.state,
      mountsRev: r.mounts_rev,
      createdAt: time(r.created_at),
      updatedAt: time(r.updated_at)
    }),
    toMount: r => ({
      id: r.id,
      sandboxId: r.sandbox_id,
      path: r.path,
      remote: r.remote,
      backend: r.backend,
      credentialsRef: r.credentials_ref,
      readWrite: bool(r.read_write),
      mountOptions: JSON.parse(r.mount_options) as string[],
      status: r.status,
      lastError: r.last_error,
      lastCheckedAt: r.last_checked_at === null ? null : time(r.last_checked_at),
      specHash: r.spec_hash,
      configSecret: r.config_secret,
      createdAt: time(r.created_at),
      updatedAt: time(r.updated_at)
    }),
    toCredential: r => ({
      tenant: r.tenant,
      name: r.name,
      backend: r.backend,
      keys: JSON.parse(r.keys) as string[],
      secret: r.secret,
      createdAt: time(r.created_at),
      updatedAt: time(r.updated_at)
    }),
    toIdempotency: r => ({
      tenant: r.tenant,
      key: r.key,
      requestHash: r.request_hash,
      statusCode: r.status_code,
      body: r.body,
      createdAt: time(r.created_at)
    })
  }
}
