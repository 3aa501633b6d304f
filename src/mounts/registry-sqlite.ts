import Database from 'better-sqlite3'
import { StoreUnavailable, SandboxNotFound } from '../errors.ts'
import { KeyedMutex } from '../lib/keyed-mutex.ts'
import { migrations as allMigrations, type Migration } from './migrations/index.ts'
import {
  PathTakenError,
  type CredentialRecord, type IdempotencyRecord, type MountPatch, type MountRecord,
  type RegistryStore, type SandboxRecord
} from './registry.ts'
import {
  CREDENTIAL_COLUMNS, IDEMPOTENCY_COLUMNS, MOUNT_COLUMNS, PATCH_COLUMNS, SANDBOX_COLUMNS, rowMappers,
  type CredentialRowOf, type IdempotencyRowOf, type MountRowOf, type SandboxRowOf
} from './rows.ts'

// The embedded store: one SQLite file in WAL mode, owned by one control-plane process.
// better-sqlite3 is synchronous; each call is short (indexed lookups), so the event loop
// only pauses for microseconds.

type SandboxRow = SandboxRowOf<string>
type MountRow = MountRowOf<string, number>
type CredentialRow = CredentialRowOf<string>
type IdempotencyRow = IdempotencyRowOf<string>
const { toSandbox, toMount, toCredential, toIdempotency } = rowMappers((v: string) => v, (v: number) => v === 1)

const PATCH_TIMESTAMPS = new Set<keyof MountPatch>(['lastCheckedAt', 'updatedAt'])

// Errors that mean the file cannot be used right now (locked past busy_timeout, disk full,
// I/O failure), as opposed to a bug in a query.
const UNAVAILABLE_CODES = /^SQLITE_(BUSY|LOCKED|IOERR|FULL|CANTOPEN|READONLY|CORRUPT|NOTADB)/

export interface SqliteStoreOptions {
  /** How long a writer waits for another connection's lock before giving up. */
  busyTimeoutMs?: number
  migrations?: readonly Migration[]
}

export class SqliteRegistryStore implements RegistryStore {
  readonly kind = 'sqlite' as const
  readonly file: string
  readonly #db: Database.Database
  readonly #statements = new Map<string, Database.Statement>()
  readonly #locks = new KeyedMutex()
  readonly #migrations: readonly Migration[]

  constructor (file: string, opts: SqliteStoreOptions = {}) {
    this.file = file
    this.#migrations = opts.migrations ?? allMigrations
    this.#db = new Database(file, { timeout: opts.busyTimeoutMs ?? 5000 })
    this.#db.pragma('journal_mode = WAL')
    // In WAL mode NORMAL survives a process crash; only an OS crash or power loss can drop
    // the last commits (docs/operations.md).
    this.#db.pragma('synchronous = NORMAL')
    this.#db.pragma('foreign_keys = ON')
    // Deleted rows hold sealed secrets: overwrite their pages instead of leaving them in the file.
    this.#db.pragma('secure_delete = ON')
  }

  async migrate (): Promise<void> {
    this.#run(() => {
      // IMMEDIATE takes the write lock first, so two processes opening one file cannot both
      // apply the same version.
      this.#db.transaction(() => {
        this.#db.exec(`CREATE TABLE IF NOT EXISTS schema_migrations (
          version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL) STRICT`)
        const done = new Set(this.#db.prepare('SELECT version FROM schema_migrations').pluck().all() as number[])
        for (const m of this.#migrations) {
          if (done.has(m.version)) continue
          this.#db.exec(m.sqlite)
          this.#db.prepare('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)')
            .run(m.version, m.name, new Date().toISOString())
        }
      }).immediate()
    })
  }

  async close (): Promise<void> {
    if (this.#db.open) this.#db.close()
  }

  async ping (): Promise<void> {
    this.#run(() => this.#stmt('SELECT 1').get())
  }

  async upsertSandbox (rec: SandboxRecord): Promise<void> {
    this.#run(() => this.#stmt(`INSERT INTO sandboxes (id, tenant, agent_url, agent_token_secret, state, created_at, updated_at)
      VALUES (?, ?, ?, ?, ?, ?, ?)
      ON CONFLICT (id) DO UPDATE SET tenant = excluded.tenant, agent_url = excluded.agent_url,
        agent_token_secret = excluded.agent_token_secret, state = excluded.state, updated_at = excluded.updated_at`)
      .run(rec.id, rec.tenant, rec.agentUrl, rec.agentTokenSecret, rec.state, iso(rec.createdAt), iso(rec.updatedAt)))
  }

  async getSandbox (id: string): Promise<SandboxRecord | undefined> {
    const row = this.#run(() => this.#stmt(`SELECT ${SANDBOX_COLUMNS} FROM sandboxes WHERE id = ?`).get(id) as SandboxRow | undefined)
    return row === undefined ? undefined : toSandbox(row)
  }

  async listSandboxIds (): Promise<string[]> {
    return this.#run(() => this.#stmt('SELECT id FROM sandboxes ORDER BY id').pluck().all() as string[])
  }

  async setSandboxState (id: string, state: SandboxRecord['state'], updatedAt: string): Promise<void> {
    this.#run(() => this.#stmt('UPDATE sandboxes SET state = ?, updated_at = ? WHERE id = ?').run(state, iso(updatedAt), id))
  }

  async deleteSandbox (id: string): Promise<boolean> {
    return this.#run(() => this.#db.transaction(() => {
      this.#stmt('DELETE FROM mounts WHERE sandbox_id = ?').run(id)
      return this.#stmt('DELETE FROM sandboxes WHERE id = ?').run(id).changes > 0
    }).immediate())
  }

  async insertMount (rec: MountRecord): Promise<void> {
    try {
      this.#run(() => this.#stmt(`INSERT INTO mounts (id, sandbox_id, path, remote, backend, credentials_ref, read_write,
          mount_options, status, last_error, last_checked_at, spec_hash, config_secret, created_at, updated_at)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`)
        .run(rec.id, rec.sandboxId, rec.path, rec.remote, rec.backend, rec.credentialsRef, rec.readWrite ? 1 : 0,
          JSON.stringify(rec.mountOptions), rec.status, rec.lastError, isoOrNull(rec.lastCheckedAt), rec.specHash,
          rec.configSecret, iso(rec.createdAt), iso(rec.updatedAt)))
    } catch (err) {
      const e = err as { code?: string, message?: string }
      if (e.code === 'SQLITE_CONSTRAINT_UNIQUE' && e.message?.includes('mounts.sandbox_id, mounts.path') === true) {
        throw new PathTakenError(rec.sandboxId, rec.path)
      }
      if (e.code === 'SQLITE_CONSTRAINT_FOREIGNKEY') throw new SandboxNotFound(`sandbox ${rec.sandboxId} not found`)
      throw err
    }
  }

  async getMount (sandboxId: string, id: string): Promise<MountRecord | undefined> {
    const row = this.#run(() => this.#stmt(`SELECT ${MOUNT_COLUMNS} FROM mounts m WHERE m.sandbox_id = ? AND m.id = ?`)
      .get(sandboxId, id) as MountRow | undefined)
    return row === undefined ? undefined : toMount(row)
  }

  async getMountByPath (sandboxId: string, path: string): Promise<MountRecord | undefined> {
    const row = this.#run(() => this.#stmt(`SELECT ${MOUNT_COLUMNS} FROM mounts m WHERE m.sandbox_id = ? AND m.path = ?`)
      .get(sandboxId, path) as MountRow | undefined)
    return row === undefined ? undefined : toMount(row)
  }

  async listMounts (sandboxId: string): Promise<MountRecord[]> {
    const rows = this.#run(() => this.#stmt(`SELECT ${MOUNT_COLUMNS} FROM mounts m WHERE m.sandbox_id = ?
      ORDER BY m.created_at, m.id`).all(sandboxId) as MountRow[])
    return rows.map(toMount)
  }

  async listMountsByCredential (tenant: string, name: string): Promise<MountRecord[]> {
    const rows = this.#run(() => this.#stmt(`SELECT ${MOUNT_COLUMNS} FROM mounts m JOIN sandboxes s ON s.id = m.sandbox_id
      WHERE m.credentials_ref = ? AND s.tenant = ? ORDER BY m.created_at, m.id`).all(name, tenant) as MountRow[])
    return rows.map(toMount)
  }

  async updateMount (sandboxId: string, id: string, patch: MountPatch): Promise<void> {
    const sets: string[] = []
    const values: Array<string | null> = []
    for (const [key, column] of Object.entries(PATCH_COLUMNS) as Array<[keyof MountPatch, string]>) {
      const value = patch[key]
      if (value === undefined) continue
      sets.push(`${column} = ?`)
      values.push(PATCH_TIMESTAMPS.has(key) ? isoOrNull(value) : value)
    }
    if (sets.length === 0) return
    this.#run(() => this.#stmt(`UPDATE mounts SET ${sets.join(', ')} WHERE sandbox_id = ? AND id = ?`)
      .run(...values, sandboxId, id))
  }

  async deleteMount (sandboxId: string, id: string): Promise<boolean> {
    return this.#run(() => this.#stmt('DELETE FROM mounts WHERE sandbox_id = ? AND id = ?').run(sandboxId, id).changes > 0)
  }

  async countMountsByStatus (): Promise<Record<string, number>> {
    const rows = this.#run(() => this.#stmt('SELECT status, count(*) AS n FROM mounts GROUP BY status')
      .all() as Array<{ status: string, n: number }>)
    return Object.fromEntries(rows.map(r => [r.status, r.n]))
  }

  async putCredential (rec: CredentialRecord): Promise<void> {
    this.#run(() => this.#stmt(`INSERT INTO credentials (tenant, name, backend, keys, secret, created_at, updated_at)
      VALUES (?, ?, ?, ?, ?, ?, ?)
      ON CONFLICT (tenant, name) DO UPDATE SET backend = excluded.backend, keys = excluded.keys,
        secret = excluded.secret, updated_at = excluded.updated_at`)
      .run(rec.tenant, rec.name, rec.backend, JSON.stringify(rec.keys), rec.secret, iso(rec.createdAt), iso(rec.updatedAt)))
  }

  async getCredential (tenant: string, name: string): Promise<CredentialRecord | undefined> {
    const row = this.#run(() => this.#stmt(`SELECT ${CREDENTIAL_COLUMNS} FROM credentials WHERE tenant = ? AND name = ?`)
      .get(tenant, name) as CredentialRow | undefined)
    return row === undefined ? undefined : toCredential(row)
  }

  async listCredentials (tenant: string): Promise<CredentialRecord[]> {
    // The secret column is never read for a listing; records carry secret: ''.
    const rows = this.#run(() => this.#stmt(`SELECT tenant, name, backend, keys, '' AS secret, created_at, updated_at
      FROM credentials WHERE tenant = ? ORDER BY name`).all(tenant) as CredentialRow[])
    return rows.map(toCredential)
  }

  async deleteCredential (tenant: string, name: string): Promise<boolean> {
    return this.#run(() => this.#stmt('DELETE FROM credentials WHERE tenant = ? AND name = ?').run(tenant, name).changes > 0)
  }

  async getIdempotency (tenant: string, key: string): Promise<IdempotencyRecord | undefined> {
    const row = this.#run(() => this.#stmt(`SELECT ${IDEMPOTENCY_COLUMNS} FROM idempotency_keys WHERE tenant = ? AND key = ?`)
      .get(tenant, key) as IdempotencyRow | undefined)
    return row === undefined ? undefined : toIdempotency(row)
  }

  async putIdempotency (rec: IdempotencyRecord): Promise<boolean> {
    return this.#run(() => this.#stmt(`INSERT INTO idempotency_keys (tenant, key, request_hash, status_code, body, created_at)
      VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (tenant, key) DO NOTHING`)
      .run(rec.tenant, rec.key, rec.requestHash, rec.statusCode, rec.body, iso(rec.createdAt)).changes > 0)
  }

  async deleteIdempotencyBefore (createdAt: string): Promise<number> {
    return this.#run(() => this.#stmt('DELETE FROM idempotency_keys WHERE created_at < ?').run(iso(createdAt)).changes)
  }

  async withSandboxLock<T> (sandboxId: string, fn: () => Promise<T>): Promise<T> {
    return await this.#locks.run(sandboxId, fn)
  }

  async tryLease (name: string, holder: string, ttlMs: number): Promise<boolean> {
    return this.#run(() => this.#db.transaction(() => {
      const now = Date.now()
      const row = this.#stmt('SELECT holder, expires_at FROM leases WHERE name = ?')
        .get(name) as { holder: string, expires_at: number } | undefined
      if (row !== undefined && row.holder !== holder && row.expires_at >= now) return false
      this.#stmt(`INSERT INTO leases (name, holder, expires_at) VALUES (?, ?, ?)
        ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at`)
        .run(name, holder, now + Math.max(0, Math.trunc(ttlMs)))
      return true
    }).immediate())
  }

  async releaseLease (name: string, holder: string): Promise<void> {
    this.#run(() => this.#stmt('DELETE FROM leases WHERE name = ? AND holder = ?').run(name, holder))
  }

  #stmt (sql: string): Database.Statement {
    let stmt = this.#statements.get(sql)
    if (stmt === undefined) {
      stmt = this.#db.prepare(sql)
      this.#statements.set(sql, stmt)
    }
    return stmt
  }

  #run<T> (fn: () => T): T {
    try {
      return fn()
    } catch (err) {
      const code = (err as { code?: unknown }).code
      if (typeof code === 'string' && UNAVAILABLE_CODES.test(code)) {
        throw new StoreUnavailable(`registry database is unavailable (${code})`)
      }
      throw err
    }
  }
}

function iso (value: string): string {
  const ms = Date.parse(value)
  if (Number.isNaN(ms)) throw new TypeError(`not a timestamp: ${JSON.stringify(value.slice(0, 40))}`)
  return new Date(ms).toISOString()
}

function isoOrNull (value: string | null): string | null {
  return value === null ? null : iso(value)
}
