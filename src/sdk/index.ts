import type { Mount, MountCreate, MountList } from '../schemas/mount.ts'
import type { Credential, CredentialCreate, CredentialUpdate, RotationResult } from '../schemas/credential.ts'
import type { ReconcileReport, SandboxEvent } from '../schemas/reconcile.ts'
import type { Sandbox, SandboxRegister } from '../schemas/sandbox.ts'
import type { BackendDescription } from '../rclone/templates.ts'
import { request, type FetchLike, type Transport } from './http.ts'

// Typed client for the control plane's HTTP API. Types come from the route schemas, so the
// SDK cannot drift from what the service validates. No runtime dependencies: usable from
// plain JavaScript on Node 20+ (global fetch).

export { SandboxMountsError, NETWORK_ERROR, TIMEOUT, INVALID_RESPONSE } from './errors.ts'
export type { Mount, MountCreate, Credential, CredentialCreate, RotationResult, ReconcileReport, Sandbox, SandboxRegister, BackendDescription, FetchLike }
export type Creds = CredentialUpdate['creds']
export type SandboxEventType = SandboxEvent['type']

export interface ClientOptions {
  /** e.g. http://127.0.0.1:8080 */
  baseUrl: string
  /** A tenant's API key, or the internal token for `client.internal` and cross-tenant calls. */
  apiKey: string
  /** Replaces the global fetch (tests, proxies). */
  fetch?: FetchLike
  /** Per request; adding a mount waits for it to come up, so the default is generous. */
  timeoutMs?: number
}

export interface WriteOptions {
  /** Sent as Idempotency-Key: a retry with the same key does the work only once. */
  idempotencyKey?: string
}
export interface RemoveOptions extends WriteOptions {
  /** Lazy-unmount a busy mount. */
  force?: boolean
}
export interface TenantOptions {
  /** Only with the internal token: act on this tenant's credentials. */
  tenant?: string
}

export interface MountsApi {
  /** Mounts a remote; resolves once it is live (or with the existing mount for the same spec). */
  add: (body: MountCreate, opts?: WriteOptions) => Promise<Mount>
  list: (opts?: { refresh?: boolean }) => Promise<Mount[]>
  get: (mountId: string) => Promise<Mount>
  remove: (path: string, opts?: RemoveOptions) => Promise<void>
  removeById: (mountId: string, opts?: RemoveOptions) => Promise<void>
  reconcile: () => Promise<ReconcileReport>
  /** Swaps a mount's inline credentials after a preflight; the old mount stays when they fail. */
  rotate: (mountId: string, creds: Creds) => Promise<RotationResult>
}

export interface SandboxApi {
  id: string
  mounts: MountsApi
}

export interface CredentialsApi {
  create: (body: CredentialCreate, opts?: TenantOptions) => Promise<Credential>
  list: (opts?: TenantOptions) => Promise<Credential[]>
  rotate: (name: string, creds: Creds, opts?: TenantOptions) => Promise<RotationResult>
  remove: (name: string, opts?: TenantOptions) => Promise<void>
}

/** Orchestrator calls; the client's apiKey must be the internal token. */
export interface InternalApi {
  registerSandbox: (sandboxId: string, body: SandboxRegister) => Promise<Sandbox>
  /** hibernating and destroyed resolve to undefined; woke and restarted to the reconcile report. */
  event: (sandboxId: string, type: SandboxEventType) => Promise<ReconcileReport | undefined>
}

export interface Client {
  sandbox: (sandboxId: string) => SandboxApi
  credentials: CredentialsApi
  backends: () => Promise<BackendDescription[]>
  internal: InternalApi
}

const DEFAULT_TIMEOUT_MS = 120_000

function transportFor (opts: ClientOptions): Transport {
  let base: URL
  try {
    base = new URL(opts.baseUrl)
  } catch {
    throw new TypeError('baseUrl: not a URL (e.g. http://127.0.0.1:8080)')
  }
  if (base.protocol !== 'http:' && base.protocol !== 'https:') throw new TypeError('baseUrl: must be http:// or https://')
  if (typeof opts.apiKey !== 'string' || opts.apiKey === '') throw new TypeError('apiKey: required')
  const fetchFn = opts.fetch ?? globalThis.fetch
  if (typeof fetchFn !== 'function') throw new TypeError('fetch: no global fetch; pass one in the options')
  return {
    baseUrl: base.href.replace(/\/+$/, ''),
    apiKey: opts.apiKey,
    fetch: fetchFn,
    timeoutMs: opts.timeoutMs ?? DEFAULT_TIMEOUT_MS
  }
}

const seg = encodeURIComponent

function mountsApi (t: Transport, sandboxId: string): MountsApi {
  const base = `/sandboxes/${seg(sandboxId)}/mounts`
  return {
    add: async (body, opts = {}) => await request<Mount>(t, 'POST', base, { body, idempotencyKey: opts.idempotencyKey }),
    list: async (opts = {}) => (await request<MountList>(t, 'GET', base, { query: { refresh: opts.refresh } })).mounts,
    get: async (mountId) => await request<Mount>(t, 'GET', `${base}/${seg(mountId)}`),
    remove: async (path, opts = {}) => {
      await request<undefined>(t, 'DELETE', base, { query: { path, force: opts.force }, idempotencyKey: opts.idempotencyKey })
    },
    removeById: async (mountId, opts = {}) => {
      await request<undefined>(t, 'DELETE', `${base}/${seg(mountId)}`, { query: { force: opts.force }, idempotencyKey: opts.idempotencyKey })
    },
    reconcile: async () => await request<ReconcileReport>(t, 'POST', `${base}/reconcile`),
    rotate: async (mountId, creds) => await request<RotationResult>(t, 'PUT', `${base}/${seg(mountId)}/credentials`, { body: { creds } })
  }
}

function credentialsApi (t: Transport): CredentialsApi {
  return {
    create: async (body, opts = {}) => await request<Credential>(t, 'POST', '/credentials', { body, query: { tenant: opts.tenant } }),
    list: async (opts = {}) => (await request<{ credentials: Credential[] }>(t, 'GET', '/credentials', { query: { tenant: opts.tenant } })).credentials,
    rotate: async (name, creds, opts = {}) => await request<RotationResult>(t, 'PUT', `/credentials/${seg(name)}`, { body: { creds }, query: { tenant: opts.tenant } }),
    remove: async (name, opts = {}) => {
      await request<undefined>(t, 'DELETE', `/credentials/${seg(name)}`, { query: { tenant: opts.tenant } })
    }
  }
}

function internalApi (t: Transport): InternalApi {
  return {
    registerSandbox: async (sandboxId, body) => await request<Sandbox>(t, 'PUT', `/internal/sandboxes/${seg(sandboxId)}`, { body }),
    event: async (sandboxId, type) => await request<ReconcileReport | undefined>(t, 'POST', `/internal/sandboxes/${seg(sandboxId)}/events`, { body: { type } })
  }
}

/** Creates a client; throws TypeError at once for a malformed baseUrl or a missing apiKey. */
export function createClient (opts: ClientOptions): Client {
  const t = transportFor(opts)
  return {
    sandbox: (sandboxId) => ({ id: sandboxId, mounts: mountsApi(t, sandboxId) }),
    credentials: credentialsApi(t),
    backends: async () => (await request<{ backends: BackendDescription[] }>(t, 'GET', '/backends')).backends,
    internal: internalApi(t)
  }
}
