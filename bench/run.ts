import { realpathSync } from 'node:fs'
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { ensureSandboxUser } from '../test/helpers/sandbox-user.ts'
import { benchAgentMemory } from './agent-memory.ts'
import { benchApi, type ApiOptions, type ApiResults } from './api.ts'
import { benchMemory, type MemoryOptions, type MemoryResults } from './memory.ts'
import { benchMountLatency, type BackendLatency, type MountLatencyOptions } from './mount-latency.ts'
import { benchRegistry, type RegistryOptions, type RegistryResults } from './registry.ts'
import { renderMachine, renderTable, tableRows, type Row } from './report.ts'
import { killRclonesMentioning, startBenchAgent } from './lib/agent.ts'
import { startControlPlane } from './lib/control-plane.ts'
import { describeMachine, type Machine } from './lib/machine.ts'
import { RESULTS_FILE } from './lib/paths.ts'
import { killBareDaemons, unmountUnder } from './lib/rclone.ts'
import { round } from './lib/stats.ts'

// `npm run bench`: every item of docs/performance.md in one bounded run on loopback, each
// control-plane number measured side by side with its baseline. BENCH_QUICK=1 runs the same
// code paths in a tiny mode (the smoke test); BENCH_ONLY=latency,memory,api,registry picks items.

export const ITEMS = ['latency', 'memory', 'api', 'registry'] as const
export type Item = typeof ITEMS[number]

export interface BenchOptions {
  quick: boolean
  only?: readonly Item[]
  /** Superuser URL of a running PostgreSQL (the test run's cluster); otherwise one is started. */
  postgresAdminUrl?: string
}

export interface BenchResults {
  startedAt: string
  durationSec: number
  quick: boolean
  machine: Machine
  load: { start: number[], end: number[] }
  settings: { latency: MountLatencyOptions, memory: MemoryOptions, api: ApiOptions, registry: RegistryOptions }
  latency?: BackendLatency[]
  memory?: MemoryResults
  /** bench/agent-memory.ts: rcd through the agent's own API (WebDAV) vs separate mounts. */
  agentMemory?: Awaited<ReturnType<typeof benchAgentMemory>>
  api?: ApiResults
  registry?: RegistryResults
  rows: Row[]
  table: string
}

export function settingsFor (quick: boolean): BenchResults['settings'] {
  return quick
    ? {
        latency: { runs: 1, rwRuns: 1, warmup: false },
        memory: { counts: [1, 2], settleMs: 200 },
        api: { rounds: 1, durationSec: 1, connections: 4, cycleConcurrency: [1, 2], cycleDurationSec: 0.5 },
        registry: { sandboxes: 10, mountsPerSandbox: 10, lists: 20, startupRuns: 1 }
      }
    : {
        latency: { runs: 7, rwRuns: 5, warmup: true },
        memory: { counts: [1, 10, 20], settleMs: 1000 },
        api: { rounds: 3, durationSec: 5, connections: 10, cycleConcurrency: [1, 2, 4, 8, 16, 32], cycleDurationSec: 3 },
        registry: { sandboxes: 10_000, mountsPerSandbox: 10, lists: 2000, startupRuns: 5 }
      }
}

/** Removes every process and mount a run may have left under `root`, then the directory. */
async function sweep (root: string): Promise<void> {
  await killBareDaemons(root)
  await killRclonesMentioning(root)
  await unmountUnder(root)
  await rm(root, { recursive: true, force: true })
}

export async function runBench (opts: BenchOptions, log: (line: string) => void = () => {}): Promise<BenchResults> {
  const started = Date.now()
  const settings = settingsFor(opts.quick)
  const want = (item: Item): boolean => opts.only === undefined || opts.only.includes(item)
  const machine = await describeMachine()
  const loadStart = os.loadavg().map(x => round(x))
  const out: Partial<BenchResults> = {}

  const root = await mkdtemp(path.join(os.tmpdir(), 'sandbox-mounts-bench-'))
  // the sandbox user must walk to mount points below it
  await chmod(root, 0o755)
  const onSignal = (): void => { sweep(root).catch(() => {}).finally(() => process.exit(130)) }
  process.once('SIGINT', onSignal)
  process.once('SIGTERM', onSignal)
  try {
    if (want('latency') || want('memory')) {
      await ensureSandboxUser()
      const cp = await startControlPlane()
      try {
        if (want('latency')) {
          const agent = await startBenchAgent(path.join(root, 'agent'))
          try {
            await cp.registerSandbox('lat', agent.url, agent.token)
            out.latency = await benchMountLatency({ cp, sandboxId: 'lat', root, log }, settings.latency)
          } finally {
            await agent.close()
          }
        }
        if (want('memory')) {
          out.memory = await benchMemory({ cp, root, log }, settings.memory)
          out.agentMemory = await benchAgentMemory({ counts: [...settings.memory.counts], settleMs: settings.memory.settleMs })
          log(`memory (agent-memory.ts, webdav): rcd ${out.agentMemory.points.map(p => `${p.mounts}: ${p.rcdMB} MB`).join(', ')}`)
        }
      } finally {
        await cp.close()
      }
    }
    if (want('api')) out.api = await benchApi(settings.api, log)
    if (want('registry')) out.registry = await benchRegistry(settings.registry, log, opts.postgresAdminUrl)
  } finally {
    process.removeListener('SIGINT', onSignal)
    process.removeListener('SIGTERM', onSignal)
    await sweep(root)
  }
  const rows = tableRows(out)
  return {
    startedAt: new Date(started).toISOString(),
    durationSec: round((Date.now() - started) / 1000, 1),
    quick: opts.quick,
    machine,
    load: { start: loadStart, end: os.loadavg().map(x => round(x)) },
    settings,
    ...out,
    rows,
    table: renderTable(rows)
  }
}

function parseOnly (text: string | undefined): Item[] | undefined {
  if (text === undefined || text === '') return undefined
  const items = text.split(',').map(s => s.trim())
  for (const i of items) if (!(ITEMS as readonly string[]).includes(i)) throw new Error(`BENCH_ONLY: unknown item ${i} (known: ${ITEMS.join(', ')})`)
  return items as Item[]
}

async function main (): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('the bench mounts FUSE file systems and creates users: run it as root')
  const results = await runBench({ quick: process.env.BENCH_QUICK === '1', only: parseOnly(process.env.BENCH_ONLY) }, line => { process.stderr.write(`bench: ${line}\n`) })
  const file = process.env.BENCH_RESULTS ?? RESULTS_FILE
  await writeFile(file, JSON.stringify(results, null, 2) + '\n')
  process.stdout.write(`\n${renderMachine(results.machine, results.load)}\n\n${results.table}\n\nResults: ${file} (${results.durationSec} s)\n`)
}

function executedDirectly (): boolean {
  try {
    return process.argv[1] !== undefined && realpathSync(process.argv[1]) === realpathSync(fileURLToPath(import.meta.url))
  } catch {
    return false
  }
}

if (executedDirectly()) {
  main().catch(err => {
    process.stderr.write(`bench failed: ${(err as Error).stack ?? String(err)}\n`)
    process.exit(1)
  })
}
