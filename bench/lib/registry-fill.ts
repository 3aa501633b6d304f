import { randomBytes } from 'node:crypto'
import type { MountRecord, RegistryStore, SandboxRecord } from '../../src/mounts/registry.ts'
import { mountAad, sandboxAad } from '../../src/mounts/service.ts'
import type { SecretBox } from '../../src/secrets.ts'
import type { BulkWriter } from './registry-bulk.ts'
import { nowMs, round, summarize, type Summary } from './stats.ts'

// Fills a registry through the store interface with rows shaped like the service writes them
// (sealed config blobs and agent tokens included), so sizes and indexes match production.

export interface FillOptions {
  sandboxes: number
  mountsPerSandbox: number
  tenant: string
  /** Store inserts in flight at once (PostgreSQL gains from several connections; SQLite is synchronous). */
  concurrency?: number
}

export function sandboxId (i: number): string {
  return `sbx-${String(i).padStart(6, '0')}`
}

// Unique, random-looking values without a randomBytes call per field: 100,000 rows are
// generated in the time budget of a benchmark run.
const RUN = randomBytes(8).toString('hex')
let counter = 0
function unique (bytes: number): string {
  const n = (counter++).toString(16).padStart(12, '0')
  return (RUN + n).repeat(Math.ceil(bytes * 2 / (RUN.length + n.length))).slice(0, bytes * 2)
}

function mountRecord (box: SecretBox, sandbox: string, j: number, at: string): MountRecord {
  const id = `mnt_${unique(16)}`
  const config = [
    '[s3]', 'type = s3', 'provider = Other', `access_key_id = AKIA${unique(8).toUpperCase()}`,
    `secret_access_key = ${Buffer.from(unique(30), 'hex').toString('base64')}`, 'endpoint = https://s3.example.internal', 'force_path_style = true', ''
  ].join('\n')
  return {
    id,
    sandboxId: sandbox,
    path: `/mnt/data-${j}`,
    remote: `s3:bucket-${j}/datasets`,
    backend: 's3',
    credentialsRef: null,
    readWrite: j % 2 === 0,
    mountOptions: j % 3 === 0 ? ['--dir-cache-time', '1m'] : [],
    status: 'mounted',
    lastError: null,
    lastCheckedAt: at,
    specHash: unique(32),
    configSecret: box.seal(JSON.stringify({ config, section: 's3', root: `bucket-${j}/datasets`, redact: [] }), mountAad(sandbox, id)),
    createdAt: at,
    updatedAt: at
  }
}

export interface FillResult {
  totalMs: number
  /** Mounts written one by one through RegistryStore.insertMount. */
  viaStore: number
  /** Per-insert latency of those, in milliseconds. */
  storeInsertMs: Summary
  /** Mounts written by the bulk path. */
  viaBulk: number
}

async function pool<T> (items: readonly T[], concurrency: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0
  await Promise.all(Array.from({ length: Math.max(1, concurrency) }, async () => {
    while (next < items.length) await fn(items[next++])
  }))
}

function sandboxRecord (box: SecretBox, id: string, tenant: string, at: string): SandboxRecord {
  return {
    id,
    tenant,
    agentUrl: 'http://127.0.0.1:9/agent',
    agentTokenSecret: box.seal(unique(24), sandboxAad(id)),
    state: 'running',
    createdAt: at,
    updatedAt: at
  }
}

/**
 * Writes `sandboxes x mountsPerSandbox` mounts: the first `viaStoreSandboxes` sandboxes through
 * the store interface (timed per insert), the rest through `bulk` in batches.
 */
export async function fillRegistry (store: RegistryStore, box: SecretBox, opts: FillOptions & { bulk?: BulkWriter, viaStoreSandboxes?: number }): Promise<FillResult> {
  const started = nowMs()
  const base = Date.parse('2025-01-01T00:00:00.000Z')
  const at = (i: number): string => new Date(base + i * 1000).toISOString()
  const viaStore = opts.bulk === undefined ? opts.sandboxes : Math.min(opts.sandboxes, opts.viaStoreSandboxes ?? 100)
  const samples: number[] = []
  await pool(Array.from({ length: viaStore }, (_, i) => i), opts.concurrency ?? 1, async i => {
    const id = sandboxId(i)
    await store.upsertSandbox(sandboxRecord(box, id, opts.tenant, at(i)))
    for (let j = 0; j < opts.mountsPerSandbox; j++) {
      const rec = mountRecord(box, id, j, at(i))
      const t0 = nowMs()
      await store.insertMount(rec)
      samples.push(nowMs() - t0)
    }
  })
  const BATCH = 500
  for (let first = viaStore; first < opts.sandboxes; first += BATCH) {
    const sandboxes: SandboxRecord[] = []
    const mounts: MountRecord[] = []
    for (let i = first; i < Math.min(opts.sandboxes, first + BATCH); i++) {
      const id = sandboxId(i)
      sandboxes.push(sandboxRecord(box, id, opts.tenant, at(i)))
      for (let j = 0; j < opts.mountsPerSandbox; j++) mounts.push(mountRecord(box, id, j, at(i)))
    }
    await opts.bulk?.write(sandboxes, mounts)
  }
  return {
    totalMs: round(nowMs() - started),
    viaStore: viaStore * opts.mountsPerSandbox,
    storeInsertMs: summarize(samples),
    viaBulk: (opts.sandboxes - viaStore) * opts.mountsPerSandbox
  }
}
