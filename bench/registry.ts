import { randomBytes } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { monitorEventLoopDelay } from 'node:perf_hooks'
import pg from 'pg'
import { openStore, SQLITE_FILE } from '../src/mounts/store.ts'
import type { RegistryStore } from '../src/mounts/registry.ts'
import { SecretBox } from '../src/secrets.ts'
import { startCluster, type PgCluster } from '../test/helpers/postgres.ts'
import { benchSecrets, BENCH_TENANT } from './lib/control-plane.ts'
import { mb, procInfo } from './lib/proc.ts'
import { postgresBulkWriter, sqliteBulkWriter } from './lib/registry-bulk.ts'
import { fillRegistry, sandboxId } from './lib/registry-fill.ts'
import { keepAliveClient } from './lib/http-client.ts'
import { startServer, type ServerProcess } from './lib/server-process.ts'
import { median, nowMs, ratio, round, summarize, type Summary } from './lib/stats.ts'

// Items 4 and 6: a registry holding `sandboxes x mountsPerSandbox` mounts in SQLite and in
// PostgreSQL; p99 of listing one sandbox (through the store, and over HTTP from the real
// server process) and that server's RSS next to the same server on an empty registry; and the
// server's spawn-to-ready time on the full SQLite data dir next to an empty one.

export interface RegistryOptions {
  sandboxes: number
  mountsPerSandbox: number
  /** Timed list calls per measurement. */
  lists: number
  startupRuns: number
}

export interface StoreScale {
  kind: RegistryStore['kind']
  mounts: number
  sandboxes: number
  /** Whole fill; the first sandboxes go through the store interface, the rest in bulk. */
  fillMs: number
  /** RegistryStore.insertMount one at a time, for the first sandboxes. */
  storeInsertMs: Summary
  /** store.listMounts() in the bench process. */
  storeListMs: Summary
  /** GET /sandboxes/:id/mounts against `node server.js`, one request at a time. */
  httpListMs: Summary
  /** p99 event-loop delay of the bench (client) process during those requests: the machine's own stalls. */
  clientLoopDelayP99Ms: number
  /** Share of those requests the server itself answered within 5 ms (its own histogram). */
  serverWithin5ms: number | null
  /** RSS of that server after the timed lists. */
  serverRssMB: number
  /** The same server on an empty registry after as many requests (404s). */
  emptyServerRssMB: number
}

export interface Startup {
  mounts: number
  runs: number
  /** spawn -> /readyz 200, median. */
  fullMs: number
  emptyMs: number
  ratio: number | null
  samplesFullMs: number[]
  samplesEmptyMs: number[]
}

export interface RegistryResults {
  sqlite: StoreScale
  postgres: StoreScale | { skipped: string }
  startup: Startup
}

type Secrets = ReturnType<typeof benchSecrets>

function serverEnv (secrets: Secrets, dataDir: string, databaseUrl?: string): Record<string, string> {
  return {
    DATA_DIR: dataDir,
    ...(databaseUrl === undefined ? {} : { DATABASE_URL: databaseUrl }),
    API_KEYS: `${BENCH_TENANT}:${secrets.apiKey}`,
    INTERNAL_TOKEN: secrets.internalToken,
    ENCRYPTION_KEY: secrets.encryptionKey,
    LOCAL_SANDBOX: '',
    LOG_LEVEL: 'info',
    // the sandboxes' agents do not exist: reconciling them would be a different benchmark,
    // and sequential timed lists would trip the per-tenant rate limit
    RECONCILE_INTERVAL_MS: '0',
    RATE_LIMIT_PER_MINUTE: '0'
  }
}

function pick (opts: RegistryOptions, i: number): string {
  // a stride prime to the count walks the whole id space, bulk and store rows alike
  return sandboxId((i * 7919) % opts.sandboxes)
}

/** A row written by the bulk path reads back exactly like one the store wrote. */
async function sameShape (store: RegistryStore, opts: RegistryOptions): Promise<void> {
  const shape = (rec: object | undefined): string => JSON.stringify(Object.entries(rec ?? {}).map(([k, v]) => [k, Array.isArray(v) ? 'array' : typeof v]))
  const viaStore = (await store.listMounts(sandboxId(0)))[0]
  const viaBulk = (await store.listMounts(sandboxId(opts.sandboxes - 1)))[0]
  if (shape(viaStore) !== shape(viaBulk)) throw new Error(`bulk rows differ from store rows: ${shape(viaBulk)} vs ${shape(viaStore)}`)
}

async function timeStoreLists (store: RegistryStore, opts: RegistryOptions): Promise<Summary> {
  const samples: number[] = []
  for (let i = 0; i < opts.lists + 50; i++) {
    const t0 = nowMs()
    const rows = await store.listMounts(pick(opts, i))
    const dt = nowMs() - t0
    if (rows.length !== opts.mountsPerSandbox) throw new Error(`listMounts returned ${rows.length} rows, expected ${opts.mountsPerSandbox}`)
    if (i >= 50) samples.push(dt)
  }
  return summarize(samples)
}

const WARMUP = 200

/**
 * Sequential GETs of one sandbox's mounts (the first ones warm up); on an empty registry they
 * are 404s. Also returns the p99 event-loop delay of this (client) process meanwhile: a
 * measure of how much the machine itself stalls processes, whatever the server does.
 */
async function listLoad (server: ServerProcess, apiKey: string, opts: RegistryOptions, full: boolean): Promise<{ list: Summary, loopDelayP99Ms: number }> {
  const samples: number[] = []
  const headers = { authorization: `Bearer ${apiKey}` }
  const client = keepAliveClient(server.url)
  const delay = monitorEventLoopDelay({ resolution: 1 })
  try {
    for (let i = 0; i < opts.lists + WARMUP; i++) {
      const t0 = nowMs()
      const res = await client.get(`/sandboxes/${pick(opts, i)}/mounts`, headers)
      const dt = nowMs() - t0
      const listed = (JSON.parse(res.body) as { mounts?: unknown[] }).mounts?.length
      const ok = full ? res.status === 200 && listed === opts.mountsPerSandbox : res.status === 404
      if (!ok) throw new Error(`list answered ${res.status} with ${listed ?? 'no'} mounts (full registry: ${String(full)})`)
      if (i === WARMUP) delay.enable()
      if (i >= WARMUP) samples.push(dt)
    }
  } finally {
    delay.disable()
    client.close()
  }
  return { list: summarize(samples), loopDelayP99Ms: round(delay.percentile(99) / 1e6) }
}

/** Share of list requests the server itself finished within 5 ms (its request-duration histogram). */
async function serverShareWithin5ms (server: ServerProcess, internalToken: string): Promise<number | null> {
  const client = keepAliveClient(server.url)
  try {
    const res = await client.get('/metrics', { authorization: `Bearer ${internalToken}` })
    const line = (le: string | null): number => {
      const found = res.body.split('\n').find(l => l.includes('route="/sandboxes/:sandboxId/mounts"') && l.includes('method="GET"') && l.includes('status="200"') &&
        (le === null ? l.startsWith('sandbox_mounts_http_request_duration_seconds_count') : l.includes(`le="${le}"`)))
      return Number(found?.split(' ').pop() ?? Number.NaN)
    }
    const share = line('0.005') / line(null)
    return Number.isFinite(share) ? round(share, 4) : null
  } finally {
    client.close()
  }
}

async function rssMB (pid: number): Promise<number> {
  return mb((await procInfo(pid))?.rssKB ?? Number.NaN)
}

async function fill (kind: RegistryStore['kind'], opts: RegistryOptions, secrets: Secrets, dataDir: string, databaseUrl?: string): Promise<Pick<StoreScale, 'fillMs' | 'storeInsertMs' | 'storeListMs'>> {
  const box = new SecretBox([{ id: 'k1', key: Buffer.from(secrets.encryptionKey, 'base64') }])
  const store = await openStore({ dataDir, databaseUrl })
  try {
    const bulk = kind === 'sqlite' ? sqliteBulkWriter(path.join(dataDir, SQLITE_FILE)) : await postgresBulkWriter(databaseUrl as string)
    let filled
    try {
      filled = await fillRegistry(store, box, { sandboxes: opts.sandboxes, mountsPerSandbox: opts.mountsPerSandbox, tenant: BENCH_TENANT, bulk, viaStoreSandboxes: Math.ceil(opts.sandboxes / 100) })
    } finally {
      await bulk.close()
    }
    await sameShape(store, opts)
    return { fillMs: filled.totalMs, storeInsertMs: filled.storeInsertMs, storeListMs: await timeStoreLists(store, opts) }
  } finally {
    await store.close()
  }
}

interface Served { list: Summary, loopDelayP99Ms: number, within: number | null, rssMB: number }

async function serve (server: ServerProcess, secrets: Secrets, opts: RegistryOptions, full: boolean): Promise<Served> {
  const { list, loopDelayP99Ms } = await listLoad(server, secrets.apiKey, opts, full)
  return { list, loopDelayP99Ms, within: full ? await serverShareWithin5ms(server, secrets.internalToken) : null, rssMB: await rssMB(server.pid) }
}

async function measureServer (env: Record<string, string>, secrets: Secrets, opts: RegistryOptions, full: boolean): Promise<Served> {
  const server = await startServer(env)
  try {
    return await serve(server, secrets, opts, full)
  } finally {
    await server.stop()
  }
}

/** SQLite: startup runs alternate full and empty data dirs; the last of each also serves the list load. */
async function benchSqlite (opts: RegistryOptions, log: (line: string) => void): Promise<{ scale: StoreScale, startup: Startup }> {
  const fullDir = await mkdtemp(path.join(tmpdir(), 'bench-sqlite-'))
  const emptyDir = await mkdtemp(path.join(tmpdir(), 'bench-sqlite-empty-'))
  try {
    const secrets = benchSecrets()
    log(`registry: filling SQLite with ${opts.sandboxes * opts.mountsPerSandbox} mounts`)
    const filled = await fill('sqlite', opts, secrets, fullDir)
    log('startup: server on the full SQLite data dir vs an empty one')
    const full: number[] = []
    const empty: number[] = []
    let fullServed: Served | undefined
    let emptyServed: Served | undefined
    const runs = Math.max(1, opts.startupRuns)
    for (let i = 0; i < runs; i++) {
      // alternate which goes first so drift and page-cache warmth fall on both
      for (const which of i % 2 === 0 ? ['full', 'empty'] : ['empty', 'full']) {
        const isFull = which === 'full'
        const server = await startServer(serverEnv(secrets, isFull ? fullDir : emptyDir))
        try {
          ;(isFull ? full : empty).push(round(server.readyMs))
          if (i === runs - 1) {
            const served = await serve(server, secrets, opts, isFull)
            if (isFull) fullServed = served
            else emptyServed = served
          }
        } finally {
          await server.stop()
        }
      }
    }
    if (fullServed === undefined || emptyServed === undefined) throw new Error('the list load did not run')
    return {
      scale: {
        kind: 'sqlite',
        mounts: opts.sandboxes * opts.mountsPerSandbox,
        sandboxes: opts.sandboxes,
        ...filled,
        httpListMs: fullServed.list,
        clientLoopDelayP99Ms: fullServed.loopDelayP99Ms,
        serverWithin5ms: fullServed.within,
        serverRssMB: fullServed.rssMB,
        emptyServerRssMB: emptyServed.rssMB
      },
      startup: {
        mounts: opts.sandboxes * opts.mountsPerSandbox,
        runs,
        fullMs: round(median(full)),
        emptyMs: round(median(empty)),
        ratio: ratio(median(full), median(empty)),
        samplesFullMs: full,
        samplesEmptyMs: empty
      }
    }
  } finally {
    await rm(fullDir, { recursive: true, force: true })
    await rm(emptyDir, { recursive: true, force: true })
  }
}

async function createDatabase (adminUrl: string, name: string): Promise<{ url: string, drop: () => Promise<void> }> {
  const admin = async (sql: string): Promise<void> => {
    const client = new pg.Client({ connectionString: adminUrl })
    await client.connect()
    try { await client.query(sql) } finally { await client.end() }
  }
  await admin(`CREATE DATABASE ${name}`)
  const url = new URL(adminUrl)
  url.pathname = `/${name}`
  return { url: url.toString(), drop: async () => { await admin(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`) } }
}

async function benchPostgres (opts: RegistryOptions, adminUrl: string, log: (line: string) => void): Promise<StoreScale> {
  const dataDir = await mkdtemp(path.join(tmpdir(), 'bench-pg-'))
  const suffix = randomBytes(4).toString('hex')
  const fullDb = await createDatabase(adminUrl, `bench_full_${suffix}`)
  const emptyDb = await createDatabase(adminUrl, `bench_empty_${suffix}`)
  try {
    const secrets = benchSecrets()
    log(`registry: filling PostgreSQL with ${opts.sandboxes * opts.mountsPerSandbox} mounts`)
    const filled = await fill('postgres', opts, secrets, dataDir, fullDb.url)
    const full = await measureServer(serverEnv(secrets, dataDir, fullDb.url), secrets, opts, true)
    const empty = await measureServer(serverEnv(secrets, dataDir, emptyDb.url), secrets, opts, false)
    return {
      kind: 'postgres',
      mounts: opts.sandboxes * opts.mountsPerSandbox,
      sandboxes: opts.sandboxes,
      ...filled,
      httpListMs: full.list,
      clientLoopDelayP99Ms: full.loopDelayP99Ms,
      serverWithin5ms: full.within,
      serverRssMB: full.rssMB,
      emptyServerRssMB: empty.rssMB
    }
  } finally {
    await fullDb.drop().catch(() => {})
    await emptyDb.drop().catch(() => {})
    await rm(dataDir, { recursive: true, force: true })
  }
}

/** `postgresAdminUrl`: a running cluster's superuser URL; without it a private cluster is started. */
export async function benchRegistry (opts: RegistryOptions, log: (line: string) => void, postgresAdminUrl?: string): Promise<RegistryResults> {
  const { scale: sqlite, startup } = await benchSqlite(opts, log)
  let cluster: PgCluster | undefined
  if (postgresAdminUrl === undefined) {
    try {
      cluster = await startCluster()
    } catch (err) {
      // a machine without PostgreSQL still gets every other number
      return { sqlite, postgres: { skipped: `no PostgreSQL cluster: ${(err as Error).message.split('\n')[0]}` }, startup }
    }
  }
  let postgres: StoreScale
  try {
    postgres = await benchPostgres(opts, postgresAdminUrl ?? (cluster as PgCluster).url, log)
  } finally {
    await cluster?.destroy()
  }
  return { sqlite, postgres, startup }
}
