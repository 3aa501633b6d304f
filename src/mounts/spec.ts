import type { MountCreate, BackendName } from '../schemas/mount.ts'
import type { BackendTemplate } from '../schemas/template.ts'
import type { CredentialRecord } from './registry.ts'
import { renderTyped, renderRaw, type Rendered } from '../rclone/render.ts'
import { parseRemote } from '../rclone/remote.ts'
import { normalizeMountOptions, MountOptionError } from '../rclone/mount-options.ts'
import { normalizeMountPath } from './paths.ts'
import { ValidationFailed, InvalidCredentials, UnknownBackend, RefusedMountOption, CredentialNotFound } from '../errors.ts'

// Turns a caller's mount body into a validated, canonical spec: normalized path, parsed remote,
// allowlisted options and a rendered config. Everything a caller can get wrong is refused
// here, before the registry or the agent sees anything.

export interface MountSpec {
  path: string
  remote: string
  section: string
  root: string
  backend: BackendName | 'custom'
  credentialsRef: string | null
  readWrite: boolean
  mountOptions: string[]
  rendered: Rendered
  /** What identifies the creds without revealing them (input to the spec hash). */
  credsIdentity: string
}

export interface SpecContext {
  templates: ReadonlyMap<string, BackendTemplate>
  /** Loads and decrypts a tenant's named credentials. */
  loadCredential: (name: string) => Promise<{ record: CredentialRecord, creds: Record<string, string | boolean | number> } | undefined>
  digest: (text: string) => string
}

export function stableJson (value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(stableJson).join(',')}]`
  if (value !== null && typeof value === 'object') {
    return `{${Object.keys(value).sort().map(k => `${JSON.stringify(k)}:${stableJson((value as Record<string, unknown>)[k])}`).join(',')}}`
  }
  return JSON.stringify(value)
}

export function templateFor (templates: ReadonlyMap<string, BackendTemplate>, backend: string): BackendTemplate {
  const template = templates.get(backend)
  if (template === undefined) throw new UnknownBackend(`backend: ${JSON.stringify(backend.slice(0, 64))} is not one of ${[...templates.keys()].join(', ')}`)
  return template
}

export async function buildSpec (body: MountCreate, ctx: SpecContext): Promise<MountSpec> {
  const path = normalizeMountPath(body.path)
  const { section, root } = parseRemote(body.remote)
  let mountOptions: string[]
  try {
    mountOptions = normalizeMountOptions(body.mountOptions ?? [])
  } catch (err) {
    if (err instanceof MountOptionError) throw new RefusedMountOption(err.message)
    throw err
  }
  const base = { path, remote: body.remote, section, root, readWrite: body.readWrite === true, mountOptions }

  if (body.rcloneConfig !== undefined) {
    if (body.backend !== undefined || body.creds !== undefined || body.credentialsRef !== undefined) {
      throw new ValidationFailed('rcloneConfig: give either rcloneConfig, or backend with creds or credentialsRef, not both')
    }
    const rendered = renderRaw(body.rcloneConfig, section)
    return { ...base, backend: 'custom', credentialsRef: null, rendered, credsIdentity: ctx.digest(rendered.config) }
  }
  if (body.creds !== undefined && body.credentialsRef !== undefined) {
    throw new ValidationFailed('creds: give either creds or credentialsRef, not both')
  }
  if (body.credentialsRef !== undefined) {
    const found = await ctx.loadCredential(body.credentialsRef)
    if (found === undefined) throw new CredentialNotFound(`credentialsRef: no credentials named ${JSON.stringify(body.credentialsRef)}`)
    if (body.backend !== undefined && body.backend !== found.record.backend) {
      throw new ValidationFailed(`backend: credentials ${JSON.stringify(body.credentialsRef)} are for backend ${found.record.backend}, not ${body.backend}`)
    }
    const rendered = renderTyped(templateFor(ctx.templates, found.record.backend), section, found.creds)
    return { ...base, backend: found.record.backend, credentialsRef: body.credentialsRef, rendered, credsIdentity: `ref:${body.credentialsRef}` }
  }
  if (body.backend === undefined) {
    throw new ValidationFailed('backend: required unless rcloneConfig is given')
  }
  if (body.creds === undefined) {
    throw new InvalidCredentials('creds: required with backend (or give credentialsRef)')
  }
  const rendered = renderTyped(templateFor(ctx.templates, body.backend), section, body.creds)
  return { ...base, backend: body.backend, credentialsRef: null, rendered, credsIdentity: ctx.digest(`${body.backend}\n${stableJson(body.creds)}`) }
}

export function specHash (spec: Pick<MountSpec, 'path' | 'remote' | 'backend' | 'readWrite' | 'mountOptions' | 'credsIdentity'>, digest: (text: string) => string): string {
  return digest(stableJson({
    path: spec.path,
    remote: spec.remote,
    backend: spec.backend,
    readWrite: spec.readWrite,
    mountOptions: spec.mountOptions,
    creds: spec.credsIdentity
  }))
}
