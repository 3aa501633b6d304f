import { spawn, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import path from 'node:path'
import { loadAgentConfig } from '../../src/agent/config.ts'
import { startAgent } from '../../src/agent/start.ts'
import { allProcesses } from './proc.ts'
import { discardStream } from './control-plane.ts'
import { unmountUnder } from './rclone.ts'
import { freePort, stopChild } from './server-process.ts'
import { nodeArgs, PACKAGE_ROOT } from './paths.ts'

// The real in-VM agent on this host, in this process (as the control plane's local mode runs
// it) or as its own process (so its RSS can be read apart from everything else). Either way
// close() removes its mounts, stops its rclone daemon and kills anything left behind.

export interface BenchAgent {
  url: string
  token: string
  stateDir: string
  /** The agent's own pid (this process when in-process). */
  pid: number
  close: () => Promise<void>
}

function agentEnv (root: string, token: string, port: number): Record<string, string> {
  return {
    AGENT_TOKEN: token,
    AGENT_HOST: '127.0.0.1',
    AGENT_PORT: String(port),
    AGENT_CONFIG_DIR: path.join(root, 'run'),
    AGENT_STATE_DIR: path.join(root, 'state'),
    AGENT_LOG_LEVEL: 'info',
    SANDBOX_USER: 'sandbox',
    PATH: process.env.PATH ?? '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'
  }
}

/** Kills rclone processes whose command line names `marker` (the agent's state dir). */
export async function killRclonesMentioning (marker: string): Promise<void> {
  for (const p of await allProcesses()) {
    if (p.name === 'rclone' && p.argv.some(a => a.includes(marker))) {
      try { process.kill(p.pid, 'SIGKILL') } catch {}
    }
  }
}

export async function startBenchAgent (root: string, opts: { separateProcess?: boolean } = {}): Promise<BenchAgent> {
  const token = randomBytes(24).toString('base64url')
  const stateDir = path.join(root, 'state')
  const cleanup = async (): Promise<void> => {
    await killRclonesMentioning(stateDir)
    await unmountUnder(root)
  }
  if (opts.separateProcess !== true) {
    const agent = await startAgent(loadAgentConfig(agentEnv(root, token, 0)), { logStream: discardStream(), unmountOnClose: true, stopDaemonOnClose: true })
    return {
      url: agent.url,
      token,
      stateDir,
      pid: process.pid,
      close: async () => {
        try { await agent.close() } finally { await cleanup() }
      }
    }
  }
  const port = await freePort()
  const child: ChildProcess = spawn(process.execPath, nodeArgs('src/agent/main.ts'), {
    cwd: PACKAGE_ROOT,
    env: agentEnv(root, token, port),
    stdio: ['ignore', 'ignore', 'pipe']
  })
  let stderr = ''
  child.stderr?.on('data', (chunk: Buffer) => { stderr = (stderr + chunk.toString()).slice(-4000) })
  const url = `http://127.0.0.1:${port}`
  const deadline = Date.now() + 60_000
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`the agent exited: ${stderr.trim()}`)
    try {
      const res = await fetch(`${url}/v1/capabilities`, { headers: { authorization: `Bearer ${token}` }, signal: AbortSignal.timeout(1000) })
      await res.arrayBuffer()
      if (res.status === 200) break
    } catch {}
    if (Date.now() > deadline) {
      await stopChild(child)
      await cleanup()
      throw new Error(`the agent did not answer within 60 s: ${stderr.trim()}`)
    }
    await new Promise(resolve => setTimeout(resolve, 50))
  }
  return {
    url,
    token,
    stateDir,
    pid: child.pid as number,
    close: async () => {
      // the agent process leaves mounts and rcd running on purpose (a restart adopts them)
      try { await stopChild(child) } finally { await cleanup() }
    }
  }
}
