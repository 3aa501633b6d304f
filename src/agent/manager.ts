import type { FastifyBaseLogger } from 'fastify'
import path from 'node:path'
import type { AgentApplyRequest, AgentCapabilities, AgentMount, AgentMountStatus } from '../schemas/agent.ts'
import type { AgentConfig } from './config.ts'
import { agentError, isAgentFailure, RUNTIME_MISSING_MESSAGE } from './errors.ts'
import { fusermountUnmount } from './fusermount.ts'
import { KeyedMutex } from '../lib/keyed-mutex.ts'
import { checkMountPoint, createMountPoint, lookupAccount, removeCreatedDirs, type SandboxAccount } from './mount-point.ts'
import { buildMountSpec, type MountSpec } from './mount-spec.ts'
import { MountStore, type MountRecord, type MountSecrets } from './mount-store.ts'
import { mountAt, readMountinfo, type MountEntry } from './mountinfo.ts'
import { statWithTimeout } from './probe.ts'
import { RcError, type RcClient } from './rc.ts'
import { RcdSupervisor } from './rcd.ts'
import { detectRuntime, rcloneVersion, type Runtime } from './runtime.ts'
import { scrub, tail } from './scrub.ts'
import { cacheExists, countDirty, moveCache, removeCache } from './vfs-cache.ts'

// The mount lifecycle inside the VM: apply (create, keep, replace), remove, and live health,
// on top of one supervised `rclone rcd`. Every change to a mount runs under that mount's lock;
// a path belongs to at most one mount at a time. A failed apply leaves nothing behind.

/** How long the upload queue must stay empty before a flush counts as done. */
const FLUSH_SETTLE_MS = 300

export type ApplyOutcome = 'created' | 'replaced' | 'unchanged'

interface Health {
  status: AgentMountStatus
  lastError?: string
  alive: boolean
}

interface Snapshot {
  entries: MountEntry[]
  rc: RcClient | undefined
  /** mount point -> rclone fs name, as the running daemon reports them; undefined when it is gone. */
  rcMounts: Map<string, string> | undefined
}

interface Undo {
  claimed: boolean
  secretsWritten: boolean
  mountCalled: boolean
  dirs: string[]
  keepDirs: boolean
  cacheName?: string
  cacheExisted: boolean
}

const STAT_TIMEOUT_MS = 2000
const PROBE_TTL_MS = 5000
const sleep = async (ms: number): Promise<void> => { await new Promise(resolve => setTimeout(resolve, ms)) }

export function requestFromRecord (rec: MountRecord, secrets: MountSecrets): AgentApplyRequest {
  return {
    path: rec.path,
    config: secrets.config,
    section: rec.section,
    root: rec.root,
    readWrite: rec.readWrite,
    mountOptions: rec.mountOptions,
    redact: secrets.redact
  }
}

export class MountManager {
  readonly #cfg: AgentConfig
  readonly #log: FastifyBaseLogger
  readonly #store: MountStore
  readonly #records = new Map<string, MountRecord>()
  readonly #secrets = new Map<string, MountSecrets>()
  readonly #claims = new Map<string, string>()
  readonly #probes = new Map<string, { at: number, error?: string }>()
  readonly #lock = new KeyedMutex()
  #rcd: RcdSupervisor | undefined
  #version: string | null = null

  constructor (opts: { config: AgentConfig, log: FastifyBaseLogger }) {
    this.#cfg = opts.config
    this.#log = opts.log
    this.#store = new MountStore({ stateDir: opts.config.stateDir, configDir: opts.config.configDir })
  }

  get cacheDir (): string {
    return path.join(this.#cfg.stateDir, 'cache')
  }

  /** Loads the mount records and adopts (or starts) the rclone daemon when the image has rclone. */
  async init (): Promise<void> {
    await this.#store.init()
    for (const rec of await this.#store.loadRecords()) {
      this.#records.set(rec.mountId, rec)
      this.#claims.set(rec.path, rec.mountId)
      const secrets = await this.#store.readSecrets(rec.mountId)
      if (secrets !== undefined) this.#secrets.set(rec.mountId, secrets)
    }
    const runtime = await this.#detect()
    if (runtime.rclone !== null && runtime.fusermount !== null) {
      try {
        await this.#supervisor(runtime).ensure()
      } catch (err) {
        this.#log.error({ err: { message: (err as Error).message } }, 'the rclone daemon did not start')
      }
    }
  }

  async capabilities (): Promise<AgentCapabilities> {
    const runtime = await this.#detect()
    if (runtime.rclone !== null && this.#version === null) this.#version = await rcloneVersion(runtime.rclone, path.join(this.#cfg.stateDir, 'home'))
    const account = await lookupAccount(this.#cfg.sandboxUser)
    return {
      rcloneVersion: runtime.rclone === null ? null : this.#version,
      fusermount3: runtime.fusermount !== null,
      ready: runtime.rclone !== null && runtime.fusermount !== null && runtime.fuseDevice && account !== undefined,
      processModel: 'rcd'
    }
  }

  async daemonRunning (): Promise<boolean> {
    return this.#rcd !== undefined && await this.#rcd.current() !== undefined
  }

  get size (): number {
    return this.#records.size
  }

  async list (): Promise<AgentMount[]> {
    const snap = await this.#snapshot()
    const recs = [...this.#records.values()].sort((a, b) => a.mountId < b.mountId ? -1 : 1)
    return await Promise.all(recs.map(async rec => this.#view(rec, await this.#health(rec, snap, true))))
  }

  async get (mountId: string): Promise<AgentMount> {
    const rec = this.#records.get(mountId)
    if (rec === undefined) throw agentError('NOT_FOUND', `no mount ${mountId}`)
    return this.#view(rec, await this.#health(rec, await this.#snapshot(), true))
  }

  async apply (mountId: string, req: AgentApplyRequest, baseLog: FastifyBaseLogger = this.#log): Promise<{ mount: AgentMount, outcome: ApplyOutcome }> {
    const log = baseLog.child({ mountId })
    const runtime = await this.#requireRuntime()
    const owner = await this.#owner()
    const spec = buildMountSpec(mountId, req, owner)
    const timeouts = {
      preflightMs: req.preflightTimeoutMs ?? this.#cfg.preflightTimeoutMs,
      mountMs: req.mountTimeoutMs ?? this.#cfg.mountTimeoutMs
    }
    return await this.#lock.run(mountId, async () => {
      const rc = await this.#ensureDaemon(runtime)
      this.#probes.delete(mountId)
      const existing = this.#records.get(mountId)
      if (existing === undefined) {
        const rec = await this.#mountNew(spec, req.config, rc, owner, timeouts, { preflighted: false, inheritDirs: [], keepDirsOnFailure: false })
        log.info({ path: rec.path, readWrite: rec.readWrite }, 'mounted')
        return { mount: this.#view(rec, { status: 'mounted', alive: true }), outcome: 'created' as const }
      }
      const snap = await this.#snapshot()
      const health = await this.#health(existing, snap, false)
      if (health.alive && existing.configHash === spec.configHash && existing.path === spec.path) {
        return { mount: this.#view(existing, health), outcome: 'unchanged' as const }
      }
      const rec = health.alive
        ? await this.#replace(existing, spec, req.config, rc, owner, timeouts, log)
        : await this.#reapplyDead(existing, spec, req.config, rc, owner, snap, runtime, timeouts, log)
      log.info({ path: rec.path, readWrite: rec.readWrite, previousPath: existing.path }, health.alive ? 'replaced' : 're-applied a failed mount')
      return { mount: this.#view(rec, { status: 'mounted', alive: true }), outcome: 'replaced' as const }
    })
  }

  /** Flushes pending writes, unmounts and deletes everything the mount left; removing twice is fine. */
  async remove (mountId: string, opts: { force?: boolean } = {}, baseLog: FastifyBaseLogger = this.#log): Promise<void> {
    const log = baseLog.child({ mountId })
    const force = opts.force === true
    await this.#lock.run(mountId, async () => {
      const rec = this.#records.get(mountId)
      if (rec === undefined) {
        await this.#store.deleteSecrets(mountId)
        return
      }
      const snap = await this.#snapshot()
      await this.#takeDown(rec, snap, { force, log })
      await this.#forget(rec, log)
      log.info({ path: rec.path, force }, 'removed')
    })
  }

  /** Tests and an orderly VM shutdown: remove every mount (forced) and optionally stop rcd. */
  async close (opts: { unmountAll?: boolean, stopDaemon?: boolean } = {}): Promise<void> {
    if (opts.unmountAll === true) {
      for (const id of [...this.#records.keys()]) {
        await this.remove(id, { force: true }).catch(err => this.#log.error({ mountId: id, err: { message: (err as Error).message } }, 'remove at close failed'))
      }
    }
    if (opts.stopDaemon === true && this.#rcd !== undefined) await this.#rcd.stop()
  }

  // -------------------------------------------------------------------------------------------

  async #detect (): Promise<Runtime> {
    return await detectRuntime({ rcloneBin: this.#cfg.rcloneBin, fusermountBin: this.#cfg.fusermountBin, path: this.#cfg.path })
  }

  async #requireRuntime (): Promise<Runtime & { rclone: string, fusermount: string }> {
    const rt = await this.#detect()
    if (rt.rclone === null || rt.fusermount === null) {
      const missing = [rt.rclone === null ? `rclone (${this.#cfg.rcloneBin})` : '', rt.fusermount === null ? `fusermount3 (${this.#cfg.fusermountBin})` : ''].filter(Boolean).join(' and ')
      throw agentError('RUNTIME_MISSING', `${RUNTIME_MISSING_MESSAGE}: ${missing} not found`)
    }
    if (!rt.fuseDevice) throw agentError('RUNTIME_MISSING', 'the VM has no usable /dev/fuse')
    return { ...rt, rclone: rt.rclone, fusermount: rt.fusermount }
  }

  /** fusermount3 as configured; only called when a FUSE mount exists, so it was found before. */
  async #fusermount (): Promise<string> {
    return (await this.#detect()).fusermount ?? this.#cfg.fusermountBin
  }

  async #owner (): Promise<SandboxAccount> {
    const account = await lookupAccount(this.#cfg.sandboxUser)
    if (account === undefined) throw agentError('RUNTIME_MISSING', `the sandbox user ${this.#cfg.sandboxUser} does not exist in this image`)
    return account
  }

  #supervisor (runtime: Runtime): RcdSupervisor {
    if (this.#rcd === undefined) {
      if (runtime.rclone === null) throw agentError('RUNTIME_MISSING', RUNTIME_MISSING_MESSAGE)
      // rclone finds fusermount3 on PATH: make sure the configured one comes first
      const fuseDir = runtime.fusermount === null ? '' : path.dirname(runtime.fusermount) + ':'
      this.#rcd = new RcdSupervisor({ rclone: runtime.rclone, stateDir: this.#cfg.stateDir, configDir: this.#cfg.configDir, path: fuseDir + this.#cfg.path, log: this.#log })
    }
    return this.#rcd
  }

  async #ensureDaemon (runtime: Runtime): Promise<RcClient> {
    try {
      return await this.#supervisor(runtime).ensure()
    } catch (err) {
      if (isAgentFailure(err)) throw err
      throw agentError('MOUNT_FAILED', (err as Error).message)
    }
  }

  async #snapshot (): Promise<Snapshot> {
    const entries = await readMountinfo()
    const rc = this.#rcd === undefined ? undefined : await this.#rcd.current()
    let rcMounts: Map<string, string> | undefined
    if (rc !== undefined) {
      try {
        const res = await rc.call<{ mountPoints?: Array<{ Fs: string, MountPoint: string }> }>('mount/listmounts', {}, { timeoutMs: 5000 })
        rcMounts = new Map((res.mountPoints ?? []).map(m => [m.MountPoint, m.Fs]))
      } catch {}
    }
    return { entries, rc, rcMounts }
  }

  #allRedact (extra: readonly string[] = []): string[] {
    return [...extra, ...[...this.#secrets.values()].flatMap(s => s.redact)]
  }

  #view (rec: MountRecord, h: Health): AgentMount {
    const out: AgentMount = { mountId: rec.mountId, path: rec.path, readWrite: rec.readWrite, status: h.status, configHash: rec.configHash }
    if (h.lastError !== undefined) out.lastError = scrub(h.lastError, this.#allRedact())
    return out
  }

  async #health (rec: MountRecord, snap: Snapshot, probeRemote: boolean): Promise<Health> {
    const failed = (lastError: string): Health => ({ status: 'failed', lastError, alive: false })
    if (snap.rc === undefined || snap.rcMounts === undefined) return failed('the rclone daemon is not running')
    const entry = mountAt(snap.entries, rec.path)
    if (entry === undefined || entry.fsType !== 'fuse.rclone') return failed(`nothing is mounted at ${rec.path}`)
    if (!snap.rcMounts.has(rec.path)) return failed('the mount belongs to an rclone daemon that is gone')
    const st = await statWithTimeout(rec.path, STAT_TIMEOUT_MS)
    if (!st.ok) return failed(st.message)
    if (probeRemote) {
      const error = await this.#probeRemote(rec, snap.rc)
      if (error !== undefined) return { status: 'degraded', lastError: error, alive: true }
    }
    return { status: 'mounted', alive: true }
  }

  /** Lists the remote through the mount's backend; the answer is kept a few seconds. */
  async #probeRemote (rec: MountRecord, rc: RcClient): Promise<string | undefined> {
    const cached = this.#probes.get(rec.mountId)
    if (cached !== undefined && Date.now() - cached.at < PROBE_TTL_MS) return cached.error
    let error: string | undefined
    const secrets = this.#secrets.get(rec.mountId)
    if (secrets === undefined) {
      error = 'the mount\'s rclone config is gone from the agent\'s config dir; re-apply the mount'
    } else {
      try {
        const spec = buildMountSpec(rec.mountId, requestFromRecord(rec, secrets), await this.#owner())
        await rc.call('operations/list', { fs: spec.fs, remote: '', opt: { maxDepth: 1 } }, { timeoutMs: Math.min(this.#cfg.preflightTimeoutMs, 5000), redact: spec.redact })
      } catch (err) {
        error = `listing the remote failed: ${scrub((err as Error).message, this.#allRedact(secrets.redact))}`
      }
    }
    this.#probes.set(rec.mountId, { at: Date.now(), error })
    return error
  }

  #claim (p: string, mountId: string): boolean {
    const holder = this.#claims.get(p)
    if (holder === mountId) return false
    if (holder !== undefined) throw agentError('MOUNT_POINT_REFUSED', `mount point ${p} is used by mount ${holder}`)
    this.#claims.set(p, mountId)
    return true
  }

  #release (p: string, mountId: string): void {
    if (this.#claims.get(p) === mountId) this.#claims.delete(p)
  }

  async #preflight (rc: RcClient, spec: MountSpec, timeoutMs: number): Promise<void> {
    try {
      await rc.call('operations/list', { fs: spec.fs, remote: '', opt: { maxDepth: 1 } }, { timeoutMs, redact: this.#allRedact(spec.redact) })
    } catch (err) {
      if (!(err instanceof RcError)) throw err
      if (err.unreachable) throw agentError('MOUNT_FAILED', 'the rclone daemon is not reachable')
      throw agentError('PREFLIGHT_FAILED', err.timedOut
        ? `the remote did not answer a listing within ${timeoutMs} ms`
        : `listing the remote failed: ${err.message}`)
    }
  }

  /** Mounts a new backend at spec.path. On failure, undoes exactly what it did and rethrows. */
  async #mountNew (spec: MountSpec, config: string, rc: RcClient, owner: SandboxAccount,
    timeouts: { preflightMs: number, mountMs: number },
    opts: { preflighted: boolean, inheritDirs: string[], keepDirsOnFailure: boolean, adoptCacheFrom?: string }): Promise<MountRecord> {
    const undo: Undo = { claimed: false, secretsWritten: false, mountCalled: false, dirs: [], keepDirs: opts.keepDirsOnFailure, cacheExisted: true }
    const rcd = this.#rcd as RcdSupervisor
    const logFrom = await rcd.logOffset()
    try {
      undo.claimed = this.#claim(spec.path, spec.mountId)
      const { exists } = await checkMountPoint(spec.path, owner, await readMountinfo())
      if (!opts.preflighted) await this.#preflight(rc, spec, timeouts.preflightMs)
      const info = await rc.call<{ Name?: string }>('operations/fsinfo', { fs: spec.fs }, { timeoutMs: timeouts.preflightMs, redact: spec.redact })
      if (typeof info.Name !== 'string' || info.Name === '') throw agentError('MOUNT_FAILED', 'rclone did not name the backend')
      undo.cacheName = info.Name
      if (opts.adoptCacheFrom !== undefined && opts.adoptCacheFrom !== info.Name) {
        // a dead mount's pending writes: the new backend uploads them once it is mounted
        await moveCache(this.cacheDir, opts.adoptCacheFrom, info.Name)
      }
      undo.cacheExisted = await cacheExists(this.cacheDir, info.Name)
      await this.#store.writeSecrets(spec.mountId, { config, redact: spec.redact })
      undo.secretsWritten = true
      undo.dirs = exists ? opts.inheritDirs : await createMountPoint(spec.path, owner)
      undo.mountCalled = true
      const vfsName = await this.#mountAndWait(rc, spec, timeouts.mountMs)
      const now = new Date().toISOString()
      const rec: MountRecord = {
        mountId: spec.mountId,
        path: spec.path,
        readWrite: spec.readWrite,
        configHash: spec.configHash,
        section: spec.section,
        root: spec.root,
        mountOptions: spec.mountOptions,
        createdDirs: undo.dirs,
        fsName: info.Name,
        vfsName,
        createdAt: this.#records.get(spec.mountId)?.createdAt ?? now,
        updatedAt: now
      }
      await this.#store.writeRecord(rec)
      this.#records.set(rec.mountId, rec)
      this.#secrets.set(rec.mountId, { config, redact: spec.redact })
      return rec
    } catch (err) {
      await this.#undo(spec, rc, undo)
      if (isAgentFailure(err)) {
        if (err.code === 'MOUNT_FAILED' && err.logTail === undefined) {
          const logTail = await this.#logTail(logFrom, spec, undo.cacheName)
          if (logTail !== '') err.logTail = logTail
        }
        throw err
      }
      if (err instanceof RcError) throw agentError('MOUNT_FAILED', err.message, await this.#logTail(logFrom, spec, undo.cacheName))
      throw err
    }
  }

  /** rc mount/mount, then wait until the kernel lists the mount and a stat through it answers. */
  async #mountAndWait (rc: RcClient, spec: MountSpec, mountMs: number): Promise<string> {
    const deadline = Date.now() + mountMs
    try {
      await rc.call('mount/mount', {
        fs: spec.fs,
        mountPoint: spec.path,
        mountOpt: { ...spec.mountOpt, DeviceName: `sandbox-mounts:${spec.mountId}` },
        vfsOpt: spec.vfsOpt
      }, { timeoutMs: mountMs, redact: this.#allRedact(spec.redact) })
    } catch (err) {
      if (!(err instanceof RcError)) throw err
      throw agentError('MOUNT_FAILED', err.timedOut ? `rclone did not mount ${spec.path} within ${mountMs} ms` : `rclone could not mount ${spec.path}: ${err.message}`)
    }
    for (;;) {
      const entry = mountAt(await readMountinfo(), spec.path)
      if (entry?.fsType === 'fuse.rclone') break
      if (Date.now() >= deadline) throw agentError('MOUNT_FAILED', `the mount did not appear at ${spec.path} within ${mountMs} ms`)
      await sleep(20)
    }
    const st = await statWithTimeout(spec.path, Math.max(STAT_TIMEOUT_MS, deadline - Date.now()))
    if (!st.ok) throw agentError('MOUNT_FAILED', `the mount at ${spec.path} does not answer: ${st.message}`)
    const listed = await rc.call<{ mountPoints?: Array<{ Fs: string, MountPoint: string }> }>('mount/listmounts', {}, { timeoutMs: 5000 })
    const vfsName = listed.mountPoints?.find(m => m.MountPoint === spec.path)?.Fs
    if (vfsName === undefined) throw agentError('MOUNT_FAILED', `rclone does not list the mount at ${spec.path}`)
    return vfsName
  }

  async #undo (spec: MountSpec, rc: RcClient, undo: Undo): Promise<void> {
    if (undo.mountCalled) {
      const entry = mountAt(await readMountinfo(), spec.path)
      let unmounted = entry?.fsType !== 'fuse.rclone'
      if (!unmounted) unmounted = await rc.call('mount/unmount', { mountPoint: spec.path }, { timeoutMs: 15_000 }).then(() => true, () => false)
      if (!unmounted) await fusermountUnmount(await this.#fusermount(), spec.path, { lazy: true })
    }
    if (undo.secretsWritten) await this.#store.deleteSecrets(spec.mountId).catch(() => {})
    if (undo.cacheName !== undefined && !undo.cacheExisted) await removeCache(this.cacheDir, undo.cacheName).catch(() => {})
    if (!undo.keepDirs) await removeCreatedDirs(undo.dirs)
    if (undo.claimed) this.#release(spec.path, spec.mountId)
  }

  /** The lines rclone logged about this mount since `offset`, scrubbed. */
  async #logTail (offset: number, spec: MountSpec, cacheName: string | undefined): Promise<string> {
    const text = await (this.#rcd as RcdSupervisor).logSince(offset)
    const lines = text.split('\n').filter(line => line.includes(spec.path) || line.includes('mount/mount') || (cacheName !== undefined && line.includes(cacheName)))
    return tail(scrub(lines.join('\n'), this.#allRedact(spec.redact)).trim())
  }

  /** Same mountId, new configuration, old mount alive: checks the new one first, then swaps. */
  async #replace (old: MountRecord, spec: MountSpec, config: string, rc: RcClient, owner: SandboxAccount,
    timeouts: { preflightMs: number, mountMs: number }, log: FastifyBaseLogger): Promise<MountRecord> {
    const oldSecrets = this.#secrets.get(old.mountId) ?? await this.#store.readSecrets(old.mountId)
    await this.#preflight(rc, spec, timeouts.preflightMs)
    const samePath = old.path === spec.path
    let claimedNew = false
    if (!samePath) {
      claimedNew = this.#claim(spec.path, spec.mountId)
      try {
        await checkMountPoint(spec.path, owner, await readMountinfo())
      } catch (err) {
        if (claimedNew) this.#release(spec.path, spec.mountId)
        throw err
      }
    }
    try {
      await this.#takeDown(old, await this.#snapshot(), { force: false, log })
    } catch (err) {
      if (claimedNew) this.#release(spec.path, spec.mountId)
      throw err
    }
    try {
      const rec = await this.#mountNew(spec, config, rc, owner, timeouts, {
        preflighted: true, inheritDirs: samePath ? old.createdDirs : [], keepDirsOnFailure: samePath
      })
      if (old.fsName !== rec.fsName) await removeCache(this.cacheDir, old.fsName).catch(() => {})
      if (!samePath) {
        await removeCreatedDirs(old.createdDirs)
        this.#release(old.path, old.mountId)
      }
      return rec
    } catch (err) {
      if (claimedNew) this.#release(spec.path, spec.mountId)
      await this.#restore(old, oldSecrets, rc, owner, timeouts.mountMs, log)
      throw err
    }
  }

  /** Puts a replaced mount back after its replacement failed; on failure it shows as failed. */
  async #restore (old: MountRecord, secrets: MountSecrets | undefined, rc: RcClient, owner: SandboxAccount, mountMs: number, log: FastifyBaseLogger): Promise<void> {
    if (secrets === undefined) {
      log.error('the replacement failed and the previous config is gone: the mount stays down')
      return
    }
    try {
      await this.#store.writeSecrets(old.mountId, secrets)
      this.#secrets.set(old.mountId, secrets)
      const spec = buildMountSpec(old.mountId, requestFromRecord(old, secrets), owner)
      await this.#mountAndWait(rc, spec, mountMs)
      log.warn({ path: old.path }, 'the replacement failed; the previous mount is back')
    } catch (err) {
      log.error({ err: { message: scrub((err as Error).message, this.#allRedact(secrets.redact)) } }, 'the replacement failed and the previous mount could not be restored')
    }
  }

  /** Same mountId, old mount dead (daemon gone, stale entry): clear what is left, mount anew. */
  async #reapplyDead (old: MountRecord, spec: MountSpec, config: string, rc: RcClient, owner: SandboxAccount, snap: Snapshot, runtime: { fusermount: string },
    timeouts: { preflightMs: number, mountMs: number }, log: FastifyBaseLogger): Promise<MountRecord> {
    await this.#clearStale(old, snap, runtime.fusermount)
    const samePath = old.path === spec.path
    if (!samePath) {
      await removeCreatedDirs(old.createdDirs)
      this.#release(old.path, old.mountId)
    }
    try {
      const rec = await this.#mountNew(spec, config, rc, owner, timeouts, {
        preflighted: false,
        inheritDirs: samePath ? old.createdDirs : [],
        keepDirsOnFailure: false,
        adoptCacheFrom: old.root === spec.root ? old.fsName : undefined
      })
      if (old.fsName !== rec.fsName && old.root !== spec.root) await this.#dropCacheUnlessDirty(old, log)
      return rec
    } catch (err) {
      // the old mount was already dead: after a failed re-apply the agent forgets it entirely
      // (pending writes stay in the cache for the next apply)
      await this.#store.deleteRecord(old.mountId)
      await this.#store.deleteSecrets(old.mountId)
      this.#records.delete(old.mountId)
      this.#secrets.delete(old.mountId)
      this.#release(old.path, old.mountId)
      if (samePath) await removeCreatedDirs(old.createdDirs)
      throw err
    }
  }

  async #dropCacheUnlessDirty (rec: MountRecord, log: FastifyBaseLogger): Promise<void> {
    const dirty = await countDirty(this.cacheDir, rec.fsName)
    if (dirty === 0) await removeCache(this.cacheDir, rec.fsName).catch(() => {})
    else log.warn({ dirty }, 'kept the cache of unsent writes of the previous mount')
  }

  /** Cleans a mount whose daemon is gone: unmounts the stale kernel entry (ENOTCONN). */
  async #clearStale (rec: MountRecord, snap: Snapshot, fusermount: string): Promise<void> {
    if (snap.rc !== undefined && snap.rcMounts?.has(rec.path) === true) {
      await snap.rc.call('mount/unmount', { mountPoint: rec.path }, { timeoutMs: 15_000 }).catch(() => {})
    }
    const entry = mountAt(await readMountinfo(), rec.path)
    if (entry === undefined || !entry.fsType.startsWith('fuse')) return
    const plain = await fusermountUnmount(fusermount, rec.path)
    if (!plain.ok) {
      const lazy = await fusermountUnmount(fusermount, rec.path, { lazy: true })
      if (!lazy.ok) throw agentError('MOUNT_BUSY', `the dead mount at ${rec.path} could not be cleared: ${lazy.message}`)
    }
  }

  async #flush (rc: RcClient, vfsName: string, timeoutMs: number): Promise<{ ok: boolean, pending: number }> {
    const deadline = Date.now() + timeoutMs
    let quietSince: number | undefined
    for (;;) {
      let pending: number
      try {
        const stats = await rc.call<{ diskCache?: { uploadsQueued?: number, uploadsInProgress?: number } }>('vfs/stats', { fs: vfsName }, { timeoutMs: 5000 })
        pending = (stats.diskCache?.uploadsQueued ?? 0) + (stats.diskCache?.uploadsInProgress ?? 0)
      } catch (err) {
        // No such VFS (any more): nothing of it is left to upload. Any other failure (a slow
        // or busy daemon) proves nothing: keep asking until the deadline.
        if (err instanceof RcError && /no VFS found/i.test(err.message)) return { ok: true, pending: 0 }
        if (err instanceof RcError && err.unreachable) return { ok: false, pending: -1 }
        if (Date.now() >= deadline) return { ok: false, pending: -1 }
        await sleep(100)
        continue
      }
      if (pending === 0) {
        // A writer's close() returns before the kernel hands the release to rclone, which only
        // then queues the upload: trust "nothing pending" once it has held for a while.
        quietSince ??= Date.now()
        if (Date.now() - quietSince >= FLUSH_SETTLE_MS) return { ok: true, pending: 0 }
      } else {
        quietSince = undefined
      }
      if (Date.now() >= deadline) return { ok: false, pending }
      await sleep(50)
    }
  }

  /** Flushes and unmounts; busy or unflushed mounts are refused unless forced. */
  async #takeDown (rec: MountRecord, snap: Snapshot, opts: { force: boolean, log: FastifyBaseLogger }): Promise<void> {
    const fusermount = await this.#fusermount()
    const liveInRcd = snap.rc !== undefined && snap.rcMounts?.has(rec.path) === true
    const entry = mountAt(snap.entries, rec.path)
    if (liveInRcd && snap.rc !== undefined) {
      if (rec.readWrite) {
        const flushed = await this.#flush(snap.rc, rec.vfsName, this.#cfg.flushTimeoutMs)
        if (!flushed.ok) {
          if (!opts.force) {
            const what = flushed.pending < 0 ? 'pending writes (rclone did not report its upload queue)' : `${flushed.pending} write(s)`
            throw agentError('FLUSH_TIMEOUT', `${what} on ${rec.path} did not reach the remote within ${this.#cfg.flushTimeoutMs} ms; try again later, or remove with force=true to discard them`)
          }
          opts.log.warn({ pending: flushed.pending }, 'force: unmounting with writes still pending')
        }
      }
      try {
        await snap.rc.call('mount/unmount', { mountPoint: rec.path }, { timeoutMs: 30_000, redact: this.#allRedact() })
      } catch (err) {
        if (!(err instanceof RcError)) throw err
        const busy = /busy/i.test(err.message)
        if (!opts.force) {
          if (busy) throw agentError('MOUNT_BUSY', `mount point ${rec.path} is busy: a process has a file open or its working directory inside it; stop it, or remove with force=true`)
          throw agentError('MOUNT_FAILED', `unmounting ${rec.path} failed: ${err.message}`)
        }
        const lazy = await fusermountUnmount(fusermount, rec.path, { lazy: true })
        if (!lazy.ok && mountAt(await readMountinfo(), rec.path) !== undefined) throw agentError('MOUNT_FAILED', `unmounting ${rec.path} failed: ${lazy.message}`)
        opts.log.warn('force: detached a busy mount')
      }
      return
    }
    if (rec.readWrite && !opts.force) {
      const dirty = await countDirty(this.cacheDir, rec.fsName)
      if (dirty > 0) {
        throw agentError('FLUSH_TIMEOUT', `${dirty} file(s) written on ${rec.path} never reached the remote because its rclone daemon stopped; re-apply the mount to upload them, or remove with force=true to discard them`)
      }
    }
    if (entry !== undefined && entry.fsType.startsWith('fuse')) {
      const plain = await fusermountUnmount(fusermount, rec.path)
      if (!plain.ok) {
        if (!opts.force) throw agentError('MOUNT_BUSY', `the dead mount at ${rec.path} is busy: ${plain.message}; remove with force=true to detach it`)
        const lazy = await fusermountUnmount(fusermount, rec.path, { lazy: true })
        if (!lazy.ok) throw agentError('MOUNT_FAILED', `unmounting ${rec.path} failed: ${lazy.message}`)
      }
    }
  }

  async #forget (rec: MountRecord, log: FastifyBaseLogger = this.#log): Promise<void> {
    await this.#store.deleteSecrets(rec.mountId)
    // A write rclone has not uploaded stays in its cache (a later mount of the same backend
    // uploads it) rather than being deleted with the mount.
    const dirty = rec.readWrite ? await countDirty(this.cacheDir, rec.fsName) : 0
    if (dirty === 0) await removeCache(this.cacheDir, rec.fsName)
    else log.warn({ dirty }, 'kept the cache of a removed mount: it holds writes not yet uploaded')
    await removeCreatedDirs(rec.createdDirs)
    await this.#store.deleteRecord(rec.mountId)
    this.#records.delete(rec.mountId)
    this.#secrets.delete(rec.mountId)
    this.#probes.delete(rec.mountId)
    this.#release(rec.path, rec.mountId)
  }
}
