import { randomBytes } from 'node:crypto'
import { chmod, mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import type { FastifyInstance, LightMyRequestResponse } from 'fastify'
import type { Test } from 'tap'
import { buildAgent } from '../../src/agent/app.ts'
import type { MountManager } from '../../src/agent/manager.ts'
import { loadAgentConfig, type AgentConfig } from '../../src/agent/config.ts'
import { fusermountUnmount } from '../../src/agent/fusermount.ts'
import { readMountinfo } from '../../src/agent/mountinfo.ts'
import type { AgentApplyRequest } from '../../src/schemas/agent.ts'
import { obscure } from '../../src/rclone/obscure.ts'
import type { WebdavServer } from '../helpers/servers.ts'
import { ensureSandboxUser, type SandboxUser } from '../helpers/sandbox-user.ts'

// A real agent (real rcd, real FUSE) in a private temp dir, driven through app.inject().
// Teardown removes every mount, stops the daemon and deletes the dir.

// Obscuring in-process keeps test secrets off command lines.
export { obscure }

/** An apply request mounting the WebDAV server's root (or `root`) at path. */
export function davRequest (dav: WebdavServer, path: string, opts: Partial<AgentApplyRequest> & { pass?: string } = {}): AgentApplyRequest {
  const pass = opts.pass ?? dav.pass
  const ob = obscure(pass)
  return {
    path,
    config: iniSection('dav', { type: 'webdav', url: dav.url, vendor: 'other', user: dav.user, pass: ob }),
    section: 'dav',
    root: opts.root ?? '',
    readWrite: opts.readWrite ?? false,
    mountOptions: opts.mountOptions ?? [],
    redact: [pass, ob]
  }
}

/** Canonical rclone INI with one section. */
export function iniSection (name: string, values: Record<string, string>): string {
  return `[${name}]\n` + Object.entries(values).map(([k, v]) => `${k} = ${v}\n`).join('')
}

export const TOKEN = 'test-agent-token-' + randomBytes(8).toString('hex')

export interface TestAgent {
  app: FastifyInstance
  manager: MountManager
  config: AgentConfig
  base: string
  user: SandboxUser
  logs (): string
  put (mountId: string, body: AgentApplyRequest): Promise<LightMyRequestResponse>
  del (mountId: string, force?: boolean): Promise<LightMyRequestResponse>
  get (url: string): Promise<LightMyRequestResponse>
  /** Stops this agent and starts a fresh one on the same dirs, like a restarted agent process; mounts and rcd stay. */
  restart (): Promise<void>
}

export async function makeBase (t: Test): Promise<string> {
  const base = await mkdtemp(join(tmpdir(), 'agent-test-'))
  // the sandbox user must be able to reach mount points below it
  await chmod(base, 0o755)
  t.teardown(async () => {
    for (const e of (await readMountinfo()).reverse()) {
      if (e.mountPoint.startsWith(base + '/')) await fusermountUnmount('fusermount3', e.mountPoint, { lazy: true })
    }
    await rm(base, { recursive: true, force: true })
  })
  return base
}

export async function startTestAgent (t: Test, env: Record<string, string> = {}): Promise<TestAgent> {
  const user = await ensureSandboxUser()
  const base = await makeBase(t)
  const config = loadAgentConfig({
    AGENT_TOKEN: TOKEN,
    AGENT_CONFIG_DIR: join(base, 'config'),
    AGENT_STATE_DIR: join(base, 'state'),
    AGENT_PORT: '0',
    AGENT_LOG_LEVEL: 'debug',
    PATH: process.env.PATH,
    ...env
  })
  let logText = ''
  const stream = new Writable({
    write (chunk: Buffer, _enc, cb) { logText += chunk.toString(); cb() }
  })
  let current = await buildAgent(config, { logStream: stream })
  t.teardown(async () => {
    await current.manager.close({ unmountAll: true, stopDaemon: true })
    await current.app.close()
  })
  const auth = { authorization: `Bearer ${TOKEN}` }
  return {
    get app () { return current.app },
    get manager () { return current.manager },
    config,
    base,
    user,
    logs: () => logText,
    put: async (mountId, body) => await current.app.inject({ method: 'PUT', url: `/v1/mounts/${mountId}`, headers: auth, payload: body }),
    del: async (mountId, force = false) => await current.app.inject({ method: 'DELETE', url: `/v1/mounts/${mountId}${force ? '?force=true' : ''}`, headers: auth }),
    get: async (url) => await current.app.inject({ method: 'GET', url, headers: auth }),
    restart: async () => {
      await current.app.close()
      current = await buildAgent(config, { logStream: stream })
    }
  }
}

export async function readText (file: string): Promise<string | null> {
  return await readFile(file, 'utf8').catch(() => null)
}

export async function waitFor<T> (fn: () => Promise<T | undefined | false | null>, timeoutMs = 15_000, stepMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const v = await fn()
    if (v !== undefined && v !== false && v !== null) return v
    if (Date.now() > deadline) throw new Error('timed out waiting')
    await new Promise(resolve => setTimeout(resolve, stepMs))
  }
}

/** Entries (file names) in a directory, or [] when it does not exist. */
export async function entries (dir: string): Promise<string[]> {
  return await readdir(dir).catch(() => [])
}

/** Everything an apply can leave behind for this mount: all of it must be gone. */
export async function leftovers (agent: TestAgent, mountId: string, mountPath: string): Promise<string[]> {
  const found: string[] = []
  if ((await readMountinfo()).some(e => e.mountPoint === mountPath)) found.push('mount')
  const configs = (await entries(agent.config.configDir)).filter(n => n.startsWith(mountId + '.'))
  if (configs.length > 0) found.push(`config files ${configs.join(',')}`)
  if ((await entries(join(agent.config.stateDir, 'mounts'))).includes(`${mountId}.json`)) found.push('record')
  for (const sub of ['vfs', 'vfsMeta']) {
    const names = await entries(join(agent.config.stateDir, 'cache', sub))
    if (names.length > 0) found.push(`cache ${sub}/${names.join(',')}`)
  }
  if (await stat(mountPath).then(() => true, () => false)) found.push('mount point directory')
  return found
}
