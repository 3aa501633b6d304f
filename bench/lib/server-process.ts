import { spawn, type ChildProcess } from 'node:child_process'
import { nodeArgs, PACKAGE_ROOT } from './paths.ts'
import { nowMs } from './stats.ts'
import { freePort } from '../../src/lib/free-port.ts'

export { freePort }

// The control plane as operators run it (`node dist/src/server.js`) in a child process, with
// the time from spawn to the first 200 from /readyz.

export interface ServerProcess {
  pid: number
  url: string
  /** Milliseconds from spawn() to /readyz answering 200. */
  readyMs: number
  stop: () => Promise<void>
}

export async function stopChild (child: ChildProcess, timeoutMs = 10_000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return
  const exited = new Promise<void>(resolve => child.once('exit', () => { resolve() }))
  child.kill('SIGTERM')
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs)
  await exited
  clearTimeout(timer)
}

async function ready (url: string): Promise<boolean> {
  try {
    const res = await fetch(`${url}/readyz`, { signal: AbortSignal.timeout(1000) })
    await res.arrayBuffer()
    return res.status === 200
  } catch {
    return false
  }
}

/** Starts src/server.ts with exactly `env` (plus PATH, PORT, HOST) and waits for /readyz. */
export async function startServer (env: Record<string, string>, timeoutMs = 60_000): Promise<ServerProcess> {
  const port = await freePort()
  const url = `http://127.0.0.1:${port}`
  const started = nowMs()
  const child = spawn(process.execPath, nodeArgs('src/server.ts'), {
    cwd: PACKAGE_ROOT,
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...env, PORT: String(port), HOST: '127.0.0.1' },
    stdio: ['ignore', 'ignore', 'pipe']
  })
  let stderr = ''
  child.stderr?.on('data', (chunk: Buffer) => { stderr = (stderr + chunk.toString()).slice(-4000) })
  const stop = async (): Promise<void> => { await stopChild(child) }
  while (!(await ready(url))) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`the server exited before it was ready: ${stderr.trim()}`)
    if (nowMs() - started > timeoutMs) {
      await stop()
      throw new Error(`the server was not ready within ${timeoutMs} ms: ${stderr.trim()}`)
    }
    await new Promise(resolve => setTimeout(resolve, 5))
  }
  const readyMs = nowMs() - started
  if (child.pid === undefined) throw new Error('the server has no pid')
  return { pid: child.pid, url, readyMs, stop }
}
