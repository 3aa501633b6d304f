import Database from 'better-sqlite3'
import pg from 'pg'
import type { MountRecord, SandboxRecord } from '../../src/mounts/registry.ts'

// Fast paths that write the same rows as the stores' upsertSandbox/insertMount (same columns,
// same encodings: src/mounts/registry-sqlite.ts and registry-postgres.ts) in large
// transactions, so a 100,000-mount registry fills in seconds instead of minutes. The bench
// inserts its first sandboxes through the store interface and reads bulk rows back through
// it, so a drift between these and the stores fails loudly.

export interface BulkWriter {
  write: (sandboxes: readonly SandboxRecord[], mounts: readonly MountRecord[]) => Promise<void>
  close: () => Promise<void>
}

const SANDBOX_COLUMNS = 'id, tenant, agent_url, agent_token_secret, state, created_at, updated_at'
const MOUNT_COLUMNS = 'id, sandbox_id, path, remote, backend, credentials_ref, read_write, mount_options, status, ' +
  'last_error, last_checked_at, spec_hash, config_secret, created_at, updated_at'

export function sqliteBulkWriter (file: string): BulkWriter {
  const db = new Database(file, { timeout: 5000 })
  const insertSandbox = db.prepare(`INSERT INTO sandboxes (${SANDBOX_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)`)
  const insertMount = db.prepare(`INSERT INTO mounts (${MOUNT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`)
  const batch = db.transaction((sandboxes: readonly SandboxRecord[], mounts: readonly MountRecord[]) => {
    for (const s of sandboxes) insertSandbox.run(s.id, s.tenant, s.agentUrl, s.agentTokenSecret, s.state, s.createdAt, s.updatedAt)
    for (const m of mounts) {
      insertMount.run(m.id, m.sandboxId, m.path, m.remote, m.backend, m.credentialsRef, m.readWrite ? 1 : 0,
        JSON.stringify(m.mountOptions), m.status, m.lastError, m.lastCheckedAt, m.specHash, m.configSecret, m.createdAt, m.updatedAt)
    }
  })
  return {
    write: async (sandboxes, mounts) => { batch(sandboxes, mounts) },
    close: async () => { db.close() }
  }
}

export async function postgresBulkWriter (url: string): Promise<BulkWriter> {
  const client = new pg.Client({ connectionString: url })
  await client.connect()
  const column = <T, V>(rows: readonly T[], f: (r: T) => V): V[] => rows.map(f)
  return {
    write: async (sandboxes, mounts) => {
      await client.query('BEGIN')
      try {
        await client.query(`INSERT INTO sandboxes (${SANDBOX_COLUMNS})
          SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::timestamptz[], $7::timestamptz[])`, [
          column(sandboxes, s => s.id), column(sandboxes, s => s.tenant), column(sandboxes, s => s.agentUrl),
          column(sandboxes, s => s.agentTokenSecret), column(sandboxes, s => s.state), column(sandboxes, s => s.createdAt),
          column(sandboxes, s => s.updatedAt)
        ])
        await client.query(`INSERT INTO mounts (${MOUNT_COLUMNS})
          SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::boolean[], $8::text[],
            $9::text[], $10::text[], $11::timestamptz[], $12::text[], $13::text[], $14::timestamptz[], $15::timestamptz[])`, [
          column(mounts, m => m.id), column(mounts, m => m.sandboxId), column(mounts, m => m.path), column(mounts, m => m.remote),
          column(mounts, m => m.backend), column(mounts, m => m.credentialsRef), column(mounts, m => m.readWrite),
          column(mounts, m => JSON.stringify(m.mountOptions)), column(mounts, m => m.status), column(mounts, m => m.lastError),
          column(mounts, m => m.lastCheckedAt), column(mounts, m => m.specHash), column(mounts, m => m.configSecret),
          column(mounts, m => m.createdAt), column(mounts, m => m.updatedAt)
        ])
        await client.query('COMMIT')
      } catch (err) {
        await client.query('ROLLBACK').catch(() => {})
        throw err
      }
    },
    close: async () => { await client.end() }
  }
}
