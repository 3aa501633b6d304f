import type { BackendName, MountStatus } from '../schemas/mount.ts'

// The registry is the desired state of every sandbox's mounts. Stores implement this
// interface (SQLite embedded by default, PostgreSQL for several replicas); nothing above it
// knows which one is in use. Secret material is stored only as opaque encrypted blobs
// (src/mounts/secrets.ts) and never read back through any listing.

export interface SandboxRecord {
  id: string
  tenant: string
  agentUrl: string
  /** Encrypted agent token (opaque blob). */
  agentTokenSecret: string
  state: 'running' | 'hibernated'
  /** Bumped (by the database) on every change to the sandbox's mounts; absent when writing. */
  mountsRev?: number
  createdAt: string
  updatedAt: string
}

export interface MountRecord {
  id: string
  sandboxId: string
  path: string
  remote: string
  backend: BackendName | 'custom'
  credentialsRef: string | null
  readWrite: boolean
  mountOptions: string[]
  status: MountStatus
  lastError: string | null
  lastCheckedAt: string | null
  /** sha256 of the normalized request (incl. a keyed hash of the creds): same spec => same mount. */
  specHash: string
  /** Encrypted rendered config + redact list, so reconciliation can remount without the caller. */
  configSecret: string
  createdAt: string
  updatedAt: string
}

export interface CredentialRecord {
  tenant: string
  name: string
  backend: BackendName
  /** Names of the keys held; never their values. */
  keys: string[]
  /** Encrypted creds object (opaque blob). */
  secret: string
  createdAt: string
  updatedAt: string
}

export interface IdempotencyRecord {
  tenant: string
  key: string
  /** sha256 of method + url + body: the same key with another request is refused. */
  requestHash: string
  statusCode: number
  body: string
  createdAt: string
}

export type MountPatch = Partial<Pick<MountRecord,
'status' | 'lastError' | 'lastCheckedAt' | 'configSecret' | 'specHash' | 'updatedAt'>>

export class PathTakenError extends Error {
  constructor (sandboxId: string, path: string) {
    super(`path ${path} is already mounted in sandbox ${sandboxId}`)
  }
}

export interface RegistryStore {
  readonly kind: 'sqlite' | 'postgres'
  /** Applies versioned schema migrations; idempotent. */
  migrate (): Promise<void>
  close (): Promise<void>
  /** Cheap liveness query for /readyz. */
  ping (): Promise<void>

  upsertSandbox (rec: SandboxRecord): Promise<void>
  getSandbox (id: string): Promise<SandboxRecord | undefined>
  listSandboxIds (): Promise<string[]>
  setSandboxState (id: string, state: SandboxRecord['state'], updatedAt: string): Promise<void>
  /** Deletes the sandbox and, in the same transaction, every mount of it. */
  deleteSandbox (id: string): Promise<boolean>

  /** Throws PathTakenError when (sandboxId, path) exists. */
  insertMount (rec: MountRecord): Promise<void>
  getMount (sandboxId: string, id: string): Promise<MountRecord | undefined>
  getMountByPath (sandboxId: string, path: string): Promise<MountRecord | undefined>
  /** Ordered by createdAt, then id. */
  listMounts (sandboxId: string): Promise<MountRecord[]>
  listMountsByCredential (tenant: string, name: string): Promise<MountRecord[]>
  updateMount (sandboxId: string, id: string, patch: MountPatch): Promise<void>
  deleteMount (sandboxId: string, id: string): Promise<boolean>
  countMountsByStatus (): Promise<Record<string, number>>

  putCredential (rec: CredentialRecord): Promise<void>
  getCredential (tenant: string, name: string): Promise<CredentialRecord | undefined>
  listCredentials (tenant: string): Promise<CredentialRecord[]>
  deleteCredential (tenant: string, name: string): Promise<boolean>

  getIdempotency (tenant: string, key: string): Promise<IdempotencyRecord | undefined>
  /** Returns false when the key was already stored (first writer wins). */
  putIdempotency (rec: IdempotencyRecord): Promise<boolean>
  deleteIdempotencyBefore (createdAt: string): Promise<number>

  /** Runs fn while holding the sandbox's lock: across processes for PostgreSQL (advisory lock). */
  withSandboxLock<T> (sandboxId: string, fn: () => Promise<T>): Promise<T>
  /** Acquires or renews a named lease for holder; false when another live holder has it. */
  tryLease (name: string, holder: string, ttlMs: number): Promise<boolean>
  releaseLease (name: string, holder: string): Promise<void>
}
