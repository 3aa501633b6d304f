import t from 'tap'
import { readFile } from 'node:fs/promises'
import { adminUrl } from '../helpers/postgres.ts'
import { runBench } from '../../bench/run.ts'
import { allProcesses } from '../../bench/lib/proc.ts'

// Runs every bench code path in its tiny mode so `npm run bench` cannot rot. Timings on a
// shared test machine mean nothing: only the shape of the results is checked, plus that the
// run leaves no process or mount behind.

const finite = (x: unknown): boolean => typeof x === 'number' && Number.isFinite(x) && x >= 0
const summary = { n: Number, median: Number, p99: Number, min: Number, max: Number }

t.test('a quick bench run yields every item with the expected shape', async t => {
  const lines: string[] = []
  const r = await runBench({ quick: true, postgresAdminUrl: await adminUrl() }, line => lines.push(line))

  t.match(r.machine, { nproc: Number, memoryMB: Number, node: String })
  t.equal(r.quick, true)

  t.equal(r.latency?.length, 3, 'sftp, webdav and s3')
  for (const b of r.latency ?? []) {
    t.ok(['sftp', 'webdav', 's3'].includes(b.backend))
    t.equal(b.samples.controlPlaneMs.length, 1)
    t.equal(b.samples.bareMs.length, 1)
    t.equal(b.samples.removeReadWriteMs.length, 1)
    t.ok([b.controlPlaneMs, b.bareMs, b.removeReadOnlyMs, b.bareUnmountMs, b.removeReadWriteMs].every(finite), `${b.backend}: timings are numbers`)
    t.ok(finite(b.ratio), `${b.backend}: ratio`)
    t.ok(b.lostWrites === 0 || b.lostWrites === 1)
  }

  const mem = r.memory
  t.ok(mem !== undefined)
  t.same(mem?.points.map(p => p.mounts), [1, 2])
  for (const p of mem?.points ?? []) {
    t.ok(p.agentNodeMB > 0 && p.agentRcloneMB > 0 && p.bareRcloneMB > 0, `${p.mounts} mount(s): every RSS was read`)
  }
  t.equal(typeof mem?.perExtraMountRcloneMB, 'number', 'growth per mount is computed')

  t.same(r.agentMemory?.points.map(p => p.mounts), [1, 2], 'bench/agent-memory.ts ran with the quick counts')
  for (const p of r.agentMemory?.points ?? []) t.ok(p.rcdMB > 0 && p.separateMB > 0, `agent-memory ${p.mounts}: both RSS were read`)

  t.match(r.api?.list, { mounts: 20, realRps: Number, bareRps: Number, non2xx: 0 })
  t.ok((r.api?.list.realRps ?? 0) > 0 && (r.api?.list.bareRps ?? 0) > 0)
  t.same(r.api?.cycles.levels.map(l => l.concurrency), [1, 2])
  for (const l of r.api?.cycles.levels ?? []) t.ok(l.cycles > 0 && l.errors === 0, `concurrency ${l.concurrency}: cycles ran without errors`)

  t.match(r.registry?.sqlite, { kind: 'sqlite', mounts: 100, sandboxes: 10, storeListMs: summary, httpListMs: summary })
  t.match(r.registry?.postgres, { kind: 'postgres', mounts: 100, storeListMs: summary, httpListMs: summary })
  t.equal(r.registry?.sqlite.httpListMs.n, 20)
  for (const s of [r.registry?.sqlite, r.registry?.postgres]) {
    const share = s !== undefined && 'serverWithin5ms' in s ? s.serverWithin5ms : null
    t.ok(share !== null && share >= 0 && share <= 1, 'the server histogram was read')
  }
  t.ok((r.registry?.sqlite.serverRssMB ?? 0) > 0 && (r.registry?.sqlite.emptyServerRssMB ?? 0) > 0)
  t.match(r.registry?.startup, { mounts: 100, runs: 1, fullMs: Number, emptyMs: Number })

  t.ok(r.rows.length >= 20, 'one table row per measure')
  t.match(r.table, /^\| item \| measure \|/)
  for (const item of ['1 mount', '2 remove', '3 API', '4 registry', '5 memory', '6 startup']) t.ok(r.table.includes(`| ${item} |`), `table has ${item}`)

  // the temp dirs the bench (and bench/agent-memory.ts) create
  const mine = /\/(sandbox-mounts-bench-|agent-memory-|bench-(cp|api|sqlite|pg|seed)-)/
  const mountinfo = await readFile('/proc/self/mountinfo', 'utf8')
  t.notOk(mine.test(mountinfo), 'no mount left behind')
  const leftovers = (await allProcesses()).filter(p => p.argv.some(a => mine.test(a)))
  t.same(leftovers.map(p => p.argv.join(' ')), [], 'no process left behind')
})
