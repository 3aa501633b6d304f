import t from 'tap'
import type { Test } from 'tap'
import Database from 'better-sqlite3'
import pg from 'pg'
import path from 'node:path'
import { createServer } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import { openStore, SQLITE_FILE, type StoreOptions } from '../../src/mounts/store.ts'
import { migrations, type Migration } from '../../src/mounts/migrations/index.ts'
import { SqliteRegistryStore } from '../../src/mounts/registry-sqlite.ts'
import { PostgresRegistryStore } from '../../src/mounts/registry-postgres.ts'
import {
  PathTakenError,
  type CredentialRecord, type IdempotencyRecord, type MountRecord, type RegistryStore, type SandboxRecord
} from '../../src/mounts/registry.ts'
import { envStoreKind, openTestStore, storeKinds, testStoreOptions } from '../helpers/store.ts'
import { startCluster, testDatabaseUrl } from '../helpers/postgres.ts'

const BASE = Date.UTC(2026, 0, 1)
function ts (offsetMs: number): string {
  return new Date(BASE + offsetMs).toISOString()
}

function sandbox (id: string, over: Partial<SandboxRecord> = {}): SandboxRecord {
  return {
    id,
    tenant: 'acme',
    agentUrl: `http://127.0.0.1:9/${id}`,
    agentTokenSecret: `enc:token-of-${id}`,
    state: 'running',
    createdAt: ts(0),
    updatedAt: ts(0),
    ...over
  }
}

function mount (sandboxId: string, id: string, mountPath: string, over: Partial<MountRecord> = {}): MountRecord {
  return {
    id,
    sandboxId,
    path: mountPath,
    remote: `s3:bucket-${id}/data`,
    backend: 's3',
    credentialsRef: null,
    readWrite: false,
    mountOptions: ['--dir-cache-time', '1m'],
    status: 'pending',
    lastError: null,
    lastCheckedAt: null,
    specHash: `hash-${id}`,
    configSecret: `enc:config-of-${id}`,
    createdAt: ts(1000),
    updatedAt: ts(1000),
    ...over
  }
}

function credential (tenant: string, name: string, over: Partial<CredentialRecord> = {}): CredentialRecord {
  return {
    tenant,
    name,
    backend: 's3',
    keys: ['access_key_id', 'secret_access_key'],
    secret: `enc:very-secret-${tenant}-${name}`,
    createdAt: ts(0),
    updatedAt: ts(0),
    ...over
  }
}

/** Reads the store's real file or database behind its back. */
async function rawRows (opts: StoreOptions, sql: string): Promise<Array<Record<string, unknown>>> {
  if (opts.databaseUrl === undefined) {
    const db = new Database(path.join(opts.dataDir, SQLITE_FILE), { readonly: true })
    try {
      return db.prepare(sql).all() as Array<Record<string, unknown>>
    } finally {
      db.close()
    }
  }
  const client = new pg.Client({ connectionString: opts.databaseUrl })
  await client.connect()
  try {
    return (await client.query(sql)).rows
  } finally {
    await client.end()
  }
}

async function rawCount (opts: StoreOptions, sql: string): Promise<number> {
  const rows = await rawRows(opts, sql)
  return Number(Object.values(rows[0])[0])
}

async function open (t: Test, opts: StoreOptions): Promise<RegistryStore> {
  const store = await openStore(opts)
  t.teardown(async () => { await store.close() })
  return store
}

for (const kind of storeKinds()) {
  t.test(`${kind} store`, async t => {
    t.test('sandboxes: upsert, get, list, state', async t => {
      const store = await open(t, await testStoreOptions(t, kind))
      t.equal(store.kind, kind)
      await store.ping()
      t.equal(await store.getSandbox('sb-b'), undefined)
      await store.upsertSandbox(sandbox('sb-b'))
      await store.upsertSandbox(sandbox('sb-a', { tenant: 'globex' }))
      t.match(await store.getSandbox('sb-b'), sandbox('sb-b'))
      t.same(await store.listSandboxIds(), ['sb-a', 'sb-b'])

      // A second upsert replaces the fields but keeps the creation time.
      await store.upsertSandbox(sandbox('sb-b', { agentUrl: 'http://127.0.0.1:10/', createdAt: ts(500), updatedAt: ts(600) }))
      const updated = await store.getSandbox('sb-b')
      t.equal(updated?.agentUrl, 'http://127.0.0.1:10/')
      t.equal(updated?.createdAt, ts(0))
      t.equal(updated?.updatedAt, ts(600))

      await store.setSandboxState('sb-b', 'hibernated', ts(700))
      t.match(await store.getSandbox('sb-b'), { state: 'hibernated', updatedAt: ts(700) })
      await store.setSandboxState('sb-missing', 'hibernated', ts(700))
      t.equal(await store.getSandbox('sb-missing'), undefined)
    })

    t.test('mounts: insert, get, list order, update, delete', async t => {
      const store = await open(t, await testStoreOptions(t, kind))
      await store.upsertSandbox(sandbox('sb-1'))
      await store.upsertSandbox(sandbox('sb-2'))
      const m3 = mount('sb-1', 'm3', '/mnt/c', { createdAt: ts(3000), readWrite: true, mountOptions: [] })
      const m1 = mount('sb-1', 'm1', '/mnt/a', { createdAt: ts(1000), credentialsRef: 'creds' })
      const m2b = mount('sb-1', 'm2b', '/mnt/b2', { createdAt: ts(2000) })
      const m2a = mount('sb-1', 'm2a', '/mnt/b1', { createdAt: ts(2000), lastCheckedAt: ts(2500), lastError: 'boom' })
      for (const m of [m3, m1, m2b, m2a]) await store.insertMount(m)
      await store.insertMount(mount('sb-2', 'other', '/mnt/a'))

      t.same(await store.getMount('sb-1', 'm1'), m1)
      t.same(await store.getMount('sb-1', 'm3'), m3, 'booleans and empty arrays round-trip')
      t.same(await store.getMount('sb-1', 'm2a'), m2a, 'nullable fields round-trip')
      t.equal(await store.getMount('sb-2', 'm1'), undefined, 'a mount is only found in its own sandbox')
      t.same(await store.getMountByPath('sb-1', '/mnt/b2'), m2b)
      t.equal(await store.getMountByPath('sb-1', '/mnt/none'), undefined)

      t.same((await store.listMounts('sb-1')).map(m => m.id), ['m1', 'm2a', 'm2b', 'm3'], 'by createdAt, then id')
      t.same(await store.listMounts('sb-1'), [m1, m2a, m2b, m3])
      t.same(await store.listMounts('sb-none'), [])

      await store.updateMount('sb-1', 'm1', { status: 'mounted', lastError: null, lastCheckedAt: ts(9000), updatedAt: ts(9000) })
      t.same(await store.getMount('sb-1', 'm1'), { ...m1, status: 'mounted', lastCheckedAt: ts(9000), updatedAt: ts(9000) })
      await store.updateMount('sb-1', 'm2a', { lastError: null, lastCheckedAt: null, configSecret: 'enc:new', specHash: 'h2' })
      t.same(await store.getMount('sb-1', 'm2a'), { ...m2a, lastError: null, lastCheckedAt: null, configSecret: 'enc:new', specHash: 'h2' })
      await store.updateMount('sb-1', 'm3', {})
      t.same(await store.getMount('sb-1', 'm3'), m3, 'an empty patch changes nothing')
      await store.updateMount('sb-2', 'm3', { status: 'failed' })
      t.equal((await store.getMount('sb-1', 'm3'))?.status, 'pending', 'update is scoped to the sandbox')

      t.equal(await store.deleteMount('sb-2', 'm3'), false)
      t.equal(await store.deleteMount('sb-1', 'm3'), true)
      t.equal(await store.deleteMount('sb-1', 'm3'), false)
      t.same((await store.listMounts('sb-1')).map(m => m.id), ['m1', 'm2a', 'm2b'])
    })

    t.test('insertMount: PathTakenError on a taken path, SandboxNotFound without a sandbox', async t => {
      const opts = await testStoreOptions(t, kind)
      const store = await open(t, opts)
      await store.upsertSandbox(sandbox('sb-1'))
      await store.upsertSandbox(sandbox('sb-2'))
      await store.insertMount(mount('sb-1', 'm1', '/mnt/data'))
      const err = await store.insertMount(mount('sb-1', 'm2', '/mnt/data', { remote: 's3:other' })).catch((e: unknown) => e)
      t.ok(err instanceof PathTakenError, 'PathTakenError')
      t.match((err as Error).message, /\/mnt\/data/)
      t.equal((await store.getMountByPath('sb-1', '/mnt/data'))?.id, 'm1', 'the first mount stays')
      t.equal(await store.getMount('sb-1', 'm2'), undefined)
      await store.insertMount(mount('sb-2', 'm3', '/mnt/data'))
      t.equal(await rawCount(opts, "SELECT count(*) FROM mounts WHERE path = '/mnt/data'"), 2, 'one path per sandbox')

      await t.rejects(store.insertMount(mount('sb-ghost', 'm4', '/mnt/x')), { code: 'SANDBOX_NOT_FOUND', statusCode: 404 })
    })

    t.test('mounts by credential are scoped to the tenant; counts by status', async t => {
      const store = await open(t, await testStoreOptions(t, kind))
      await store.upsertSandbox(sandbox('sb-acme', { tenant: 'acme' }))
      await store.upsertSandbox(sandbox('sb-globex', { tenant: 'globex' }))
      await store.insertMount(mount('sb-acme', 'a1', '/mnt/1', { credentialsRef: 'shared', status: 'mounted', createdAt: ts(2) }))
      await store.insertMount(mount('sb-acme', 'a2', '/mnt/2', { credentialsRef: 'shared', status: 'failed', createdAt: ts(1) }))
      await store.insertMount(mount('sb-acme', 'a3', '/mnt/3', { credentialsRef: 'other', status: 'mounted' }))
      await store.insertMount(mount('sb-globex', 'g1', '/mnt/1', { credentialsRef: 'shared', status: 'mounted' }))
      await store.insertMount(mount('sb-globex', 'g2', '/mnt/2', { status: 'pending' }))

      t.same((await store.listMountsByCredential('acme', 'shared')).map(m => m.id), ['a2', 'a1'])
      t.same((await store.listMountsByCredential('globex', 'shared')).map(m => m.id), ['g1'])
      t.same(await store.listMountsByCredential('globex', 'other'), [])
      t.same(await store.countMountsByStatus(), { mounted: 3, failed: 1, pending: 1 })
    })

    t.test('deleteSandbox removes its mounts in the same transaction', async t => {
      const opts = await testStoreOptions(t, kind)
      const store = await open(t, opts)
      await store.upsertSandbox(sandbox('sb-1'))
      await store.upsertSandbox(sandbox('sb-2'))
      for (let i = 0; i < 5; i++) await store.insertMount(mount('sb-1', `m${i}`, `/mnt/${i}`))
      await store.insertMount(mount('sb-2', 'keep', '/mnt/0'))
      t.equal(await rawCount(opts, "SELECT count(*) FROM mounts WHERE sandbox_id = 'sb-1'"), 5)

      t.equal(await store.deleteSandbox('sb-1'), true)
      t.equal(await rawCount(opts, "SELECT count(*) FROM mounts WHERE sandbox_id = 'sb-1'"), 0, 'mount rows are gone')
      t.equal(await rawCount(opts, "SELECT count(*) FROM sandboxes WHERE id = 'sb-1'"), 0, 'sandbox row is gone')
      t.same((await store.listMounts('sb-2')).map(m => m.id), ['keep'], 'other sandboxes keep theirs')
      t.equal(await store.getSandbox('sb-1'), undefined)
      t.equal(await store.deleteSandbox('sb-1'), false)
    })

    t.test('credentials: put, get, list without secret values, delete', async t => {
      const store = await open(t, await testStoreOptions(t, kind))
      const c1 = credential('acme', 'prod')
      await store.putCredential(c1)
      await store.putCredential(credential('acme', 'dev', { backend: 'sftp', keys: ['host', 'user', 'pass'] }))
      await store.putCredential(credential('globex', 'prod'))
      t.same(await store.getCredential('acme', 'prod'), c1)
      t.equal(await store.getCredential('acme', 'nope'), undefined)

      const listed = await store.listCredentials('acme')
      t.same(listed.map(c => [c.name, c.backend, c.keys]), [['dev', 'sftp', ['host', 'user', 'pass']], ['prod', 's3', c1.keys]])
      t.ok(listed.every(c => c.secret === ''), 'no secret blob in a listing')
      t.notMatch(JSON.stringify(listed), /very-secret/)
      t.same((await store.listCredentials('globex')).map(c => c.name), ['prod'], 'tenants are isolated')

      await store.putCredential(credential('acme', 'prod', { keys: ['env_auth'], secret: 'enc:rotated', createdAt: ts(50), updatedAt: ts(60) }))
      t.same(await store.getCredential('acme', 'prod'), { ...c1, keys: ['env_auth'], secret: 'enc:rotated', updatedAt: ts(60) },
        'replacing keeps createdAt')

      t.equal(await store.deleteCredential('acme', 'prod'), true)
      t.equal(await store.deleteCredential('acme', 'prod'), false)
      t.equal(await store.getCredential('acme', 'prod'), undefined)
      t.ok(await store.getCredential('globex', 'prod'), 'same name in another tenant survives')
    })

    t.test('idempotency keys: first writer wins, pruning by age', async t => {
      const store = await open(t, await testStoreOptions(t, kind))
      const first: IdempotencyRecord = { tenant: 'acme', key: 'k1', requestHash: 'h1', statusCode: 201, body: '{"id":"m1"}', createdAt: ts(100) }
      t.equal(await store.putIdempotency(first), true)
      t.equal(await store.putIdempotency({ ...first, requestHash: 'h2', statusCode: 500, body: '{}' }), false)
      t.same(await store.getIdempotency('acme', 'k1'), first)
      t.equal(await store.getIdempotency('globex', 'k1'), undefined)
      t.equal(await store.putIdempotency({ ...first, tenant: 'globex', createdAt: ts(300) }), true, 'keys are per tenant')

      const racers = await Promise.all(Array.from({ length: 8 }, async (_, i) =>
        await store.putIdempotency({ ...first, key: 'race', body: String(i), createdAt: ts(200) })))
      t.equal(racers.filter(Boolean).length, 1, 'exactly one concurrent writer wins')
      t.equal((await store.getIdempotency('acme', 'race'))?.body, String(racers.indexOf(true)))

      t.equal(await store.deleteIdempotencyBefore(ts(250)), 2)
      t.equal(await store.getIdempotency('acme', 'k1'), undefined)
      t.ok(await store.getIdempotency('globex', 'k1'))
      t.equal(await store.deleteIdempotencyBefore(ts(250)), 0)
    })

    t.test('leases: acquire, refuse while held, renew, take over after expiry, release', async t => {
      const store = await open(t, await testStoreOptions(t, kind))
      t.equal(await store.tryLease('reconciler', 'a', 400), true, 'acquire when absent')
      t.equal(await store.tryLease('reconciler', 'b', 400), false, 'refused while a holds it')
      t.equal(await store.tryLease('other', 'b', 400), true, 'leases are independent')
      await sleep(250)
      t.equal(await store.tryLease('reconciler', 'a', 400), true, 'holder renews')
      await sleep(250)
      t.equal(await store.tryLease('reconciler', 'b', 400), false, 'renewal extended the lease')
      await sleep(300)
      t.equal(await store.tryLease('reconciler', 'b', 60_000), true, 'taken over after expiry')
      t.equal(await store.tryLease('reconciler', 'a', 400), false, 'the old holder lost it')
      await store.releaseLease('reconciler', 'a')
      t.equal(await store.tryLease('reconciler', 'c', 400), false, 'only the holder can release')
      await store.releaseLease('reconciler', 'b')
      t.equal(await store.tryLease('reconciler', 'c', 400), true, 'free after release')

      const wins = await Promise.all(['w1', 'w2', 'w3', 'w4', 'w5'].map(async h => await store.tryLease('contended', h, 60_000)))
      t.equal(wins.filter(Boolean).length, 1, 'one winner among concurrent claimants')
    })

    t.test('withSandboxLock serializes one sandbox, not different ones', async t => {
      const store = await open(t, await testStoreOptions(t, kind))
      let active = 0
      let most = 0
      const order: number[] = []
      const results = await Promise.all([0, 1, 2, 3].map(async i => await store.withSandboxLock('sb-1', async () => {
        active++
        most = Math.max(most, active)
        order.push(i)
        await sleep(30)
        active--
        return i * 10
      })))
      t.equal(most, 1, 'never two at once')
      t.same(order, [0, 1, 2, 3], 'in arrival order')
      t.same(results, [0, 10, 20, 30], 'each caller gets its own result')

      // sb-1's fn can only finish once sb-2's has started: a shared lock would deadlock.
      let enterB!: () => void
      const bEntered = new Promise<void>(resolve => { enterB = resolve })
      const both = Promise.all([
        store.withSandboxLock('sb-1', async () => { await bEntered; return 'a' }),
        store.withSandboxLock('sb-2', async () => { enterB(); return 'b' })
      ])
      const outcome = await Promise.race([both, sleep(5000).then(() => 'timed out')])
      enterB()
      t.same(outcome, ['a', 'b'])

      const nested = store.withSandboxLock('sb-1', async () => await store.withSandboxLock('sb-1', async () => 'inner'))
      t.equal(await Promise.race([nested, sleep(5000).then(() => 'deadlock')]), 'inner', 'a nested call by the holder runs')

      await t.rejects(store.withSandboxLock('sb-1', async () => { throw new Error('fn failed') }), /fn failed/)
      t.equal(await Promise.race([store.withSandboxLock('sb-1', async () => 'next'), sleep(5000).then(() => 'stuck')]), 'next',
        'a throwing fn releases the lock')
    })

    t.test('restart loses nothing; migrations are idempotent', async t => {
      const opts = await testStoreOptions(t, kind)
      const first = await open(t, opts)
      await first.upsertSandbox(sandbox('sb-1'))
      const m = mount('sb-1', 'm1', '/mnt/a', { readWrite: true, credentialsRef: 'prod' })
      await first.insertMount(m)
      await first.putCredential(credential('acme', 'prod'))
      const idem: IdempotencyRecord = { tenant: 'acme', key: 'k', requestHash: 'h', statusCode: 201, body: '{}', createdAt: ts(5) }
      await first.putIdempotency(idem)
      t.equal(await first.tryLease('reconciler', 'a', 60_000), true)
      // A second process opening the same store migrates again while the first is live.
      const second = await open(t, opts)
      await second.migrate()
      await first.close()

      const reopened = await open(t, opts)
      t.match(await reopened.getSandbox('sb-1'), sandbox('sb-1'))
      t.same(await reopened.listMounts('sb-1'), [m])
      t.same(await reopened.getCredential('acme', 'prod'), credential('acme', 'prod'))
      t.same(await reopened.getIdempotency('acme', 'k'), idem)
      t.equal(await reopened.tryLease('reconciler', 'b', 1000), false, 'leases survive too')
      const versions = await rawRows(opts, 'SELECT version FROM schema_migrations ORDER BY version')
      t.same(versions.map(r => Number(r.version)), migrations.map(m => m.version), 'each version applied once')
    })

    t.test('every change to a sandbox\'s mounts bumps its mounts revision', async t => {
      const store = await open(t, await testStoreOptions(t, kind))
      await store.upsertSandbox(sandbox('sb-r'))
      await store.upsertSandbox(sandbox('sb-other'))
      const rev = async (id = 'sb-r'): Promise<number | undefined> => (await store.getSandbox(id))?.mountsRev
      t.equal(await rev(), 0)
      await store.insertMount(mount('sb-r', 'm1', '/mnt/a'))
      const afterInsert = await rev()
      t.ok((afterInsert ?? 0) > 0, 'insert')
      await store.updateMount('sb-r', 'm1', { status: 'degraded' })
      const afterUpdate = await rev()
      t.ok((afterUpdate ?? 0) > (afterInsert ?? 0), 'update')
      await store.deleteMount('sb-r', 'm1')
      t.ok((await rev() ?? 0) > (afterUpdate ?? 0), 'delete')
      t.equal(await rev('sb-other'), 0, 'other sandboxes keep theirs')
      await store.upsertSandbox(sandbox('sb-r', { agentUrl: 'http://127.0.0.1:11/' }))
      t.ok((await rev() ?? 0) > (afterUpdate ?? 0), 're-registering keeps the revision')
    })

    t.test('a later migration applies once while older replicas keep serving', async t => {
      const opts = await testStoreOptions(t, kind)
      const old = await open(t, opts)
      await old.upsertSandbox(sandbox('sb-1'))
      await old.insertMount(mount('sb-1', 'm1', '/mnt/a'))
      t.match(await old.getSandbox('sb-1'), sandbox('sb-1'), 'statements prepared before the change')
      const v2: Migration = {
        version: migrations.length + 1,
        name: 'test-added-columns',
        sqlite: 'ALTER TABLE sandboxes ADD COLUMN region TEXT; ALTER TABLE mounts ADD COLUMN note TEXT;',
        postgres: 'ALTER TABLE sandboxes ADD COLUMN region text; ALTER TABLE mounts ADD COLUMN note text;'
      }
      const next = [...migrations, v2]
      for (let i = 0; i < 2; i++) {
        const store = kind === 'sqlite'
          ? new SqliteRegistryStore(path.join(opts.dataDir, SQLITE_FILE), { migrations: next })
          : new PostgresRegistryStore(opts.databaseUrl ?? '', { migrations: next })
        t.teardown(async () => { await store.close() })
        await store.migrate()
      }
      const versions = await rawRows(opts, 'SELECT version FROM schema_migrations ORDER BY version')
      t.same(versions.map(r => Number(r.version)), next.map(m => m.version))
      t.match(await old.getSandbox('sb-1'), sandbox('sb-1'), 'the old replica still reads sandboxes')
      t.same((await old.listMounts('sb-1')).map(m => m.id), ['m1'], 'and mounts')
    })

    t.test('openTestStore gives an empty store of the kind TEST_STORE selects', async t => {
      const store = await openTestStore(t)
      t.equal(store.kind, envStoreKind())
      t.same(await store.listSandboxIds(), [])
    })

    t.test('listing one sandbox uses the (sandbox_id, created_at, id) index', async t => {
      const opts = await testStoreOptions(t, kind)
      const store = await open(t, opts)
      await seedMounts(opts, 10_000, 10)
      await store.upsertSandbox(sandbox('probe'))
      for (let i = 0; i < 10; i++) await store.insertMount(mount('probe', `p${i}`, `/mnt/${i}`, { createdAt: ts(10 - i) }))
      t.same((await store.listMounts('probe')).map(m => m.id), ['p9', 'p8', 'p7', 'p6', 'p5', 'p4', 'p3', 'p2', 'p1', 'p0'])

      const plan = JSON.stringify(await rawRows(opts, kind === 'sqlite'
        ? "EXPLAIN QUERY PLAN SELECT * FROM mounts WHERE sandbox_id = 'probe' ORDER BY created_at, id"
        : "EXPLAIN SELECT * FROM mounts WHERE sandbox_id = 'probe' ORDER BY created_at, id"))
      t.match(plan, /mounts_sandbox_created/, 'index used')
      // PostgreSQL may sort ten fetched rows instead; SQLite must read them in index order.
      if (kind === 'sqlite') t.notMatch(plan, /TEMP B-TREE/, 'no sort step')

      // Timed side by side with a forced full scan, so a busy machine slows both alike.
      const fullScan = await fullScanner(opts)
      t.teardown(fullScan.close)
      for (let i = 0; i < 50; i++) await store.listMounts(`s${i}`)
      const indexed: number[] = []
      const scanned: number[] = []
      for (let i = 0; i < 400; i++) {
        const sb = `s${(i * 7919) % 10_000}`
        let start = process.hrtime.bigint()
        const rows = await store.listMounts(sb)
        indexed.push(Number(process.hrtime.bigint() - start) / 1e6)
        if (rows.length !== 10) t.fail(`expected 10 mounts in ${sb}, got ${rows.length}`)
        if (i % 4 !== 0) continue
        start = process.hrtime.bigint()
        await fullScan.list(sb)
        scanned.push(Number(process.hrtime.bigint() - start) / 1e6)
      }
      const pct = (xs: number[], p: number): number => xs.sort((a, b) => a - b)[Math.floor(xs.length * p)]
      const p50 = pct(indexed, 0.5)
      t.comment(`${kind}: listMounts over 100,000 mounts: p50 ${p50.toFixed(2)} ms, p99 ${pct(indexed, 0.99).toFixed(2)} ms; ` +
        `full scan p50 ${pct(scanned, 0.5).toFixed(2)} ms`)
      t.ok(p50 * 4 < pct(scanned, 0.5), 'listing one sandbox is far cheaper than scanning every mount')
    })
  })
}

/** The listing query with indexes turned off, on its own connection. */
async function fullScanner (opts: StoreOptions): Promise<{ list: (sb: string) => Promise<unknown>, close: () => Promise<void> }> {
  if (opts.databaseUrl === undefined) {
    const db = new Database(path.join(opts.dataDir, SQLITE_FILE), { readonly: true })
    const stmt = db.prepare('SELECT * FROM mounts NOT INDEXED WHERE sandbox_id = ? ORDER BY created_at, id')
    return { list: async sb => stmt.all(sb), close: async () => { db.close() } }
  }
  const client = new pg.Client({ connectionString: opts.databaseUrl })
  await client.connect()
  await client.query('SET enable_indexscan = off; SET enable_bitmapscan = off; SET max_parallel_workers_per_gather = 0')
  return {
    list: async sb => await client.query({ name: 'scan', text: 'SELECT * FROM mounts WHERE sandbox_id = $1 ORDER BY created_at, id', values: [sb] }),
    close: async () => { await client.end() }
  }
}

/** Writes sandboxes x perSandbox mounts straight into the store's database, in bulk. */
async function seedMounts (opts: StoreOptions, sandboxes: number, perSandbox: number): Promise<void> {
  if (opts.databaseUrl === undefined) {
    const db = new Database(path.join(opts.dataDir, SQLITE_FILE))
    try {
      db.exec(`
        WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < ${sandboxes - 1})
        INSERT INTO sandboxes (id, tenant, agent_url, agent_token_secret, state, created_at, updated_at) SELECT 's' || i, 'acme', 'http://127.0.0.1:9/', 'enc:x', 'running', '${ts(0)}', '${ts(0)}' FROM n;
        WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < ${sandboxes * perSandbox - 1})
        INSERT INTO mounts SELECT 'm' || i, 's' || (i % ${sandboxes}), '/mnt/' || i, 's3:b/' || i, 's3', NULL, 0, '[]',
          'mounted', NULL, NULL, 'h', 'enc:c', '${ts(0)}', '${ts(0)}' FROM n;
        ANALYZE;`)
    } finally {
      db.close()
    }
    return
  }
  const client = new pg.Client({ connectionString: opts.databaseUrl })
  await client.connect()
  try {
    await client.query(`
      INSERT INTO sandboxes (id, tenant, agent_url, agent_token_secret, state, created_at, updated_at) SELECT 's' || i, 'acme', 'http://127.0.0.1:9/', 'enc:x', 'running', '${ts(0)}', '${ts(0)}'
        FROM generate_series(0, ${sandboxes - 1}) i;
      INSERT INTO mounts SELECT 'm' || i, 's' || (i % ${sandboxes}), '/mnt/' || i, 's3:b/' || i, 's3', NULL, false, '[]',
        'mounted', NULL, NULL, 'h', 'enc:c', '${ts(0)}', '${ts(0)}' FROM generate_series(0, ${sandboxes * perSandbox - 1}) i`)
    // As a long-running database would be: statistics current, hint bits set.
    await client.query('VACUUM ANALYZE')
  } finally {
    await client.end()
  }
}

t.test('sqlite: a file locked by another process past busy_timeout is StoreUnavailable', async t => {
  const opts = await testStoreOptions(t, 'sqlite')
  await (await openStore(opts)).close()
  const file = path.join(opts.dataDir, SQLITE_FILE)
  const store = new SqliteRegistryStore(file, { busyTimeoutMs: 100 })
  t.teardown(async () => { await store.close() })
  await store.migrate()
  const other = new Database(file)
  t.teardown(() => { if (other.open) other.close() })
  other.exec('BEGIN IMMEDIATE')
  await t.rejects(store.upsertSandbox(sandbox('sb-1')), { code: 'STORE_UNAVAILABLE', statusCode: 503, message: /SQLITE_BUSY/ })
  t.same(await store.listSandboxIds(), [], 'readers are not blocked in WAL mode')
  other.exec('ROLLBACK')
  await store.upsertSandbox(sandbox('sb-1'))
  t.same(await store.listSandboxIds(), ['sb-1'], 'works once the lock is gone')
})

t.test('postgres: connectivity failures are StoreUnavailable without connection details', async t => {
  const closedPort = await new Promise<number>((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const address = server.address()
      server.close(() => { resolve(typeof address === 'object' && address !== null ? address.port : 0) })
    })
  })
  const password = 'pw-that-must-not-leak'
  const err = await openStore({ databaseUrl: `postgresql://ops:${password}@127.0.0.1:${closedPort}/registry`, dataDir: '/nonexistent' })
    .catch((e: unknown) => e) as Error & { code?: string, statusCode?: number }
  t.equal(err.code, 'STORE_UNAVAILABLE')
  t.equal(err.statusCode, 503)
  t.notMatch(err.message, new RegExp(`${password}|${closedPort}|127\\.0\\.0\\.1|ops`))

  const url = new URL(await testDatabaseUrl())
  url.password = password
  const authErr = await openStore({ databaseUrl: url.toString(), dataDir: '/nonexistent' }).catch((e: unknown) => e) as Error & { code?: string }
  t.equal(authErr.code, 'STORE_UNAVAILABLE', 'a refused login is a 503 too')
  t.notMatch(authErr.message, new RegExp(`${password}|postgres|${url.port}`))
})

t.test('postgres: a stopped server gives 503s and the store recovers when it returns', async t => {
  const cluster = await startCluster()
  t.teardown(cluster.destroy)
  const store = await openStore({ databaseUrl: cluster.url, dataDir: '/nonexistent' })
  t.teardown(async () => { await store.close() })
  await store.upsertSandbox(sandbox('sb-1'))
  await store.insertMount(mount('sb-1', 'm1', '/mnt/a'))

  // The server goes away while a lock holder's connection is checked out: no crash.
  let stopped!: () => void
  const serverDown = new Promise<void>(resolve => { stopped = resolve })
  const held = store.withSandboxLock('sb-1', async () => { await serverDown; return 'done' })
  await sleep(100)
  await cluster.stop()
  stopped()
  t.equal(await held, 'done', 'a lock holder finishes even if its session ended')

  const calls: Array<[string, () => Promise<unknown>]> = [
    ['ping', async () => { await store.ping() }],
    ['listMounts', async () => await store.listMounts('sb-1')],
    ['insertMount', async () => { await store.insertMount(mount('sb-1', 'm2', '/mnt/b')) }],
    ['deleteSandbox', async () => await store.deleteSandbox('sb-1')],
    ['tryLease', async () => await store.tryLease('l', 'a', 1000)],
    ['withSandboxLock', async () => await store.withSandboxLock('sb-1', async () => 'ran')]
  ]
  for (const [name, call] of calls) {
    const err = await call().then(() => undefined, (e: unknown) => e) as (Error & { code?: string, statusCode?: number }) | undefined
    t.equal(err?.code, 'STORE_UNAVAILABLE', name)
    t.equal(err?.statusCode, 503, name)
    t.notMatch(err?.message ?? '', new RegExp(`${cluster.port}|127\\.0\\.0\\.1|${new URL(cluster.url).password}`), `${name}: no connection details`)
  }

  await cluster.start()
  t.same((await store.listMounts('sb-1')).map(m => m.id), ['m1'], 'recovers without reopening')
  t.equal(await store.withSandboxLock('sb-1', async () => 'ran'), 'ran')
})

t.test('postgres: the advisory lock serializes two stores (replicas) on one database', async t => {
  const url = await testDatabaseUrl()
  const a = await open(t, { databaseUrl: url, dataDir: '/nonexistent' })
  const b = await open(t, { databaseUrl: url, dataDir: '/nonexistent' })
  const admin = new pg.Client({ connectionString: url })
  await admin.connect()
  t.teardown(async () => { await admin.end() })
  const advisory = async (): Promise<boolean[]> => (await admin.query<{ granted: boolean }>(
    `SELECT granted FROM pg_locks WHERE locktype = 'advisory'
     AND database = (SELECT oid FROM pg_database WHERE datname = current_database()) ORDER BY granted DESC`)).rows.map(r => r.granted)

  const events: string[] = []
  let releaseA!: () => void
  const aMayFinish = new Promise<void>(resolve => { releaseA = resolve })
  let enteredA!: () => void
  const aIn = new Promise<void>(resolve => { enteredA = resolve })
  const pa = a.withSandboxLock('sb-1', async () => { events.push('a in'); enteredA(); await aMayFinish; events.push('a out') })
  await aIn
  const pb = b.withSandboxLock('sb-1', async () => { events.push('b in') })
  t.equal(await b.withSandboxLock('sb-2', async () => 'other sandbox'), 'other sandbox', 'another sandbox is not blocked')
  await sleep(300)
  t.same(events, ['a in'], 'b waits while a holds the lock')
  t.same(await advisory(), [true, false], 'one granted advisory lock, one waiter')
  releaseA()
  await Promise.all([pa, pb])
  t.same(events, ['a in', 'a out', 'b in'])
  t.same(await advisory(), [], 'unlocked after fn')

  await t.rejects(a.withSandboxLock('sb-1', async () => { throw new Error('boom') }), /boom/)
  t.same(await advisory(), [], 'unlocked after a throwing fn')
  t.equal(await Promise.race([b.withSandboxLock('sb-1', async () => 'b again'), sleep(5000).then(() => 'stuck')]), 'b again')

  // More concurrent sandboxes than lock connections, each fn querying the store: queued, not deadlocked.
  const many = await Promise.all(Array.from({ length: 40 }, async (_, i) =>
    await a.withSandboxLock(`sb-many-${i}`, async () => { await a.ping(); return i })))
  t.equal(many.length, 40)
})

t.test('postgres: replicas starting together migrate once', async t => {
  const url = await testDatabaseUrl()
  const stores = await Promise.all([0, 1, 2].map(async () => await open(t, { databaseUrl: url, dataDir: '/nonexistent' })))
  t.equal(stores.length, 3)
  const versions = await rawRows({ databaseUrl: url, dataDir: '/nonexistent' }, 'SELECT version FROM schema_migrations')
  t.same(versions.map(r => r.version), migrations.map(m => m.version))
})
