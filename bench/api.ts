import { spawn } from 'node:child_process'
import { createRequire } from 'node:module'
import { createInterface } from 'node:readline'
import { startAgentDouble } from '../test/helpers/agent-double.ts'
import { benchSecrets } from './lib/control-plane.ts'
import { nodeArgs, PACKAGE_ROOT } from './lib/paths.ts'
import { stopChild } from './lib/server-process.ts'
import { median, nowMs, percentile, ratio, round } from './lib/stats.ts'

// Item 3. Read path: autocannon on GET /sandboxes/:id/mounts (20 mounts) of the real control
// plane against a bare Fastify route answering the same JSON (and, to explain the gap, the bare
// route plus the same registry read), all served by one child process (bench/api-server.ts)
// and measured in rotating rounds. Write path: closed-loop add-then-
// remove cycles at rising concurrency with an agent double that answers at once (it runs in
// this process, beside the load generator), up to the rate where the control plane saturates.

export interface ApiOptions {
  rounds: number
  durationSec: number
  connections: number
  cycleConcurrency: readonly number[]
  cycleDurationSec: number
}

export interface CycleLevel {
  concurrency: number
  cycles: number
  cyclesPerSec: number
  /** Whole add-then-remove cycle, milliseconds. */
  p50Ms: number
  p99Ms: number
  addP50Ms: number
  addP99Ms: number
  removeP50Ms: number
  removeP99Ms: number
  errors: number
}

export interface ApiResults {
  list: {
    mounts: number
    bodyBytes: number
    connections: number
    durationSec: number
    rounds: number
    realRps: number
    bareRps: number
    ratio: number | null
    /** The bare route plus the real route's registry read and response schema. */
    storeRps: number
    storeRatio: number | null
    realP99Ms: number
    bareP99Ms: number
    samples: { realRps: number[], bareRps: number[], storeRps: number[] }
    non2xx: number
  }
  cycles: {
    levels: CycleLevel[]
    /** Highest cycles/s seen at any concurrency. */
    saturationCyclesPerSec: number
    /** Lowest concurrency reaching 90% of that. */
    saturatesAtConcurrency: number
  }
}

interface AutocannonResult {
  requests: { average: number }
  latency: { p50: number, p99: number }
  non2xx: number
  errors: number
}
type Autocannon = (opts: Record<string, unknown>) => Promise<AutocannonResult>
const autocannon = createRequire(import.meta.url)('autocannon') as Autocannon

const MOUNTS = 20

async function cannon (url: string, headers: Record<string, string>, opts: ApiOptions): Promise<AutocannonResult> {
  return await autocannon({ url: `${url}/sandboxes/api/mounts`, headers, connections: opts.connections, duration: opts.durationSec, pipelining: 1 })
}

async function runCycles (url: string, headers: Record<string, string>, concurrency: number, durationSec: number, sandboxes: number): Promise<CycleLevel> {
  const cycle: number[] = []
  const add: number[] = []
  const remove: number[] = []
  let errors = 0
  let seq = 0
  const json = { ...headers, 'content-type': 'application/json' }
  const creds = { provider: 'Other', access_key_id: 'AKIABENCH000000002', secret_access_key: 'bench-secret-not-real-0002', endpoint: 'https://s3.example.internal', force_path_style: true }
  const started = nowMs()
  const until = started + durationSec * 1000
  await Promise.all(Array.from({ length: concurrency }, async (_, w) => {
    const sandbox = `cycle-${w % sandboxes}`
    while (nowMs() < until) {
      const n = seq++
      const t0 = nowMs()
      try {
        const res = await fetch(`${url}/sandboxes/${sandbox}/mounts`, { method: 'POST', headers: json, body: JSON.stringify({ path: `/mnt/c-${n}`, remote: 's3:bucket/x', backend: 's3', creds }) })
        const mount = await res.json() as { id?: string }
        if (res.status !== 201 || mount.id === undefined) { errors++; continue }
        const t1 = nowMs()
        const del = await fetch(`${url}/sandboxes/${sandbox}/mounts/${mount.id}`, { method: 'DELETE', headers })
        await del.arrayBuffer()
        const t2 = nowMs()
        if (del.status !== 204) { errors++; continue }
        add.push(t1 - t0)
        remove.push(t2 - t1)
        cycle.push(t2 - t0)
      } catch {
        errors++
      }
    }
  }))
  const elapsed = (nowMs() - started) / 1000
  return {
    concurrency,
    cycles: cycle.length,
    cyclesPerSec: round(cycle.length / elapsed, 1),
    p50Ms: round(percentile(cycle, 50)),
    p99Ms: round(percentile(cycle, 99)),
    addP50Ms: round(percentile(add, 50)),
    addP99Ms: round(percentile(add, 99)),
    removeP50Ms: round(percentile(remove, 50)),
    removeP99Ms: round(percentile(remove, 99)),
    errors
  }
}

export async function benchApi (opts: ApiOptions, log: (line: string) => void): Promise<ApiResults> {
  const agent = await startAgentDouble()
  const secrets = benchSecrets()
  const cycleSandboxes = Math.max(...opts.cycleConcurrency)
  const child = spawn(process.execPath, nodeArgs('bench/api-server.ts'), {
    cwd: PACKAGE_ROOT,
    env: {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      BENCH_AGENT_URL: agent.url,
      BENCH_AGENT_TOKEN: agent.token,
      BENCH_API_KEY: secrets.apiKey,
      BENCH_INTERNAL_TOKEN: secrets.internalToken,
      BENCH_ENCRYPTION_KEY: secrets.encryptionKey,
      BENCH_API_MOUNTS: String(MOUNTS),
      BENCH_API_CYCLE_SANDBOXES: String(cycleSandboxes)
    },
    stdio: ['pipe', 'pipe', 'pipe']
  })
  let stderr = ''
  child.stderr?.on('data', (chunk: Buffer) => { stderr = (stderr + chunk.toString()).slice(-4000) })
  try {
    const first = await new Promise<string>((resolve, reject) => {
      const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream })
      lines.once('line', resolve)
      child.once('exit', code => { reject(new Error(`api-server exited (${code ?? 'signal'}): ${stderr.trim()}`)) })
    })
    const info = JSON.parse(first) as { realUrl: string, bareUrl: string, storeUrl: string, listBytes: number }
    const headers = { authorization: `Bearer ${secrets.apiKey}` }

    // warm both up (JIT, connection pools) before anything is recorded
    await cannon(info.realUrl, headers, { ...opts, durationSec: Math.min(1, opts.durationSec) })
    await cannon(info.bareUrl, headers, { ...opts, durationSec: Math.min(1, opts.durationSec) })
    await cannon(info.storeUrl, headers, { ...opts, durationSec: Math.min(1, opts.durationSec) })
    const targets = { real: info.realUrl, bare: info.bareUrl, store: info.storeUrl }
    const rps: Record<keyof typeof targets, number[]> = { real: [], bare: [], store: [] }
    const p99: Record<keyof typeof targets, number[]> = { real: [], bare: [], store: [] }
    const order: Array<keyof typeof targets> = ['real', 'bare', 'store']
    let non2xx = 0
    for (let r = 0; r < opts.rounds; r++) {
      // rotate the order each round so drift falls on every target
      for (let k = 0; k < order.length; k++) {
        const which = order[(k + r) % order.length]
        const res = await cannon(targets[which], headers, opts)
        non2xx += res.non2xx + res.errors
        rps[which].push(round(res.requests.average, 0))
        p99[which].push(res.latency.p99)
      }
    }
    const realRps = rps.real
    const bareRps = rps.bare
    log(`api list: real ${median(realRps)} req/s, bare ${median(bareRps)} req/s, bare + registry read ${median(rps.store)} req/s`)

    const levels: CycleLevel[] = []
    for (const c of opts.cycleConcurrency) {
      const level = await runCycles(info.realUrl, headers, c, opts.cycleDurationSec, cycleSandboxes)
      levels.push(level)
      log(`api cycles: concurrency ${c}: ${level.cyclesPerSec} cycles/s, p50 ${level.p50Ms} ms, p99 ${level.p99Ms} ms`)
    }
    const best = Math.max(...levels.map(l => l.cyclesPerSec))
    return {
      list: {
        mounts: MOUNTS,
        bodyBytes: info.listBytes,
        connections: opts.connections,
        durationSec: opts.durationSec,
        rounds: opts.rounds,
        realRps: median(realRps),
        bareRps: median(bareRps),
        ratio: ratio(median(realRps), median(bareRps)),
        storeRps: median(rps.store),
        storeRatio: ratio(median(rps.store), median(bareRps)),
        realP99Ms: median(p99.real),
        bareP99Ms: median(p99.bare),
        samples: { realRps, bareRps, storeRps: rps.store },
        non2xx
      },
      cycles: {
        levels,
        saturationCyclesPerSec: best,
        saturatesAtConcurrency: levels.find(l => l.cyclesPerSec >= 0.9 * best)?.concurrency ?? 0
      }
    }
  } finally {
    await stopChild(child)
    await agent.close()
  }
}
