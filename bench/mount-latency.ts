import { writeFile } from 'node:fs/promises'
import path from 'node:path'
import type { ControlPlane } from './lib/control-plane.ts'
import { BACKENDS, startBackend, type BackendKind, type BenchBackend } from './lib/backends.ts'
import { bareMount, writeRcloneConfig } from './lib/rclone.ts'
import { median, nowMs, ratio, round } from './lib/stats.ts'

// Items 1 and 2. Mount: POST /sandboxes/:id/mounts until it answers `mounted`, against bare
// `rclone mount --daemon` of the same remote until its first successful listing; the two
// alternate run by run so drift falls on both. Remove: DELETE of those read-only mounts
// (against fusermount3 -u of the bare ones until the daemon exits), and of read-write mounts
// right after writing a small file, which includes flushing it to the backend.

export interface MountLatencyOptions {
  runs: number
  rwRuns: number
  warmup: boolean
  backends?: readonly BackendKind[]
}

export interface BackendLatency {
  backend: BackendKind
  runs: number
  /** Medians, milliseconds. */
  controlPlaneMs: number
  bareMs: number
  ratio: number | null
  removeReadOnlyMs: number
  bareUnmountMs: number
  removeReadWriteMs: number
  /** Read-write removes after which the file just written was NOT in the backend (lost writes). */
  lostWrites: number
  samples: {
    controlPlaneMs: number[]
    bareMs: number[]
    removeReadOnlyMs: number[]
    bareUnmountMs: number[]
    removeReadWriteMs: number[]
  }
}

export interface LatencyContext {
  cp: ControlPlane
  sandboxId: string
  /** Where mount points and bare-rclone work dirs go (walkable by the sandbox user). */
  root: string
  log: (line: string) => void
}

async function timedAdd (ctx: LatencyContext, backend: BenchBackend, mountPath: string, readWrite: boolean): Promise<{ ms: number, id: string }> {
  const t0 = nowMs()
  const { mount } = await ctx.cp.addMount(ctx.sandboxId, { ...backend.apiBody, path: mountPath, readWrite })
  const ms = nowMs() - t0
  if (mount.status !== 'mounted') throw new Error(`POST answered status ${mount.status} for ${backend.kind}`)
  return { ms, id: mount.id }
}

async function timedRemove (ctx: LatencyContext, id: string): Promise<number> {
  const t0 = nowMs()
  await ctx.cp.removeMount(ctx.sandboxId, id)
  return nowMs() - t0
}

async function benchBackend (ctx: LatencyContext, kind: BackendKind, opts: MountLatencyOptions): Promise<BackendLatency> {
  const backend = await startBackend(kind)
  try {
    const work = path.join(ctx.root, 'bare', kind)
    const configFile = await writeRcloneConfig(work, backend.bareConfig)
    const s = { controlPlaneMs: [] as number[], bareMs: [] as number[], removeReadOnlyMs: [] as number[], bareUnmountMs: [] as number[], removeReadWriteMs: [] as number[] }
    const cpRun = async (name: string, record: boolean): Promise<void> => {
      const add = await timedAdd(ctx, backend, path.join(ctx.root, 'mnt', name), false)
      const removeMs = await timedRemove(ctx, add.id)
      if (record) { s.controlPlaneMs.push(round(add.ms)); s.removeReadOnlyMs.push(round(removeMs)) }
    }
    const bareRun = async (name: string, record: boolean): Promise<void> => {
      const m = await bareMount(backend.bareRemote, path.join(ctx.root, 'mnt', name), { configFile, work })
      const unmountMs = await m.unmount()
      if (record) { s.bareMs.push(round(m.mountMs)); s.bareUnmountMs.push(round(unmountMs)) }
    }
    if (opts.warmup) {
      await cpRun(`cp-${kind}-warm`, false)
      await bareRun(`bare-${kind}-warm`, false)
    }
    for (let i = 0; i < opts.runs; i++) {
      if (i % 2 === 0) {
        await cpRun(`cp-${kind}-${i}`, true)
        await bareRun(`bare-${kind}-${i}`, true)
      } else {
        await bareRun(`bare-${kind}-${i}`, true)
        await cpRun(`cp-${kind}-${i}`, true)
      }
    }
    let lostWrites = 0
    for (let i = 0; i < opts.rwRuns; i++) {
      const mountPath = path.join(ctx.root, 'mnt', `rw-${kind}-${i}`)
      const add = await timedAdd(ctx, backend, mountPath, true)
      const name = `written-${i}.txt`
      await writeFile(path.join(mountPath, name), `bench ${kind} ${i}\n`.repeat(64))
      s.removeReadWriteMs.push(round(await timedRemove(ctx, add.id)))
      if (!(await backend.holds(name))) lostWrites++
    }
    const cp = median(s.controlPlaneMs)
    const bare = median(s.bareMs)
    ctx.log(`mount latency ${kind}: control plane ${round(cp)} ms, bare ${round(bare)} ms`)
    return {
      backend: kind,
      runs: opts.runs,
      controlPlaneMs: round(cp),
      bareMs: round(bare),
      ratio: ratio(cp, bare),
      removeReadOnlyMs: round(median(s.removeReadOnlyMs)),
      bareUnmountMs: round(median(s.bareUnmountMs)),
      removeReadWriteMs: round(median(s.removeReadWriteMs)),
      lostWrites,
      samples: s
    }
  } finally {
    await backend.stop()
  }
}

export async function benchMountLatency (ctx: LatencyContext, opts: MountLatencyOptions): Promise<BackendLatency[]> {
  const out: BackendLatency[] = []
  for (const kind of opts.backends ?? BACKENDS) out.push(await benchBackend(ctx, kind, opts))
  return out
}
