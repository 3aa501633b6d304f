import { randomUUID } from 'node:crypto'
import type { FastifyBaseLogger } from 'fastify'
import type { MountCreate, Mount, MountStatus } from '../schemas/mount.ts'
import type { AgentApplyRequest, AgentMount } from '../schemas/agent.ts'
import type { RegistryStore, MountRecord, SandboxRecord } from './registry.ts'
import { PathTakenError } from './registry.ts'
import type { AgentClient, AgentTarget } from '../agent/client.ts'
import type { SecretBox } from '../secrets.ts'
import type { EventSink } from './events.ts'
import { buildSpec, specHash, type MountSpec, type SpecContext } from './spec.ts'
import { nests, normalizeMountPath } from './paths.ts'
import { MountNotFound, PathConflict, SandboxHibernated, SandboxNotFound, SandboxConflict, ValidationFailed } from '../errors.ts'

// The mount flow: validate and render (spec.ts), reserve the path in the registry, have the
// agent make it live, record the outcome. The registry is the desired state; a failed add
// leaves no entry, and a remove deletes the entry only once the agent has unmounted.

const LIST_CACHE_SANDBOXES = 4096

export type Principal = { kind: 'internal' } | { kind: 'tenant', tenant: string }

export interface StoredConfig {
  config: string
  section: string
  root: string
  redact: string[]
}

export interface MountServiceDeps {
  store: RegistryStore
  agents: AgentClient
  box: SecretBox
  templates: SpecContext['templates']
  log: FastifyBaseLogger
  events: EventSink
  /** Loads a tenant's named credentials (src/mounts/credentials.ts); absent until that exists. */
  loadCredential?: (tenant: string, name: string) => ReturnType<SpecContext['loadCredential']>
  now?: () => Date
}

export function mountAad (sandboxId: string, mountId: string): string { return `mount:${sandboxId}:${mountId}` }
export function sandboxAad (sandboxId: string): string { return `sandbox:${sandboxId}` }

export function toApiMount (rec: MountRecord, status?: MountStatus): Mount {
  const out: Mount = {
    id: rec.id,
    sandboxId: rec.sandboxId,
    path: rec.path,
    remote: rec.remote,
    backend: rec.backend,
    readWrite: rec.readWrite,
    mountOptions: rec.mountOptions,
    status: status ?? rec.status,
    createdAt: rec.createdAt,
    updatedAt: rec.updatedAt
  }
  if (rec.credentialsRef !== null) out.credentialsRef = rec.credentialsRef
  if (rec.lastError !== null) out.lastError = rec.lastError
  if (rec.lastCheckedAt !== null) out.lastCheckedAt = rec.lastCheckedAt
  return out
}

export class MountService {
  readonly #d: MountServiceDeps
  readonly #now: () => Date

  constructor (deps: MountServiceDeps) {
    this.#d = deps
    this.#now = deps.now ?? (() => new Date())
  }

  // The last listing built per sandbox, valid while the sandbox's mounts revision (bumped by
  // the database on every mount change, from any replica) is unchanged. Bounded, oldest out.
  readonly #listCache = new Map<string, { rev: number, mounts: Mount[] }>()

  #remember (sandboxId: string, rev: number, mounts: Mount[]): void {
    this.#listCache.delete(sandboxId)
    this.#listCache.set(sandboxId, { rev, mounts })
    if (this.#listCache.size > LIST_CACHE_SANDBOXES) this.#listCache.delete(this.#listCache.keys().next().value as string)
  }

  get store (): RegistryStore { return this.#d.store }

  #ts (): string { return this.#now().toISOString() }

  // ---- sandboxes ---------------------------------------------------------------------------

  async registerSandbox (id: string, body: { tenant: string, agentUrl: string, agentToken: string }): Promise<{ created: boolean }> {
    return await this.#d.store.withSandboxLock(id, async () => {
      const existing = await this.#d.store.getSandbox(id)
      if (existing !== undefined && existing.tenant !== body.tenant && (await this.#d.store.listMounts(id)).length > 0) {
        throw new SandboxConflict(`tenant: sandbox ${id} belongs to another tenant and has mounts`)
      }
      const now = this.#ts()
      await this.#d.store.upsertSandbox({
        id,
        tenant: body.tenant,
        agentUrl: body.agentUrl,
        agentTokenSecret: this.#d.box.seal(body.agentToken, sandboxAad(id)),
        state: existing?.state ?? 'running',
        createdAt: existing?.createdAt ?? now,
        updatedAt: now
      })
      return { created: existing === undefined }
    })
  }

  /** The sandbox when the principal may see it; 404 otherwise (another tenant's sandbox does not exist for it). */
  async sandboxFor (principal: Principal, sandboxId: string): Promise<SandboxRecord> {
    const sandbox = await this.#d.store.getSandbox(sandboxId)
    if (sandbox === undefined || (principal.kind === 'tenant' && sandbox.tenant !== principal.tenant)) {
      throw new SandboxNotFound(`sandboxId: no sandbox ${sandboxId}`)
    }
    return sandbox
  }

  agentTarget (sandbox: SandboxRecord): AgentTarget {
    return { sandboxId: sandbox.id, url: sandbox.agentUrl, token: this.#d.box.open(sandbox.agentTokenSecret, sandboxAad(sandbox.id)) }
  }

  // ---- mounts ------------------------------------------------------------------------------

  async add (principal: Principal, sandboxId: string, body: MountCreate): Promise<{ mount: Mount, created: boolean }> {
    const sandbox = await this.sandboxFor(principal, sandboxId)
    const spec = await buildSpec(body, {
      templates: this.#d.templates,
      digest: t => this.#d.box.digest(t),
      loadCredential: async name => await (this.#d.loadCredential?.(sandbox.tenant, name) ?? Promise.resolve(undefined))
    })
    const hash = specHash(spec, t => this.#d.box.digest(t))
    return await this.#d.store.withSandboxLock(sandboxId, async () => {
      const current = await this.#d.store.getSandbox(sandboxId)
      if (current === undefined) throw new SandboxNotFound(`sandboxId: no sandbox ${sandboxId}`)
      if (current.state === 'hibernated') throw new SandboxHibernated(`sandbox ${sandboxId} is hibernated: wake it before adding mounts`)
      const mounts = await this.#d.store.listMounts(sandboxId)
      const same = mounts.find(m => m.path === spec.path)
      if (same !== undefined) {
        if (same.specHash === hash && same.status !== 'removing') return { mount: toApiMount(same), created: false }
        throw new PathConflict(`path: ${spec.path} is already mounted in sandbox ${sandboxId} with a different spec (mount ${same.id})`)
      }
      const around = mounts.find(m => nests(m.path, spec.path))
      if (around !== undefined) throw new PathConflict(`path: ${spec.path} is inside or around mount ${around.id} at ${around.path}`)
      const rec = this.#newRecord(sandboxId, spec, hash)
      try {
        await this.#d.store.insertMount(rec)
      } catch (err) {
        if (err instanceof PathTakenError) throw new PathConflict(`path: ${spec.path} is already mounted in sandbox ${sandboxId}`)
        throw err
      }
      try {
        const live = await this.#d.agents.apply(this.agentTarget(current), rec.id, applyRequest(rec, storedConfigOf(spec)))
        const now = this.#ts()
        const patch = { status: live.status, lastError: live.lastError ?? null, lastCheckedAt: now, updatedAt: now }
        await this.#d.store.updateMount(sandboxId, rec.id, patch)
        this.#d.events('added', { sandboxId, mountId: rec.id, path: rec.path, backend: rec.backend })
        return { mount: toApiMount({ ...rec, ...patch }), created: true }
      } catch (err) {
        // A failed add leaves nothing behind: the agent cleans the VM, we drop the reservation.
        await this.#d.store.deleteMount(sandboxId, rec.id)
        this.#d.events('failed', { sandboxId, mountId: rec.id, reason: (err as Error).message })
        throw err
      }
    })
  }

  #newRecord (sandboxId: string, spec: MountSpec, hash: string): MountRecord {
    const id = `mnt_${randomUUID().replaceAll('-', '')}`
    const now = this.#ts()
    return {
      id,
      sandboxId,
      path: spec.path,
      remote: spec.remote,
      backend: spec.backend,
      credentialsRef: spec.credentialsRef,
      readWrite: spec.readWrite,
      mountOptions: spec.mountOptions,
      status: 'pending',
      lastError: null,
      lastCheckedAt: null,
      specHash: hash,
      configSecret: this.#d.box.seal(JSON.stringify(storedConfigOf(spec)), mountAad(sandboxId, id)),
      createdAt: now,
      updatedAt: now
    }
  }

  openConfig (rec: MountRecord): StoredConfig {
    return JSON.parse(this.#d.box.open(rec.configSecret, mountAad(rec.sandboxId, rec.id))) as StoredConfig
  }

  async list (principal: Principal, sandboxId: string, opts: { refresh?: boolean } = {}): Promise<Mount[]> {
    const sandbox = await this.sandboxFor(principal, sandboxId)
    if (opts.refresh !== true) {
      const cached = this.#listCache.get(sandboxId)
      if (cached !== undefined && sandbox.mountsRev !== undefined && cached.rev === sandbox.mountsRev) return cached.mounts
    }
    const mounts = await this.#d.store.listMounts(sandboxId)
    if (opts.refresh !== true || mounts.length === 0 || sandbox.state === 'hibernated') {
      const view = mounts.map(m => toApiMount(m))
      if (sandbox.mountsRev !== undefined) this.#remember(sandboxId, sandbox.mountsRev, view)
      return view
    }
    let live: AgentMount[]
    try {
      live = await this.#d.agents.list(this.agentTarget(sandbox), { timeoutMs: 5000 })
    } catch (err) {
      this.#d.log.warn({ sandboxId, err: { code: (err as { code?: string }).code } }, 'agent unreachable while listing; answering from the registry')
      return mounts.map(m => toApiMount(m, 'unknown'))
    }
    const byId = new Map(live.map(m => [m.mountId, m]))
    return await Promise.all(mounts.map(async m => await this.#recordHealth(m, byId.get(m.id))))
  }

  async get (principal: Principal, sandboxId: string, mountId: string): Promise<Mount> {
    const sandbox = await this.sandboxFor(principal, sandboxId)
    const rec = await this.#d.store.getMount(sandboxId, mountId)
    if (rec === undefined) throw new MountNotFound(`mountId: no mount ${mountId} in sandbox ${sandboxId}`)
    if (sandbox.state === 'hibernated' || rec.status === 'pending' || rec.status === 'removing') return toApiMount(rec)
    let live: AgentMount | undefined
    try {
      live = await this.#d.agents.get(this.agentTarget(sandbox), mountId, { timeoutMs: 5000 })
    } catch {
      return toApiMount(rec, 'unknown')
    }
    return await this.#recordHealth(rec, live)
  }

  /** Stores what the agent reports for one mount (absent => failed) and returns the API view. */
  async #recordHealth (rec: MountRecord, live: AgentMount | undefined): Promise<Mount> {
    if (rec.status === 'pending' || rec.status === 'removing') return toApiMount(rec)
    const status: MountStatus = live?.status ?? 'failed'
    const lastError = live === undefined ? 'the agent has no live mount for it' : (live.lastError ?? null)
    const now = this.#ts()
    const patch = { status, lastError, lastCheckedAt: now, updatedAt: status !== rec.status || lastError !== rec.lastError ? now : rec.updatedAt }
    await this.#d.store.updateMount(rec.sandboxId, rec.id, patch)
    if (status !== rec.status && status !== 'mounted') this.#d.events(status === 'degraded' ? 'degraded' : 'failed', { sandboxId: rec.sandboxId, mountId: rec.id, reason: lastError ?? status })
    return toApiMount({ ...rec, ...patch })
  }

  async remove (principal: Principal, sandboxId: string, target: { mountId?: string, path?: string }, opts: { force?: boolean } = {}): Promise<void> {
    await this.sandboxFor(principal, sandboxId)
    if ((target.mountId === undefined) === (target.path === undefined)) throw new ValidationFailed('path: give the mount id in the URL or ?path=, not both')
    const path = target.path === undefined ? undefined : normalizeMountPath(target.path, 'path')
    await this.#d.store.withSandboxLock(sandboxId, async () => {
      const sandbox = await this.#d.store.getSandbox(sandboxId)
      if (sandbox === undefined) throw new SandboxNotFound(`sandboxId: no sandbox ${sandboxId}`)
      if (sandbox.state === 'hibernated') throw new SandboxHibernated(`sandbox ${sandboxId} is hibernated: wake it before removing mounts`)
      const rec = path !== undefined
        ? await this.#d.store.getMountByPath(sandboxId, path)
        : await this.#d.store.getMount(sandboxId, target.mountId as string)
      if (rec === undefined) throw new MountNotFound(path !== undefined ? `path: no mount at ${path} in sandbox ${sandboxId}` : `mountId: no mount ${target.mountId as string} in sandbox ${sandboxId}`)
      await this.#d.store.updateMount(sandboxId, rec.id, { status: 'removing', updatedAt: this.#ts() })
      try {
        await this.#d.agents.remove(this.agentTarget(sandbox), rec.id, { force: opts.force === true })
      } catch (err) {
        // A timed-out remove may still finish in the VM: the entry stays `removing`, so a retry or
        // reconciliation completes the removal instead of mounting it again.
        if ((err as { code?: string }).code !== 'AGENT_TIMEOUT') await this.#d.store.updateMount(sandboxId, rec.id, { status: rec.status, updatedAt: this.#ts() })
        throw err
      }
      await this.#d.store.deleteMount(sandboxId, rec.id)
      this.#d.events('removed', { sandboxId, mountId: rec.id, path: rec.path, reason: opts.force === true ? 'forced' : 'requested' })
    })
  }
}

export function storedConfigOf (spec: MountSpec): StoredConfig {
  return { config: spec.rendered.config, section: spec.rendered.section, root: spec.root, redact: spec.rendered.redact }
}

export function applyRequest (rec: Pick<MountRecord, 'path' | 'readWrite' | 'mountOptions'>, cfg: StoredConfig): AgentApplyRequest {
  return {
    path: rec.path,
    config: cfg.config,
    section: cfg.section,
    root: cfg.root,
    readWrite: rec.readWrite,
    mountOptions: rec.mountOptions,
    redact: cfg.redact
  }
}
