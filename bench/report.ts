import type { Machine } from './lib/machine.ts'
import type { BackendLatency } from './mount-latency.ts'
import type { MemoryResults } from './memory.ts'
import type { ApiResults } from './api.ts'
import type { RegistryResults, StoreScale } from './registry.ts'

// Turns results into the markdown table printed by `npm run bench` and kept in
// docs/performance.md. Every row puts the control plane next to what it is compared with.

export interface Row {
  item: string
  measure: string
  value: string
  baseline: string
  ratio: string
  target: string
  met: string
}

export interface AgentMemoryInput {
  idleRcdMB: number
  points: Array<{ mounts: number, rcdMB: number, separateMB: number, applyMsMedian: number }>
}

export interface TableInput {
  latency?: BackendLatency[]
  memory?: MemoryResults
  agentMemory?: AgentMemoryInput
  api?: ApiResults
  registry?: RegistryResults
}

const ms = (x: number): string => Number.isFinite(x) ? `${x.toFixed(x < 10 ? 2 : 0)} ms` : 'n/a'
const MB = (x: number): string => Number.isFinite(x) ? `${x.toFixed(1)} MB` : 'n/a'
const r = (x: number | null): string => x === null ? 'n/a' : x.toFixed(2)
const verdict = (ok: boolean | null): string => ok === null ? 'n/a' : ok ? 'yes' : '**no**'

function latencyRows (rows: Row[], latency: BackendLatency[]): void {
  for (const b of latency) {
    rows.push({ item: '1 mount', measure: `${b.backend}: POST until \`mounted\` vs bare \`rclone mount --daemon\` until first listing (median of ${b.runs})`, value: ms(b.controlPlaneMs), baseline: ms(b.bareMs), ratio: r(b.ratio), target: '<= 1.15', met: verdict(b.ratio === null ? null : b.ratio <= 1.15) })
  }
  for (const b of latency) {
    rows.push({ item: '2 remove', measure: `${b.backend}: DELETE read-only vs \`fusermount3 -u\` until the daemon exits`, value: ms(b.removeReadOnlyMs), baseline: ms(b.bareUnmountMs), ratio: r(b.bareUnmountMs > 0 ? b.removeReadOnlyMs / b.bareUnmountMs : null), target: '-', met: '-' })
    rows.push({ item: '2 remove', measure: `${b.backend}: DELETE read-write right after writing 1 KB (includes the upload); lost writes: ${b.lostWrites}/${b.samples.removeReadWriteMs.length}`, value: ms(b.removeReadWriteMs), baseline: '-', ratio: '-', target: 'no lost writes', met: verdict(b.lostWrites === 0) })
  }
}

function apiRows (rows: Row[], api: ApiResults): void {
  const l = api.list
  rows.push({ item: '3 API', measure: `GET /sandboxes/:id/mounts (${l.mounts} mounts, ${l.connections} connections) vs bare Fastify route, same JSON, same process (req/s, median of ${l.rounds})`, value: `${l.realRps} req/s`, baseline: `${l.bareRps} req/s`, ratio: r(l.ratio), target: '>= 0.8', met: verdict(l.ratio === null ? null : l.ratio >= 0.8) })
  rows.push({ item: '3 API', measure: 'the bare route plus the real route\'s registry read (sandbox + 20 rows + API view + response schema) vs the bare route', value: `${l.storeRps} req/s`, baseline: `${l.bareRps} req/s`, ratio: r(l.storeRatio), target: '-', met: '-' })
  rows.push({ item: '3 API', measure: 'GET list p99 latency, real vs bare', value: ms(l.realP99Ms), baseline: ms(l.bareP99Ms), ratio: r(l.bareP99Ms > 0 ? l.realP99Ms / l.bareP99Ms : null), target: '-', met: '-' })
  for (const c of api.cycles.levels) {
    rows.push({ item: '3 API', measure: `add-then-remove cycle, agent double, concurrency ${c.concurrency}: p50 / p99 (${c.cyclesPerSec} cycles/s)`, value: `${ms(c.p50Ms)} / ${ms(c.p99Ms)}`, baseline: '-', ratio: '-', target: '-', met: '-' })
  }
  rows.push({ item: '3 API', measure: `saturation: most add-then-remove cycles/s at any concurrency (reached at ${api.cycles.saturatesAtConcurrency})`, value: `${api.cycles.saturationCyclesPerSec} cycles/s`, baseline: '-', ratio: '-', target: '-', met: '-' })
}

function storeRows (rows: Row[], s: StoreScale | { skipped: string }, name: string): void {
  if ('skipped' in s) {
    rows.push({ item: '4 registry', measure: `${name}: skipped (${s.skipped})`, value: '-', baseline: '-', ratio: '-', target: '< 5 ms', met: 'n/a' })
    return
  }
  const n = s.mounts.toLocaleString('en-US')
  rows.push({ item: '4 registry', measure: `${name}, ${n} mounts / ${s.sandboxes.toLocaleString('en-US')} sandboxes: p99 of GET one sandbox's mounts over HTTP, one at a time (baseline: the store call alone; the server's own histogram has ${s.serverWithin5ms === null ? 'n/a' : `${(s.serverWithin5ms * 100).toFixed(2)} %`} of them within 5 ms; p99 event-loop delay of the waiting client meanwhile, i.e. the machine's own stalls: ${ms(s.clientLoopDelayP99Ms)})`, value: ms(s.httpListMs.p99), baseline: ms(s.storeListMs.p99), ratio: '-', target: '< 5 ms', met: verdict(s.httpListMs.p99 < 5) })
  rows.push({ item: '4 registry', measure: `${name}: server RSS after the list load vs the same server on an empty registry`, value: MB(s.serverRssMB), baseline: MB(s.emptyServerRssMB), ratio: r(s.emptyServerRssMB > 0 ? s.serverRssMB / s.emptyServerRssMB : null), target: '-', met: '-' })
}

function memoryRows (rows: Row[], m: MemoryResults): void {
  const first = m.points[0]
  rows.push({ item: '5 memory', measure: `rclone RSS with the first mount (${m.backend}; rcd vs one \`rclone mount\`; ${MB(first?.agentRcloneAnonMB ?? Number.NaN)} of it anonymous, the rest mapped pages of the rclone executable)`, value: MB(m.firstMountRcloneMB), baseline: MB(first?.bareRcloneMB ?? Number.NaN), ratio: r(first === undefined ? null : m.firstMountRcloneMB / first.bareRcloneMB), target: '<= 45 MB', met: verdict(m.firstMountRcloneMB <= 45) })
  rows.push({ item: '5 memory', measure: 'rclone RSS per further mount (rcd growth vs one more `rclone mount`)', value: MB(m.perExtraMountRcloneMB ?? Number.NaN), baseline: MB(m.barePerMountMB ?? Number.NaN), ratio: r(m.perExtraMountRcloneMB === null || m.barePerMountMB === null ? null : m.perExtraMountRcloneMB / m.barePerMountMB), target: '<= 5 MB', met: verdict(m.perExtraMountRcloneMB === null ? null : m.perExtraMountRcloneMB <= 5) })
  for (const p of m.points) {
    rows.push({ item: '5 memory', measure: `${p.mounts} mount(s): agent node + rclone (${MB(p.agentNodeMB)} + ${MB(p.agentRcloneMB)}) vs ${p.mounts} separate \`rclone mount\``, value: MB(p.agentTotalMB), baseline: MB(p.bareRcloneMB), ratio: r(p.ratio), target: '-', met: '-' })
  }
}

function agentMemoryRows (rows: Row[], m: AgentMemoryInput): void {
  const first = m.points[0]
  const last = m.points[m.points.length - 1]
  if (first === undefined || last === undefined) return
  const label = 'webdav, agent API directly (bench/agent-memory.ts)'
  rows.push({ item: '5 memory', measure: `${label}: rcd RSS with the first mount vs one \`rclone mount\``, value: MB(first.rcdMB), baseline: MB(first.separateMB), ratio: r(first.rcdMB / first.separateMB), target: '<= 45 MB', met: verdict(first.rcdMB <= 45) })
  if (last.mounts > first.mounts) {
    const growth = (last.rcdMB - first.rcdMB) / (last.mounts - first.mounts)
    const bare = last.separateMB / last.mounts
    rows.push({ item: '5 memory', measure: `${label}: rcd RSS per further mount vs one more \`rclone mount\``, value: MB(growth), baseline: MB(bare), ratio: r(growth / bare), target: '<= 5 MB', met: verdict(growth <= 5) })
  }
  for (const p of m.points) {
    rows.push({ item: '5 memory', measure: `${label}: ${p.mounts} mount(s), rcd vs separate processes (median apply ${p.applyMsMedian} ms)`, value: MB(p.rcdMB), baseline: MB(p.separateMB), ratio: r(p.rcdMB / p.separateMB), target: '-', met: '-' })
  }
}

export function tableRows (t: TableInput): Row[] {
  const rows: Row[] = []
  if (t.latency !== undefined) latencyRows(rows, t.latency)
  if (t.api !== undefined) apiRows(rows, t.api)
  if (t.registry !== undefined) {
    storeRows(rows, t.registry.sqlite, 'SQLite')
    storeRows(rows, t.registry.postgres, 'PostgreSQL')
  }
  if (t.memory !== undefined) memoryRows(rows, t.memory)
  if (t.agentMemory !== undefined) agentMemoryRows(rows, t.agentMemory)
  if (t.registry !== undefined) {
    const s = t.registry.startup
    rows.push({ item: '6 startup', measure: `\`node dist/src/server.js\` spawn until /readyz answers, SQLite with ${s.mounts.toLocaleString('en-US')} mounts vs empty (median of ${s.runs})`, value: ms(s.fullMs), baseline: ms(s.emptyMs), ratio: r(s.ratio), target: '-', met: '-' })
  }
  return rows
}

export function renderTable (rows: readonly Row[]): string {
  const cell = (s: string): string => s.replaceAll('|', '\\|')
  const lines = [
    '| item | measure | control plane | baseline | ratio | target | met |',
    '|---|---|---|---|---|---|---|',
    ...rows.map(x => `| ${[x.item, x.measure, x.value, x.baseline, x.ratio, x.target, x.met].map(cell).join(' | ')} |`)
  ]
  return lines.join('\n')
}

export function renderMachine (m: Machine, load: { start: number[], end: number[] }): string {
  return [
    `- ${m.nproc} CPUs (${m.cpu}), ${(m.memoryMB / 1024).toFixed(1)} GiB RAM, ${m.os}, kernel ${m.kernel}`,
    `- Node ${m.node}, rclone ${m.rclone ?? 'not found'}`,
    `- load average (1/5/15 min) at start ${load.start.map(x => x.toFixed(2)).join(' / ')}, at end ${load.end.map(x => x.toFixed(2)).join(' / ')}`
  ].join('\n')
}
