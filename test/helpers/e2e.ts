import type { Test } from 'tap'
import { chmod, mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { randomBytes } from 'node:crypto'
import { spawn, type ChildProcess } from 'node:child_process'
import { buildApp } from '../../src/app.ts'
import { AgentClient } from '../../src/agent/client.ts'
import { SecretBox, sha256 } from '../../src/secrets.ts'
import { loadConfig } from '../../src/config.ts'
import { loadAgentConfig, type AgentConfig } from '../../src/agent/config.ts'
import { startAgent } from '../../src/agent/start.ts'
import { openTestStore } from './store.ts'
import { captureStream, TEMPLATES, TENANT_A, INTERNAL_TOKEN, type TestApp } from './app.ts'
import { ensureSandboxUser } from './sandbox-user.ts'
import { freePort } from './servers.ts'
import type { FastifyInstance } from 'fastify'
import type { RegistryStore } from '../../src/mounts/registry.ts'

// The control plane with the real in-VM agent (real rcd, real FUSE mounts) on this host.

export interface E2E extends Omit<TestApp, 'agent' | 'registerSandbox'> {
  agentConfig: AgentConfig
  agentUrl: string
  agentToken: string
  agentLogs: string[]
  /** Replaces the running agent (same dirs, same token), e.g. after a simulated restart. */
  restartAgent: () => Promise<void>
  stopAgent: () => Promise<void>
  /** Runs the agent as its own process (so it can be stopped with signals). */
  agentProcess?: ChildProcess
  root: string
}

const ROOT = path.resolve(import.meta.dirname, '../..')

export async function buildE2E (t: Test, opts: { sandboxId?: string, separateProcess?: boolean, agentEnv?: Record<string, string>, store?: RegistryStore } = {}): Promise<E2E> {
  await ensureSandboxUser()
  const root = await mkdtemp(path.join(tmpdir(), 'sandbox-mounts-e2e-'))
  // The sandbox user must be able to walk to the mount points below it.
  await chmod(root, 0o755)
  const agentToken = randomBytes(24).toString('base64url')
  const port = await freePort()
  const agentEnv = {
    AGENT_TOKEN: agentToken,
    AGENT_PORT: String(port),
    AGENT_CONFIG_DIR: path.join(root, 'run'),
    AGENT_STATE_DIR: path.join(root, 'state'),
    AGENT_LOG_LEVEL: 'debug',
    AGENT_PREFLIGHT_TIMEOUT_MS: '8000',
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    ...opts.agentEnv
  }
  const agentConfig = loadAgentConfig(agentEnv)
  const agentLogs: string[] = []
  let close: (() => Promise<void>) | undefined
  const e2e = {} as E2E
  const start = async (): Promise<void> => {
    if (opts.separateProcess === true) {
      const proc = spawn(process.execPath, ['--import', 'tsx', 'src/agent/main.ts'], { cwd: ROOT, env: agentEnv, stdio: ['ignore', 'pipe', 'pipe'] })
      proc.stdout?.on('data', d => agentLogs.push(...String(d).split('\n').filter(Boolean)))
      proc.stderr?.on('data', d => agentLogs.push(...String(d).split('\n').filter(Boolean)))
      e2e.agentProcess = proc
      const deadline = Date.now() + 30000
      for (;;) {
        if (proc.exitCode !== null) throw new Error(`agent exited: ${agentLogs.join('\n')}`)
        try { if ((await fetch(`http://127.0.0.1:${port}/healthz`)).status < 500) break } catch {}
        if (Date.now() > deadline) throw new Error('agent did not start')
        await new Promise(resolve => setTimeout(resolve, 100))
      }
      close = async () => {
        if (proc.exitCode === null && proc.signalCode === null) {
          const exited = new Promise(resolve => proc.once('exit', resolve))
          proc.kill('SIGTERM')
          await exited
        }
      }
    } else {
      const agent = await startAgent(agentConfig, { logStream: captureStream(agentLogs) })
      close = agent.close
    }
  }
  await start()
  const store = opts.store ?? await openTestStore(t)
  const box = new SecretBox([{ id: 'k1', key: randomBytes(32) }])
  const logs: string[] = []
  const config = loadConfig({ API_KEYS: `${TENANT_A.tenant}:${TENANT_A.key}`, INTERNAL_TOKEN, LOG_LEVEL: 'debug', RECONCILE_INTERVAL_MS: '0' }, sha256)
  const app: FastifyInstance = await buildApp(config, { store, agents: new AgentClient({ timeoutMs: 60000 }), box, templates: TEMPLATES, logStream: captureStream(logs) })
  const sandboxId = opts.sandboxId ?? 'e2e'
  await app.mounts.registerSandbox(sandboxId, { tenant: TENANT_A.tenant, agentUrl: `http://127.0.0.1:${port}`, agentToken })

  t.teardown(async () => {
    // Remove whatever is still mounted, then stop everything.
    for (const m of await store.listMounts(sandboxId).catch(() => [])) {
      await app.inject({ method: 'DELETE', url: `/sandboxes/${sandboxId}/mounts/${m.id}?force=true`, headers: { authorization: `Bearer ${INTERNAL_TOKEN}` } }).catch(() => {})
    }
    await app.close()
    await close?.()
    await killRcd(agentConfig.stateDir)
    await rm(root, { recursive: true, force: true })
  })

  Object.assign(e2e, {
    app,
    store,
    box,
    logs,
    agentLogs,
    agentConfig,
    agentUrl: `http://127.0.0.1:${port}`,
    agentToken,
    root,
    auth: (key: string) => ({ authorization: `Bearer ${key}` }),
    stopAgent: async () => { await close?.(); close = undefined },
    restartAgent: async () => { await close?.(); await start() }
  })
  return e2e
}

/** Kills an rcd left running by an agent with this state dir, and unmounts what it held. */
export async function killRcd (stateDir: string): Promise<void> {
  const { execFile } = await import('node:child_process')
  const { promisify } = await import('node:util')
  const run = promisify(execFile)
  const { stdout } = await run('ps', ['-eo', 'pid=,args=']).catch(() => ({ stdout: '' }))
  for (const line of stdout.split('\n')) {
    const m = /^\s*(\d+)\s+(.*)$/.exec(line)
    if (m !== null && m[2].includes('rclone') && m[2].includes(stateDir)) {
      try { process.kill(Number(m[1]), 'SIGKILL') } catch {}
    }
  }
  const mounts = await (await import('node:fs/promises')).readFile('/proc/self/mountinfo', 'utf8')
  for (const line of mounts.split('\n')) {
    const fields = line.split(' ')
    const dash = fields.indexOf('-')
    if (dash !== -1 && fields[dash + 1] === 'fuse.rclone' && fields[4].includes(path.basename(path.dirname(stateDir)))) {
      await run('fusermount3', ['-uz', fields[4].replace(/\\040/g, ' ')]).catch(() => {})
    }
  }
}
