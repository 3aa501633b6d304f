import type { Test } from 'tap'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { openStore, type StoreOptions } from '../../src/mounts/store.ts'
import type { RegistryStore } from '../../src/mounts/registry.ts'
import { testDatabaseUrl } from './postgres.ts'

// Fresh registry stores for tests: TEST_STORE=postgres selects a new database in the run's
// PostgreSQL cluster; otherwise (default sqlite) a new file in a temp dir.

export type StoreKind = RegistryStore['kind']

export function storeKinds (): StoreKind[] {
  return ['sqlite', 'postgres']
}

export function envStoreKind (): StoreKind {
  const kind = process.env.TEST_STORE ?? 'sqlite'
  if (kind !== 'sqlite' && kind !== 'postgres') throw new Error(`TEST_STORE must be sqlite or postgres, not ${kind}`)
  return kind
}

/** Options for openStore pointing at a new, empty location that is removed in teardown. */
export async function testStoreOptions (t: Test, kind: StoreKind = envStoreKind()): Promise<StoreOptions> {
  const dataDir = mkdtempSync(path.join(tmpdir(), 'sandbox-mounts-store-'))
  t.teardown(() => { rmSync(dataDir, { recursive: true, force: true }) })
  if (kind === 'sqlite') return { dataDir }
  return { dataDir, databaseUrl: await testDatabaseUrl() }
}

/** A migrated, empty store, closed in teardown. */
export async function openTestStore (t: Test, kind: StoreKind = envStoreKind()): Promise<RegistryStore> {
  const store = await openStore(await testStoreOptions(t, kind))
  t.teardown(async () => { await store.close() })
  return store
}
