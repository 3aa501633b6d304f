import { mkdirSync, closeSync, openSync, chmodSync } from 'node:fs'
import path from 'node:path'
import { PostgresRegistryStore } from './registry-postgres.ts'
import { SqliteRegistryStore } from './registry-sqlite.ts'
import type { RegistryStore } from './registry.ts'

// Picks the registry store from configuration and brings its schema up to date before
// anything uses it: PostgreSQL when a URL is given (several replicas), else an embedded
// SQLite file in the data directory.

export interface StoreOptions {
  databaseUrl?: string
  dataDir: string
}

export const SQLITE_FILE = 'registry.db'

export async function openStore (opts: StoreOptions): Promise<RegistryStore> {
  if (opts.databaseUrl !== undefined && opts.databaseUrl !== '') {
    const store = new PostgresRegistryStore(opts.databaseUrl)
    await migrateOrClose(store)
    return store
  }
  mkdirSync(opts.dataDir, { recursive: true, mode: 0o700 })
  const file = path.join(opts.dataDir, SQLITE_FILE)
  // The file holds encrypted secrets; SQLite gives its -wal and -shm files the same mode.
  closeSync(openSync(file, 'a', 0o600))
  chmodSync(file, 0o600)
  const store = new SqliteRegistryStore(file)
  await migrateOrClose(store)
  return store
}

async function migrateOrClose (store: RegistryStore): Promise<void> {
  try {
    await store.migrate()
  } catch (err) {
    await store.close().catch(() => {})
    throw err
  }
}
