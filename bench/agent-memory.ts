import { spawn, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import { loadAgentConfig } from '../src/agent/config.ts'
import { fusermountUnmount } from '../src/agent/fusermount.ts'
import { mountAt, readMountinfo } from '../src/agent/mountinfo.ts'
import { startAgent } from '../src/agent/start.ts'
import { obscure } from '../src/rclone/obscure.ts'
import { ensureSandboxUser } from '../test/helpers/sandbox-user.ts'
import { startWebdavServer } from '../test/helpers/servers.ts'

// Resident memory of the agent's process model: one `rclone rcd` hosting 1, 10 and 20 mounts
// (through the real agent) against as many separate `rclone mount` processes, same WebDAV
// server on loopback, read-only mounts, each listed once. Run as root:
//   npx tsx bench/agent-memory.ts        (prints JSON and a Markdown table)

const DEFAULT_COUNTS = [1, 10, 20]

async function rssMB (pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8')
  const kb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0)
  return Math.round(kb / 102.4) / 10
}

async function waitMounted (path: string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (mountAt(await readMountinfo(), path)?.fsType !== 'fuse.rclone') {
    if (Date.now() > deadline) throw new Error(`${path} did not mount`)
    await new Promise(resolve => setTimeout(resolve, 20))
  }
}

export interface AgentMemoryResult {
  mounts: number
  rcdMB: number
  separateMB: number
  applyMsMedian: number
}

/** `npm run bench` passes smaller counts and a shorter settle time in its quick mode. */
export async function benchAgentMemory (opts: { counts?: number[], settleMs?: number } = {}): Promise<{ idleRcdMB: number, points: AgentMemoryResult[] }> {
  const COUNTS = opts.counts ?? DEFAULT_COUNTS
  const MAX = Math.max(...COUNTS)
  const settle = async (): Promise<void> => { await new Promise(resolve => setTimeout(resolve, opts.settleMs ?? 1500)) }
  await ensureSandboxUser()
  const base = await mkdtemp(join(tmpdir(), 'agent-memory-'))
  await chmod(base, 0o755)
  const dav = await startWebdavServer()
  const separate: ChildProcess[] = []
  let agent: Awaited<ReturnType<typeof startAgent>> | undefined
  try {
    for (let i = 0; i < MAX; i++) {
      await mkdir(join(dav.dir, `d${i}`))
      await writeFile(join(dav.dir, `d${i}`, 'f.txt'), 'x')
    }
    const token = randomBytes(24).toString('base64url')
    const config = loadAgentConfig({
      AGENT_TOKEN: token, AGENT_PORT: '0', AGENT_CONFIG_DIR: join(base, 'run'), AGENT_STATE_DIR: join(base, 'state'), PATH: process.env.PATH
    })
    agent = await startAgent(config, { logStream: new Writable({ write (_c, _e, cb) { cb() } }), unmountOnClose: true, stopDaemonOnClose: true })
    const rcdPid = (JSON.parse(await readFile(join(config.stateDir, 'rcd.json'), 'utf8')) as { pid: number }).pid
    await settle()
    const idleRcdMB = await rssMB(rcdPid)

    const ob = obscure(dav.pass)
    const section = `[dav]\ntype = webdav\nurl = ${dav.url}\nvendor = other\nuser = ${dav.user}\npass = ${ob}\n`
    const rcd: Record<number, { mb: number, ms: number }> = {}
    const applyMs: number[] = []
    for (let i = 0; i < MAX; i++) {
      const path = join(base, 'agent', `m${i}`)
      const started = performance.now()
      const res = await fetch(`${agent.url}/v1/mounts/m${i}`, {
        method: 'PUT',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: JSON.stringify({ path, config: section, section: 'dav', root: `d${i}`, readWrite: false, mountOptions: [], redact: [dav.pass, ob] })
      })
      if (res.status !== 201) throw new Error(`apply m${i}: ${res.status} ${await res.text()}`)
      applyMs.push(performance.now() - started)
      await readFile(join(path, 'f.txt'))
      if (COUNTS.includes(i + 1)) {
        await settle()
        const sorted = [...applyMs].sort((a, b) => a - b)
        rcd[i + 1] = { mb: await rssMB(rcdPid), ms: Math.round(sorted[Math.floor(sorted.length / 2)]) }
      }
    }

    const confDir = join(base, 'separate')
    await mkdir(confDir, { mode: 0o700 })
    const confFile = join(confDir, 'rclone.conf')
    await writeFile(confFile, section, { mode: 0o600 })
    const sep: Record<number, number> = {}
    for (let i = 0; i < MAX; i++) {
      const path = join(base, 'separate', `m${i}`)
      await mkdir(path)
      const child = spawn('rclone', ['mount', `dav:d${i}`, path, '--config', confFile, '--read-only', '--allow-other',
        '--cache-dir', join(confDir, `cache${i}`)], { env: { PATH: '/usr/bin:/bin', HOME: confDir }, stdio: 'ignore' })
      separate.push(child)
      await waitMounted(path)
      await readFile(join(path, 'f.txt'))
      if (COUNTS.includes(i + 1)) {
        await settle()
        let total = 0
        for (const c of separate) total += await rssMB(c.pid as number)
        sep[i + 1] = Math.round(total * 10) / 10
      }
    }
    return { idleRcdMB, points: COUNTS.map(n => ({ mounts: n, rcdMB: rcd[n].mb, separateMB: sep[n], applyMsMedian: rcd[n].ms })) }
  } finally {
    for (const c of separate) c.kill('SIGTERM')
    await new Promise(resolve => setTimeout(resolve, 1000))
    if (agent !== undefined) await agent.close()
    for (const e of (await readMountinfo()).reverse()) {
      if (e.mountPoint.startsWith(base + '/')) await fusermountUnmount('fusermount3', e.mountPoint, { lazy: true })
    }
    for (const c of separate) c.kill('SIGKILL')
    await dav.stop()
    await rm(base, { recursive: true, force: true })
  }
}

if (process.argv[1] !== undefined && import.meta.url.endsWith(process.argv[1].split('/').pop() ?? '\0')) {
  const result = await benchAgentMemory()
  console.log(JSON.stringify(result, null, 2))
  console.log('\n| mounts | one rclone rcd (MB RSS) | separate `rclone mount` processes (MB RSS, sum) | median apply through the agent (ms) |')
  console.log('|---:|---:|---:|---:|')
  for (const p of result.points) console.log(`| ${p.mounts} | ${p.rcdMB} | ${p.separateMB} | ${p.applyMsMedian} |`)
  console.log(`\nidle rcd: ${result.idleRcdMB} MB`)
}
