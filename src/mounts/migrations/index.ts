import { initial } from './001-initial.ts'
import { mountsRevision } from './002-mounts-revision.ts'

// Versioned schema changes, applied in order at open and recorded in schema_migrations.
// A released migration never changes; a new version is a new file. Each carries both
// dialects so the two stores cannot drift apart.

export interface Migration {
  version: number
  name: string
  sqlite: string
  postgres: string
}

export const migrations: readonly Migration[] = [initial, mountsRevision]
