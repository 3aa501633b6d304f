import { readdir } from 'node:fs/promises'
import path from 'node:path'
import type { ControlPlane } from './lib/control-plane.ts'
import { startBenchAgent } from './lib/agent.ts'
import { startBackend, type BackendKind } from './lib/backends.ts'
import { COMPILED } from './lib/paths.ts'
import { allProcesses, mb, processTree } from './lib/proc.ts'
import { bareMount, killBareDaemons, unmountUnder, writeRcloneConfig, type BareMount } from './lib/rclone.ts'
import { ratio, round } from './lib/stats.ts'

// Item 5: resident memory in the VM. The agent runs as its own process; after 1, 10 and 20
// mounts of one sandbox it is read from /proc: the agent's node process and its rclone daemon
// (the process tree) apart, against the same number of separate `rclone mount` processes.
// bench/agent-memory.ts measures rcd alone with an in-process agent driven over its own API
// (WebDAV); run.ts runs both.

export interface MemoryOptions {
  counts: readonly number[]
  /** Pause before each reading, so RSS reflects the mounts and not a transient peak. */
  settleMs?: number
  backend?: BackendKind
}

export interface MemoryPoint {
  mounts: number
  agentNodeMB: number
  /** rclone rcd (and anything else rclone under the agent). */
  agentRcloneMB: number
  /** Of that, anonymous memory (heap); the rest is mostly the rclone executable's mapped pages. */
  agentRcloneAnonMB: number
  agentTotalMB: number
  /** Sum over `mounts` separate `rclone mount --daemon` processes. */
  bareRcloneMB: number
  /** agentTotalMB / bareRcloneMB */
  ratio: number | null
}

export interface MemoryResults {
  backend: BackendKind
  /** How the agent ran: compiled JavaScript (dist) or TypeScript through tsx (smoke test). */
  agentRuntime: 'dist' | 'tsx'
  idle: { agentNodeMB: number, agentRcloneMB: number, agentRcloneAnonMB: number }
  points: MemoryPoint[]
  /** rclone RSS with the first mount (target <= 45 MB). */
  firstMountRcloneMB: number
  /** (rclone RSS at the largest count - at 1) / (count - 1) (target <= 5 MB). */
  perExtraMountRcloneMB: number | null
  barePerMountMB: number | null
}

async function agentRss (agentPid: number): Promise<{ node: number, rclone: number, rcloneAnon: number }> {
  const tree = await processTree(agentPid)
  const rclone = tree.filter(p => p.name === 'rclone')
  return {
    node: mb(tree.filter(p => p.pid === agentPid).reduce((a, p) => a + p.rssKB, 0)),
    rclone: mb(rclone.reduce((a, p) => a + p.rssKB, 0)),
    rcloneAnon: mb(rclone.reduce((a, p) => a + p.anonKB, 0))
  }
}

async function bareRss (root: string): Promise<number> {
  const daemons = (await allProcesses()).filter(p => p.name === 'rclone' && p.argv.includes('mount') && p.argv.some(a => a.startsWith(root + '/')))
  return mb(daemons.reduce((a, p) => a + p.rssKB, 0))
}

export async function benchMemory (ctx: { cp: ControlPlane, root: string, log: (line: string) => void }, opts: MemoryOptions): Promise<MemoryResults> {
  const kind = opts.backend ?? 's3'
  const counts = [...opts.counts].sort((a, b) => a - b)
  const max = counts[counts.length - 1]
  const settle = async (): Promise<void> => { await new Promise(resolve => setTimeout(resolve, opts.settleMs ?? 1000)) }
  const backend = await startBackend(kind)
  const agentRoot = path.join(ctx.root, 'agent-mem')
  const mountRoot = path.join(ctx.root, 'mem')
  const bareRoot = path.join(ctx.root, 'mem-bare')
  try {
    const agent = await startBenchAgent(agentRoot, { separateProcess: true })
    const byCount = new Map<number, Omit<MemoryPoint, 'bareRcloneMB' | 'ratio'>>()
    let idle: { node: number, rclone: number, rcloneAnon: number }
    try {
      await ctx.cp.registerSandbox('mem', agent.url, agent.token)
      await settle()
      idle = await agentRss(agent.pid)
      const ids: string[] = []
      for (let i = 1; i <= max; i++) {
        const { mount } = await ctx.cp.addMount('mem', { ...backend.apiBody, path: path.join(mountRoot, `m-${i}`), readWrite: false })
        ids.push(mount.id)
        if (!counts.includes(i)) continue
        for (let j = 1; j <= i; j++) await readdir(path.join(mountRoot, `m-${j}`))
        await settle()
        const rss = await agentRss(agent.pid)
        byCount.set(i, { mounts: i, agentNodeMB: rss.node, agentRcloneMB: rss.rclone, agentRcloneAnonMB: rss.rcloneAnon, agentTotalMB: round(rss.node + rss.rclone, 1) })
        ctx.log(`memory: ${i} mount(s) in one agent: node ${rss.node} MB, rclone ${rss.rclone} MB`)
      }
      for (const id of ids) await ctx.cp.removeMount('mem', id)
    } finally {
      await agent.close()
    }

    const bare: BareMount[] = []
    const bareByCount = new Map<number, number>()
    const configFile = await writeRcloneConfig(path.join(bareRoot, 'work'), backend.bareConfig)
    try {
      for (let i = 1; i <= max; i++) {
        bare.push(await bareMount(backend.bareRemote, path.join(bareRoot, `m-${i}`), { configFile, work: path.join(bareRoot, 'work') }))
        if (!counts.includes(i)) continue
        for (const m of bare) await readdir(m.dir)
        await settle()
        bareByCount.set(i, await bareRss(bareRoot))
        ctx.log(`memory: ${i} separate rclone mount(s): ${bareByCount.get(i) ?? 0} MB`)
      }
    } finally {
      for (const m of bare) await m.unmount().catch(() => {})
      await killBareDaemons(bareRoot)
      await unmountUnder(bareRoot)
    }

    const points = counts.map(n => {
      const p = byCount.get(n) as Omit<MemoryPoint, 'bareRcloneMB' | 'ratio'>
      const bareMB = bareByCount.get(n) ?? Number.NaN
      return { ...p, bareRcloneMB: bareMB, ratio: ratio(p.agentTotalMB, bareMB) }
    })
    const first = byCount.get(counts[0])?.agentRcloneMB ?? Number.NaN
    const last = byCount.get(max)?.agentRcloneMB ?? Number.NaN
    return {
      backend: kind,
      agentRuntime: COMPILED ? 'dist' : 'tsx',
      idle: { agentNodeMB: idle.node, agentRcloneMB: idle.rclone, agentRcloneAnonMB: idle.rcloneAnon },
      points,
      firstMountRcloneMB: first,
      perExtraMountRcloneMB: max > counts[0] ? round((last - first) / (max - counts[0]), 2) : null,
      barePerMountMB: max > 0 ? round((bareByCount.get(max) ?? Number.NaN) / max, 1) : null
    }
  } finally {
    await backend.stop()
  }
}
