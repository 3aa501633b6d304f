import { spawn, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { chmod, mkdir, open, readFile, rm, stat, writeFile } from 'node:fs/promises'
import path from 'node:path'
import type { FastifyBaseLogger } from 'fastify'
import { writePrivateFile } from './private-file.ts'
import { RcClient } from './rc.ts'
import { freePort } from '../lib/free-port.ts'

// Supervises the one `rclone rcd` that hosts all of the sandbox's mounts. Its rc credentials
// live in its environment (root only) and in a 0600 state file, never on its command line.
// The daemon outlives the agent on purpose: a restarted agent adopts it and its mounts.

export interface RcdState {
  pid: number
  port: number
  user: string
  pass: string
  startedAt: string
}

export interface RcdOptions {
  rclone: string
  stateDir: string
  configDir: string
  /** PATH for rclone, the only variable it inherits from the agent. */
  path: string
  log: FastifyBaseLogger
}

/** true while the process exists and is not a zombie. */
export async function processAlive (pid: number): Promise<boolean> {
  try {
    process.kill(pid, 0)
  } catch {
    return false
  }
  try {
    const statLine = await readFile(`/proc/${pid}/stat`, 'utf8')
    return statLine.slice(statLine.lastIndexOf(')') + 2, statLine.lastIndexOf(')') + 3) !== 'Z'
  } catch {
    return false
  }
}

async function commandLine (pid: number): Promise<string[]> {
  try {
    return (await readFile(`/proc/${pid}/cmdline`, 'utf8')).split('\0')
  } catch {
    return []
  }
}

export class RcdSupervisor {
  readonly #opts: RcdOptions
  #state: RcdState | undefined
  #child: ChildProcess | undefined
  #client: RcClient | undefined
  #starting: Promise<RcClient> | undefined

  constructor (opts: RcdOptions) {
    this.#opts = opts
  }

  get cacheDir (): string { return path.join(this.#opts.stateDir, 'cache') }
  get logFile (): string { return path.join(this.#opts.stateDir, 'rcd.log') }
  get #stateFile (): string { return path.join(this.#opts.stateDir, 'rcd.json') }
  get #home (): string { return path.join(this.#opts.stateDir, 'home') }
  get #configFile (): string { return path.join(this.#opts.configDir, 'rcd.conf') }
  get pid (): number | undefined { return this.#state?.pid }

  /** The running daemon's client, adopting or starting one when needed. */
  async ensure (): Promise<RcClient> {
    if (this.#starting !== undefined) return await this.#starting
    const current = await this.current()
    if (current !== undefined) return current
    this.#starting = this.#adoptOrStart().finally(() => { this.#starting = undefined })
    return await this.#starting
  }

  /** The client of a daemon that is alive and answering, without starting one. */
  async current (): Promise<RcClient | undefined> {
    if (this.#state === undefined || this.#client === undefined) return undefined
    if (await this.#answers(this.#state, this.#client)) return this.#client
    this.#opts.log.warn({ rcdPid: this.#state.pid }, 'rclone daemon is gone or not answering')
    await this.#kill(this.#state.pid)
    this.#state = undefined
    this.#client = undefined
    return undefined
  }

  /** Bytes in rcd's log so far; read the part after it with logSince(). */
  async logOffset (): Promise<number> {
    try {
      return (await stat(this.logFile)).size
    } catch {
      return 0
    }
  }

  async logSince (offset: number, max = 8192): Promise<string> {
    try {
      const handle = await open(this.logFile, 'r')
      try {
        const size = (await handle.stat()).size
        const from = Math.max(offset, size - max)
        if (size <= from) return ''
        const buf = Buffer.alloc(size - from)
        await handle.read(buf, 0, buf.length, from)
        return buf.toString('utf8')
      } finally {
        await handle.close()
      }
    } catch {
      return ''
    }
  }

  /** Stops the daemon (and with it every mount it hosts). */
  async stop (): Promise<void> {
    const state = this.#state
    this.#state = undefined
    this.#client = undefined
    if (state !== undefined) await this.#kill(state.pid, 'SIGTERM')
    await rm(this.#stateFile, { force: true })
  }

  async #answers (state: RcdState, client: RcClient): Promise<boolean> {
    if (this.#child !== undefined && this.#child.pid === state.pid && this.#child.exitCode === null && this.#child.signalCode === null) {
      // our own child: exit events are reliable, one cheap rc call proves it is not hung
    } else if (!(await processAlive(state.pid))) {
      return false
    }
    try {
      await client.call('rc/noop', {}, { timeoutMs: 5000 })
      return true
    } catch {
      return false
    }
  }

  async #kill (pid: number, signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    if (!(await processAlive(pid))) return
    const argv = await commandLine(pid)
    // never signal a process that reused the pid
    if (!argv.includes('rcd')) return
    try {
      process.kill(pid, signal)
    } catch {
      return
    }
    const deadline = Date.now() + 10_000
    while (Date.now() < deadline && await processAlive(pid)) await new Promise(resolve => setTimeout(resolve, 50))
    if (await processAlive(pid)) {
      try { process.kill(pid, 'SIGKILL') } catch {}
    }
  }

  async #adoptOrStart (): Promise<RcClient> {
    const saved = await this.#readState()
    if (saved !== undefined) {
      const client = this.#makeClient(saved)
      const argv = await commandLine(saved.pid)
      if (argv.includes('rcd') && await this.#answers(saved, client)) {
        this.#state = saved
        this.#client = client
        this.#opts.log.info({ rcdPid: saved.pid }, 'adopted the running rclone daemon')
        return client
      }
      if (argv.includes('rcd') && argv.includes(this.cacheDir)) await this.#kill(saved.pid)
    }
    return await this.#start()
  }

  async #readState (): Promise<RcdState | undefined> {
    try {
      const parsed = JSON.parse(await readFile(this.#stateFile, 'utf8')) as Partial<RcdState>
      if (typeof parsed.pid === 'number' && typeof parsed.port === 'number' && typeof parsed.user === 'string' && typeof parsed.pass === 'string') {
        return { pid: parsed.pid, port: parsed.port, user: parsed.user, pass: parsed.pass, startedAt: String(parsed.startedAt) }
      }
    } catch {}
    return undefined
  }

  #makeClient (state: RcdState): RcClient {
    return new RcClient({ url: `http://127.0.0.1:${state.port}`, user: state.user, pass: state.pass })
  }

  async #prepareDirs (): Promise<void> {
    for (const dir of [this.#opts.stateDir, this.#home, this.cacheDir, this.#opts.configDir]) {
      await mkdir(dir, { recursive: true, mode: 0o700 })
      await chmod(dir, 0o700)
    }
    // rcd needs a config file; mounts never read it (their backends come inline)
    await writeFile(this.#configFile, '', { mode: 0o600, flag: 'a' })
  }

  async #start (): Promise<RcClient> {
    await this.#prepareDirs()
    let lastError = 'no attempt'
    for (let attempt = 0; attempt < 3; attempt++) {
      const port = await freePort()
      const state: RcdState = {
        pid: 0,
        port,
        user: 'agent',
        pass: randomBytes(24).toString('base64url'),
        startedAt: new Date().toISOString()
      }
      const offset = await this.logOffset()
      const child = spawn(this.#opts.rclone, [
        'rcd', '--rc-addr', `127.0.0.1:${port}`, '--config', this.#configFile,
        '--cache-dir', this.cacheDir, '--log-file', this.logFile
      ], {
        cwd: this.#home,
        detached: true,
        stdio: 'ignore',
        env: { PATH: this.#opts.path, HOME: this.#home, RCLONE_RC_USER: state.user, RCLONE_RC_PASS: state.pass }
      })
      const spawnError = new Promise<Error>(resolve => child.once('error', resolve))
      child.unref()
      if (child.pid === undefined) {
        lastError = (await spawnError).message
        continue
      }
      state.pid = child.pid
      this.#child = child
      await writePrivateFile(this.#stateFile, JSON.stringify(state))
      const client = this.#makeClient(state)
      const deadline = Date.now() + 15_000
      while (Date.now() < deadline && child.exitCode === null && child.signalCode === null) {
        try {
          await client.call('rc/noop', {}, { timeoutMs: 2000 })
          this.#state = state
          this.#client = client
          this.#opts.log.info({ rcdPid: state.pid, port }, 'started the rclone daemon')
          return client
        } catch {
          await new Promise(resolve => setTimeout(resolve, 50))
        }
      }
      lastError = (await this.logSince(offset, 1000)).trim().split('\n').pop() ?? 'rclone rcd did not start'
      await this.#kill(state.pid)
    }
    await rm(this.#stateFile, { force: true })
    throw new Error(`the rclone daemon did not start: ${lastError}`)
  }
}
