import { createHash } from 'node:crypto'
import path from 'node:path'
import type { AgentApplyRequest } from '../schemas/agent.ts'
import { ConfigParseError, parseRcloneConfig } from '../rclone/parse.ts'
import { MountOptionError, toRcOptions } from '../rclone/mount-options.ts'
import { agentError } from './errors.ts'

// Turns an apply request into what rcd's mount/mount takes: an inline backend (the section's
// keys plus _root; no config file lookup) and the mount/VFS options, with the settings that are
// the agent's alone (read-only switch, owner, allow_other, cache mode, write-back) forced.

export interface MountSpec {
  mountId: string
  path: string
  readWrite: boolean
  section: string
  root: string
  mountOptions: string[]
  configHash: string
  fs: Record<string, string>
  mountOpt: Record<string, unknown>
  vfsOpt: Record<string, unknown>
  redact: string[]
}

/** Fingerprint of what decides a mount's behaviour; the same inputs always give the same hash. */
export function configHash (req: Pick<AgentApplyRequest, 'config' | 'section' | 'root' | 'mountOptions' | 'readWrite'>): string {
  return createHash('sha256').update(JSON.stringify([req.config, req.section, req.root, req.mountOptions, req.readWrite])).digest('hex')
}

// The control plane's policy is the real gate; the agent runs as root, so it also refuses the
// backends that would expose the VM's own files or wrap other remotes, and options that run
// local programs or read local files.
const REFUSED_TYPES = new Set(['local', 'alias', 'union', 'combine', 'chunker', 'crypt', 'compress', 'hasher', 'cache', 'memory'])
const REFUSED_KEYS = new Set(['bearer_token_command', 'ssh', 'key_file', 'pubkey_file', 'known_hosts_file', 'key_use_agent',
  'service_account_file', 'service_principal_file', 'shared_credentials_file', 'env_auth', 'use_msi', 'use_az', 'config_file'])

/** A path the agent may mount on: absolute, normalised, not the root, no control characters. */
export function checkMountPathSyntax (p: string): void {
  // eslint-disable-next-line no-control-regex
  if (!p.startsWith('/') || p === '/' || p.length > 1024 || /[\u0000-\u001f\u007f]/.test(p) || path.posix.normalize(p) !== p || p.endsWith('/')) {
    throw agentError('BAD_REQUEST', 'path must be an absolute, normalised path other than /')
  }
}

/** Fixed key that makes each mount's backend (and so its VFS and cache directory) its own. */
export const MOUNT_ID_KEY = 'sandbox_mounts_id'

export function buildMountSpec (mountId: string, req: AgentApplyRequest, owner: { uid: number, gid: number }): MountSpec {
  checkMountPathSyntax(req.path)
  let sections
  try {
    sections = parseRcloneConfig(req.config)
  } catch (err) {
    if (err instanceof ConfigParseError) throw agentError('BAD_REQUEST', `config: ${err.message}`)
    throw err
  }
  const values = sections.get(req.section)
  if (values === undefined) throw agentError('BAD_REQUEST', `config has no section [${req.section}]`)
  const type = values.get('type')
  if (type === undefined || type === '') throw agentError('BAD_REQUEST', `config section [${req.section}] has no type`)
  if (REFUSED_TYPES.has(type)) throw agentError('BAD_REQUEST', `backend type ${JSON.stringify(type)} is not mounted by the agent`)
  const fs: Record<string, string> = {}
  for (const [key, value] of values) {
    if (key.startsWith('_') || key === MOUNT_ID_KEY || key.includes('.')) throw agentError('BAD_REQUEST', `config key ${JSON.stringify(key.slice(0, 64))} is not allowed`)
    if (REFUSED_KEYS.has(key) || key.endsWith('_command')) throw agentError('BAD_REQUEST', `config key ${key} is not allowed`)
    fs[key] = value
  }
  fs._root = req.root
  fs[MOUNT_ID_KEY] = mountId

  let rc
  try {
    rc = toRcOptions(req.mountOptions)
  } catch (err) {
    if (err instanceof MountOptionError) throw agentError('BAD_REQUEST', `mountOptions: ${err.message}`)
    throw err
  }
  const mountOpt: Record<string, unknown> = { ...rc.mountOpt, AllowOther: true }
  const vfsOpt: Record<string, unknown> = { ...rc.vfsOpt, ReadOnly: !req.readWrite, UID: owner.uid, GID: owner.gid }
  if (req.readWrite) {
    // writes need a disk cache, and a short write-back so a remove soon after a write has
    // little to wait for
    if (vfsOpt.CacheMode === undefined || vfsOpt.CacheMode === 'off' || vfsOpt.CacheMode === 'minimal') vfsOpt.CacheMode = 'writes'
    if (vfsOpt.WriteBack === undefined) vfsOpt.WriteBack = 1e9
  }
  return {
    mountId,
    path: req.path,
    readWrite: req.readWrite,
    section: req.section,
    root: req.root,
    mountOptions: [...req.mountOptions],
    configHash: configHash(req),
    fs,
    mountOpt,
    vfsOpt,
    redact: req.redact.filter(v => v !== '')
  }
}
