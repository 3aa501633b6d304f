import type { FastifyBaseLogger } from 'fastify'
import type { AgentClient } from '../agent/client.ts'
import type { Credential, CredentialCreate, RotationResult } from '../schemas/credential.ts'
import type { BackendTemplate } from '../schemas/template.ts'
import type { RegistryStore, CredentialRecord, MountRecord } from './registry.ts'
import type { SecretBox } from '../secrets.ts'
import type { EventSink } from './events.ts'
import type { Principal } from './service.ts'
import { applyRequest, mountAad, type MountService, type StoredConfig } from './service.ts'
import { renderTyped } from '../rclone/render.ts'
import { parseRemote } from '../rclone/remote.ts'
import { templateFor, stableJson, specHash } from './spec.ts'
import { CredentialExists, CredentialInUse, CredentialNotFound, MountNotFound, SandboxHibernated, ValidationFailed } from '../errors.ts'

// Named credentials a tenant stores once and mounts refer to, and rotation: new credentials
// are preflighted and swapped into live mounts by the agent (flush first, old mount kept when
// the new credentials fail). Values are sealed at rest and never returned.

type Creds = Record<string, string | boolean | number>

export interface CredentialServiceDeps {
  store: RegistryStore
  agents: AgentClient
  box: SecretBox
  templates: ReadonlyMap<string, BackendTemplate>
  service: MountService
  events: EventSink
  log: FastifyBaseLogger
  now?: () => Date
}

function credAad (tenant: string, name: string): string { return `cred:${tenant}:${name}` }

export function toApiCredential (rec: CredentialRecord): Credential {
  return { name: rec.name, backend: rec.backend, keys: rec.keys, createdAt: rec.createdAt, updatedAt: rec.updatedAt }
}

function tenantOf (principal: Principal, explicit?: string): string {
  if (principal.kind === 'tenant') return principal.tenant
  if (explicit === undefined) throw new ValidationFailed('tenant: the internal token must name the tenant (?tenant=)')
  return explicit
}

export class CredentialService {
  readonly #d: CredentialServiceDeps
  readonly #now: () => Date

  constructor (deps: CredentialServiceDeps) {
    this.#d = deps
    this.#now = deps.now ?? (() => new Date())
  }

  async load (tenant: string, name: string): Promise<{ record: CredentialRecord, creds: Creds } | undefined> {
    const record = await this.#d.store.getCredential(tenant, name)
    if (record === undefined) return undefined
    return { record, creds: JSON.parse(this.#d.box.open(record.secret, credAad(tenant, name))) as Creds }
  }

  async create (principal: Principal, body: CredentialCreate, tenantParam?: string): Promise<Credential> {
    const tenant = tenantOf(principal, tenantParam)
    const rendered = renderTyped(templateFor(this.#d.templates, body.backend), 'check', body.creds)
    if (await this.#d.store.getCredential(tenant, body.name) !== undefined) {
      throw new CredentialExists(`name: credentials ${JSON.stringify(body.name)} exist already; PUT /credentials/${body.name} rotates them`)
    }
    const now = this.#now().toISOString()
    const rec: CredentialRecord = {
      tenant,
      name: body.name,
      backend: body.backend,
      keys: rendered.keys.filter(k => k !== 'type').sort(),
      secret: this.#d.box.seal(JSON.stringify(body.creds), credAad(tenant, body.name)),
      createdAt: now,
      updatedAt: now
    }
    await this.#d.store.putCredential(rec)
    return toApiCredential(rec)
  }

  async list (principal: Principal, tenantParam?: string): Promise<Credential[]> {
    return (await this.#d.store.listCredentials(tenantOf(principal, tenantParam))).map(toApiCredential)
  }

  async remove (principal: Principal, name: string, tenantParam?: string): Promise<void> {
    const tenant = tenantOf(principal, tenantParam)
    if (await this.#d.store.getCredential(tenant, name) === undefined) throw new CredentialNotFound(`name: no credentials ${JSON.stringify(name)}`)
    const users = await this.#d.store.listMountsByCredential(tenant, name)
    if (users.length > 0) throw new CredentialInUse(`name: credentials ${JSON.stringify(name)} are used by ${users.length} mount(s), e.g. ${users[0].id} at ${users[0].path}`)
    await this.#d.store.deleteCredential(tenant, name)
  }

  /** PUT /credentials/:name — every mount using them is re-rendered and swapped; all or nothing. */
  async rotateNamed (principal: Principal, name: string, creds: Creds, tenantParam?: string): Promise<RotationResult> {
    const tenant = tenantOf(principal, tenantParam)
    const existing = await this.#d.store.getCredential(tenant, name)
    if (existing === undefined) throw new CredentialNotFound(`name: no credentials ${JSON.stringify(name)}`)
    const template = templateFor(this.#d.templates, existing.backend)
    const rendered = renderTyped(template, 'check', creds)
    const mounts = await this.#d.store.listMountsByCredential(tenant, name)
    const done: Array<{ mount: MountRecord, old: StoredConfig }> = []
    try {
      for (const m of mounts) {
        done.push({ mount: m, old: await this.#swap(m, template, creds, `ref:${name}`) })
      }
    } catch (err) {
      // Put the mounts already swapped back on the old credentials, newest first.
      for (const { mount, old } of done.reverse()) {
        await this.#restore(mount, old).catch(e => this.#d.log.error({ sandboxId: mount.sandboxId, mountId: mount.id, code: (e as { code?: string }).code }, 'rollback of a rotation failed'))
      }
      throw err
    }
    const now = this.#now().toISOString()
    const rec: CredentialRecord = {
      ...existing, keys: rendered.keys.filter(k => k !== 'type').sort(), secret: this.#d.box.seal(JSON.stringify(creds), credAad(tenant, name)), updatedAt: now
    }
    await this.#d.store.putCredential(rec)
    return { credential: toApiCredential(rec), rotated: mounts.map(m => ({ mountId: m.id, sandboxId: m.sandboxId, path: m.path })) }
  }

  /** PUT /sandboxes/:id/mounts/:mountId/credentials — one mount with inline creds. */
  async rotateMount (principal: Principal, sandboxId: string, mountId: string, creds: Creds): Promise<RotationResult> {
    await this.#d.service.sandboxFor(principal, sandboxId)
    const m = await this.#d.store.getMount(sandboxId, mountId)
    if (m === undefined) throw new MountNotFound(`mountId: no mount ${mountId} in sandbox ${sandboxId}`)
    if (m.backend === 'custom') throw new ValidationFailed('creds: this mount uses a raw rcloneConfig; remove and add it with the new config')
    if (m.credentialsRef !== null) throw new ValidationFailed(`creds: this mount uses credentials ${JSON.stringify(m.credentialsRef)}; rotate them with PUT /credentials/${m.credentialsRef}`)
    const template = templateFor(this.#d.templates, m.backend)
    await this.#swap(m, template, creds, this.#d.box.digest(`${m.backend}\n${stableJson(creds)}`))
    return { rotated: [{ mountId: m.id, sandboxId, path: m.path }] }
  }

  /** Re-renders one mount with new creds and has the agent swap it; returns the old config. */
  async #swap (m: MountRecord, template: BackendTemplate, creds: Creds, credsIdentity: string): Promise<StoredConfig> {
    return await this.#d.store.withSandboxLock(m.sandboxId, async () => {
      const sandbox = await this.#d.service.sandboxFor({ kind: 'internal' }, m.sandboxId)
      if (sandbox.state === 'hibernated') throw new SandboxHibernated(`sandbox ${m.sandboxId} is hibernated: wake it before rotating credentials`)
      const current = await this.#d.store.getMount(m.sandboxId, m.id) ?? m
      const old = this.#d.service.openConfig(current)
      const { section, root } = parseRemote(current.remote)
      const rendered = renderTyped(template, section, creds)
      const next: StoredConfig = { config: rendered.config, section: rendered.section, root, redact: rendered.redact }
      // The agent preflights the new config, flushes pending writes, swaps, and keeps the old
      // mount when anything fails.
      const live = await this.#d.agents.apply(this.#d.service.agentTarget(sandbox), current.id, applyRequest(current, next))
      const now = this.#now().toISOString()
      await this.#d.store.updateMount(m.sandboxId, m.id, {
        configSecret: this.#d.box.seal(JSON.stringify(next), mountAad(m.sandboxId, m.id)),
        specHash: specHash({ ...current, credsIdentity }, t => this.#d.box.digest(t)),
        status: live.status,
        lastError: live.lastError ?? null,
        lastCheckedAt: now,
        updatedAt: now
      })
      this.#d.events('rotated', { sandboxId: m.sandboxId, mountId: m.id })
      return old
    })
  }

  async #restore (m: MountRecord, old: StoredConfig): Promise<void> {
    await this.#d.store.withSandboxLock(m.sandboxId, async () => {
      const sandbox = await this.#d.service.sandboxFor({ kind: 'internal' }, m.sandboxId)
      await this.#d.agents.apply(this.#d.service.agentTarget(sandbox), m.id, applyRequest(m, old))
      await this.#d.store.updateMount(m.sandboxId, m.id, { configSecret: m.configSecret, specHash: m.specHash, updatedAt: this.#now().toISOString() })
    })
  }
}
