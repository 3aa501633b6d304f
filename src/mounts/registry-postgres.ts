import pg from 'pg'
import type { PoolClient, QueryResult, QueryResultRow } from 'pg'
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

// The shared store for several control-plane replicas. Every call goes through #query or
// #tx, which turn connectivity failures into StoreUnavailable (503) without the driver's
// message, so host, port or user never reach a response.

type SandboxRow = SandboxRowOf<Date>
type MountRow = MountRowOf<Date, boolean>
type CredentialRow = CredentialRowOf<Date>
type IdempotencyRow = IdempotencyRowOf<Date>
const { toSandbox, toMount, toCredential, toIdempotency } = rowMappers((v: Date) => v.toISOString(), (v: boolean) => v)

// 64-bit keys: hashtext's 32 bits would make unrelated sandboxes collide at this scale.
const LOCK_SQL = 'SELECT pg_advisory_lock(hashtextextended($1, 0))'
const UNLOCK_SQL = 'SELECT pg_advisory_unlock(hashtextextended($1, 0))'
const MIGRATE_LOCK = 'sandbox-mounts:migrate'

// SQLSTATE classes meaning "the database cannot serve us now": 08 connection exception,
// 53 insufficient resources, 57P0x shutdown/crash/cannot connect now, 28 authorization,
// 3D000 no such database.
const UNAVAILABLE_SQLSTATE = /^(08|53|57P0|28|3D000)/
const SOCKET_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'ENOTFOUND', 'EHOSTUNREACH',
  'ENETUNREACH', 'EPIPE', 'EAI_AGAIN', 'ECONNABORTED', 'EADDRNOTAVAIL'])
// node-postgres raises these without a code.
const DRIVER_MESSAGES = /^(Connection terminated|timeout exceeded when trying to connect|Client has encountered a connection error|Client was closed|Cannot use a pool after calling end|The server does not support SSL|Query read timeout)/

export interface PostgresStoreOptions {
  /** Connections for ordinary queries. */
  poolMax?: number
  /** Connections that hold sandbox advisory locks; separate so lock holders cannot starve their own queries. */
  lockPoolMax?: number
  connectTimeoutMs?: number
  migrations?: readonly Migration[]
}

export class PostgresRegistryStore implements RegistryStore {
  readonly kind = 'postgres' as const
  readonly #pool: pg.Pool
  readonly #lockPool: pg.Pool
  readonly #locks = new KeyedMutex()
  readonly #names = new Map<string, string>()
  readonly #migrations: readonly Migration[]
  #closed = false

  constructor (databaseUrl: string, opts: PostgresStoreOptions = {}) {
    this.#migrations = opts.migrations ?? allMigrations
    const base = {
      connectionString: databaseUrl,
      connectionTimeoutMillis: opts.connectTimeoutMs ?? 5000,
      // Notices a silently dropped connection instead of waiting on it for hours.
      keepAlive: true,
      keepAliveInitialDelayMillis: 10_000,
      application_name: 'sandbox-mounts'
    }
    this.#pool = new pg.Pool({ ...base, max: opts.poolMax ?? 10 })
    this.#lockPool = new pg.Pool({ ...base, max: opts.lockPoolMax ?? 16 })
    // An idle connection dropped by the server is only discarded; the next call reconnects
    // or reports StoreUnavailable. Without a listener the event would crash the process.
    this.#pool.on('error', () => {})
    this.#lockPool.on('error', () => {})
  }

  async migrate (): Promise<void> {
    await this.#tx(async c => {
      // Replicas starting together take turns; the loser sees the versions already applied.
      await c.query('SELECT pg_advisory_xact_lock(hashtextextended($1, 0))', [MIGRATE_LOCK])
      await c.query(`CREATE TABLE IF NOT EXISTS schema_migrations (
        version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`)
      const { rows } = await c.query<{ version: number }>('SELECT version FROM schema_migrations')
      const done = new Set(rows.map(r => r.version))
      for (const m of this.#migrations) {
        if (done.has(m.version)) continue
        await c.query(m.postgres)
        await c.query('INSERT INTO schema_migrations (version, name) VALUES ($1, $2)', [m.version, m.name])
      }
    })
  }

  async close (): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    await Promise.all([this.#pool.end(), this.#lockPool.end()])
  }

  async ping (): Promise<void> {
    await this.#query('SELECT 1')
  }

  async upsertSandbox (rec: SandboxRecord): Promise<void> {
    await this.#query(`INSERT INTO sandboxes (id, tenant, agent_url, agent_token_secret, state, created_at, updated_at)
      VALUES ($1, $2, $3, $4, $5, $6, $7)
      ON CONFLICT (id) DO UPDATE SET tenant = EXCLUDED.tenant, agent_url = EXCLUDED.agent_url,
        agent_token_secret = EXCLUDED.agent_token_secret, state = EXCLUDED.state, updated_at = EXCLUDED.updated_at`,
    [rec.id, rec.tenant, rec.agentUrl, rec.agentTokenSecret, rec.state, rec.createdAt, rec.updatedAt])
  }

  async getSandbox (id: string): Promise<SandboxRecord | undefined> {
    const { rows } = await this.#query<SandboxRow>(`SELECT ${SANDBOX_COLUMNS} FROM sandboxes WHERE id = $1`, [id])
    return rows.length === 0 ? undefined : toSandbox(rows[0])
  }

  async listSandboxIds (): Promise<string[]> {
    const { rows } = await this.#query<{ id: string }>('SELECT id FROM sandboxes ORDER BY id')
    return rows.map(r => r.id)
  }

  async setSandboxState (id: string, state: SandboxRecord['state'], updatedAt: string): Promise<void> {
    await this.#query('UPDATE sandboxes SET state = $2, updated_at = $3 WHERE id = $1', [id, state, updatedAt])
  }

  async deleteSandbox (id: string): Promise<boolean> {
    return await this.#tx(async c => {
      await c.query('DELETE FROM mounts WHERE sandbox_id = $1', [id])
      const res = await c.query('DELETE FROM sandboxes WHERE id = $1', [id])
      return (res.rowCount ?? 0) > 0
    })
  }

  async insertMount (rec: MountRecord): Promise<void> {
    try {
      await this.#query(`INSERT INTO mounts (id, sandbox_id, path, remote, backend, credentials_ref, read_write,
          mount_options, status, last_error, last_checked_at, spec_hash, config_secret, created_at, updated_at)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)`,
      [rec.id, rec.sandboxId, rec.path, rec.remote, rec.backend, rec.credentialsRef, rec.readWrite,
        JSON.stringify(rec.mountOptions), rec.status, rec.lastError, rec.lastCheckedAt, rec.specHash,
        rec.configSecret, rec.createdAt, rec.updatedAt])
    } catch (err) {
      const e = err as { code?: string, constraint?: string }
      if (e.code === '23505' && e.constraint === 'mounts_sandbox_path_unique') throw new PathTakenError(rec.sandboxId, rec.path)
      if (e.code === '23503') throw new SandboxNotFound(`sandbox ${rec.sandboxId} not found`)
      throw err
    }
  }

  async getMount (sandboxId: string, id: string): Promise<MountRecord | undefined> {
    const { rows } = await this.#query<MountRow>(`SELECT ${MOUNT_COLUMNS} FROM mounts m
      WHERE m.sandbox_id = $1 AND m.id = $2`, [sandboxId, id])
    return rows.length === 0 ? undefined : toMount(rows[0])
  }

  async getMountByPath (sandboxId: string, path: string): Promise<MountRecord | undefined> {
    const { rows } = await this.#query<MountRow>(`SELECT ${MOUNT_COLUMNS} FROM mounts m
      WHERE m.sandbox_id = $1 AND m.path = $2`, [sandboxId, path])
    return rows.length === 0 ? undefined : toMount(rows[0])
  }

  async listMounts (sandboxId: string): Promise<MountRecord[]> {
    const { rows } = await this.#query<MountRow>(`SELECT ${MOUNT_COLUMNS} FROM mounts m
      WHERE m.sandbox_id = $1 ORDER BY m.created_at, m.id`, [sandboxId])
    return rows.map(toMount)
  }

  async listMountsByCredential (tenant: string, name: string): Promise<MountRecord[]> {
    const { rows } = await this.#query<MountRow>(`SELECT ${MOUNT_COLUMNS} FROM mounts m
      JOIN sandboxes s ON s.id = m.sandbox_id
      WHERE m.credentials_ref = $1 AND s.tenant = $2 ORDER BY m.created_at, m.id`, [name, tenant])
    return rows.map(toMount)
  }

  async updateMount (sandboxId: string, id: string, patch: MountPatch): Promise<void> {
    const sets: string[] = []
    const values: Array<string | null> = [sandboxId, id]
    for (const [key, column] of Object.entries(PATCH_COLUMNS) as Array<[keyof MountPatch, string]>) {
      const value = patch[key]
      if (value === undefined) continue
      values.push(value)
      sets.push(`${column} = $${values.length}`)
    }
    if (sets.length === 0) return
    await this.#query(`UPDATE mounts SET ${sets.join(', ')} WHERE sandbox_id = $1 AND id = $2`, values)
  }

  async deleteMount (sandboxId: string, id: string): Promise<boolean> {
    const res = await this.#query('DELETE FROM mounts WHERE sandbox_id = $1 AND id = $2', [sandboxId, id])
    return (res.rowCount ?? 0) > 0
  }

  async countMountsByStatus (): Promise<Record<string, number>> {
    const { rows } = await this.#query<{ status: string, n: number }>(
      'SELECT status, count(*)::integer AS n FROM mounts GROUP BY status')
    return Object.fromEntries(rows.map(r => [r.status, r.n]))
  }

  async putCredential (rec: CredentialRecord): Promise<void> {
    await this.#query(`INSERT INTO credentials (tenant, name, backend, keys, secret, created_at, updated_at)
      VALUES ($1, $2, $3, $4, $5, $6, $7)
      ON CONFLICT (tenant, name) DO UPDATE SET backend = EXCLUDED.backend, keys = EXCLUDED.keys,
        secret = EXCLUDED.secret, updated_at = EXCLUDED.updated_at`,
    [rec.tenant, rec.name, rec.backend, JSON.stringify(rec.keys), rec.secret, rec.createdAt, rec.updatedAt])
  }

  async getCredential (tenant: string, name: string): Promise<CredentialRecord | undefined> {
    const { rows } = await this.#query<CredentialRow>(`SELECT ${CREDENTIAL_COLUMNS} FROM credentials WHERE tenant = $1 AND name = $2`,
      [tenant, name])
    return rows.length === 0 ? undefined : toCredential(rows[0])
  }

  async listCredentials (tenant: string): Promise<CredentialRecord[]> {
    // The secret column is never read for a listing; records carry secret: ''.
    const { rows } = await this.#query<CredentialRow>(`SELECT tenant, name, backend, keys, '' AS secret,
      created_at, updated_at FROM credentials WHERE tenant = $1 ORDER BY name`, [tenant])
    return rows.map(toCredential)
  }

  async deleteCredential (tenant: string, name: string): Promise<boolean> {
    const res = await this.#query('DELETE FROM credentials WHERE tenant = $1 AND name = $2', [tenant, name])
    return (res.rowCount ?? 0) > 0
  }

  async getIdempotency (tenant: string, key: string): Promise<IdempotencyRecord | undefined> {
    const { rows } = await this.#query<IdempotencyRow>(`SELECT ${IDEMPOTENCY_COLUMNS} FROM idempotency_keys WHERE tenant = $1 AND key = $2`,
      [tenant, key])
    return rows.length === 0 ? undefined : toIdempotency(rows[0])
  }

  async putIdempotency (rec: IdempotencyRecord): Promise<boolean> {
    const res = await this.#query(`INSERT INTO idempotency_keys (tenant, key, request_hash, status_code, body, created_at)
      VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (tenant, key) DO NOTHING`,
    [rec.tenant, rec.key, rec.requestHash, rec.statusCode, rec.body, rec.createdAt])
    return (res.rowCount ?? 0) > 0
  }

  async deleteIdempotencyBefore (createdAt: string): Promise<number> {
    const res = await this.#query('DELETE FROM idempotency_keys WHERE created_at < $1', [createdAt])
    return res.rowCount ?? 0
  }

  async withSandboxLock<T> (sandboxId: string, fn: () => Promise<T>): Promise<T> {
    // Nested in a holder of the same sandbox: its session already has the lock.
    if (this.#locks.holds(sandboxId)) return await fn()
    // The in-process mutex queues this replica's callers without each holding a connection;
    // the advisory lock then serializes against other replicas.
    return await this.#locks.run(sandboxId, async () => {
      const key = `sandbox:${sandboxId}`
      let client: PoolClient
      try {
        client = await this.#lockPool.connect()
      } catch (err) {
        throw storeError(err)
      }
      let broken: Error | undefined
      // A checked-out client that loses its connection emits 'error'; unheard, it would crash.
      const onError = (err: Error): void => { broken = err }
      client.on('error', onError)
      try {
        try {
          await client.query(LOCK_SQL, [key])
        } catch (err) {
          broken = err as Error
          throw storeError(err)
        }
        return await fn()
      } finally {
        if (broken === undefined) {
          try {
            await client.query(UNLOCK_SQL, [key])
          } catch (err) {
            broken = err as Error
          }
        }
        client.off('error', onError)
        // Destroying a broken connection ends its session, which frees any lock it held.
        client.release(broken)
      }
    })
  }

  async tryLease (name: string, holder: string, ttlMs: number): Promise<boolean> {
    const res = await this.#query(`INSERT INTO leases (name, holder, expires_at)
      VALUES ($1, $2, now() + $3::float8 * interval '1 millisecond')
      ON CONFLICT (name) DO UPDATE SET holder = EXCLUDED.holder, expires_at = EXCLUDED.expires_at
      WHERE leases.expires_at < now() OR leases.holder = EXCLUDED.holder
      RETURNING holder`, [name, holder, Math.max(0, ttlMs)])
    return (res.rowCount ?? 0) > 0
  }

  async releaseLease (name: string, holder: string): Promise<void> {
    await this.#query('DELETE FROM leases WHERE name = $1 AND holder = $2', [name, holder])
  }

  async #query<R extends QueryResultRow = QueryResultRow> (text: string, values: unknown[] = []): Promise<QueryResult<R>> {
    try {
      // Named statements are parsed and planned once per connection.
      return await this.#pool.query<R>({ name: this.#name(text), text, values })
    } catch (err) {
      throw storeError(err)
    }
  }

  async #tx<T> (fn: (c: PoolClient) => Promise<T>): Promise<T> {
    let client: PoolClient
    try {
      client = await this.#pool.connect()
    } catch (err) {
      throw storeError(err)
    }
    let broken: Error | undefined
    const onError = (err: Error): void => { broken = err }
    client.on('error', onError)
    try {
      await client.query('BEGIN')
      const result = await fn(client)
      await client.query('COMMIT')
      return result
    } catch (err) {
      if (broken === undefined) {
        try {
          await client.query('ROLLBACK')
        } catch (rollbackErr) {
          broken = rollbackErr as Error
        }
      }
      throw storeError(err)
    } finally {
      client.off('error', onError)
      client.release(broken)
    }
  }

  #name (text: string): string {
    let name = this.#names.get(text)
    if (name === undefined) {
      name = `q${this.#names.size}`
      this.#names.set(text, name)
    }
    return name
  }
}

/** Maps connectivity failures to StoreUnavailable; anything else (constraint, bug) passes through. */
export function storeError (err: unknown): unknown {
  if (isUnavailable(err)) {
    const code = (err as { code?: unknown }).code
    return new StoreUnavailable(`registry database is unavailable${typeof code === 'string' ? ` (${code})` : ''}`)
  }
  return err
}

function isUnavailable (err: unknown): boolean {
  if (typeof err !== 'object' || err === null) return false
  const { code, message, errors } = err as { code?: unknown, message?: unknown, errors?: unknown }
  if (typeof code === 'string') {
    if (SOCKET_CODES.has(code) || UNAVAILABLE_SQLSTATE.test(code)) return true
  }
  if (Array.isArray(errors) && errors.some(isUnavailable)) return true
  return code === undefined && typeof message === 'string' && DRIVER_MESSAGES.test(message)
}
