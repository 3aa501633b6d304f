import { randomUUID } from 'node:crypto'
import type { FastifyBaseLogger } from 'fastify'
import { configFingerprint, type AgentClient } from '../agent/client.ts'
import type { AgentMount } from '../schemas/agent.ts'
import type { ReconcileReport } from '../schemas/reconcile.ts'
import type { RegistryStore, MountRecord, SandboxRecord } from './registry.ts'
import type { EventSink } from './events.ts'
import { applyRequest, type MountService } from './service.ts'

// Closes the gap between the registry (desired) and what the sandbox's agent reports (actual):
// missing or dead mounts are mounted again from their stored config, unknown live mounts
// (orphans) are unmounted, and adds/removes cut short by a crash are finished. Runs per
// sandbox under the sandbox lock; the periodic loop takes a lease per sandbox so replicas
// sharing one registry do each sandbox once per round.

export interface ReconcilerDeps {
  store: RegistryStore
  agents: AgentClient
  service: MountService
  events: EventSink
  log: FastifyBaseLogger
  intervalMs: number
  /** A replica keeps a sandbox this long after each round; when it dies another takes over. */
  leaseMs: number
  concurrency: number
  now?: () => Date
  /** Observer for metrics: one call per reconcile run with its repairs. */
  onRun?: (report: ReconcileReport) => void
}

type Entry = ReconcileReport['mounts'][number]

export class Reconciler {
  readonly #d: ReconcilerDeps
  readonly #now: () => Date
  readonly holder = `replica-${randomUUID()}`
  #timer: NodeJS.Timeout | undefined
  #round: Promise<void> | undefined
  #closed = false

  constructor (deps: ReconcilerDeps) {
    this.#d = deps
    this.#now = deps.now ?? (() => new Date())
  }

  async reconcileSandbox (sandboxId: string): Promise<ReconcileReport> {
    return await this.#d.store.withSandboxLock(sandboxId, async () => await this.#reconcileLocked(sandboxId))
  }

  async #reconcileLocked (sandboxId: string): Promise<ReconcileReport> {
    const checkedAt = this.#now().toISOString()
    const report: ReconcileReport = { sandboxId, checkedAt, agentReachable: false, mounts: [], orphansRemoved: [] }
    const sandbox = await this.#d.store.getSandbox(sandboxId)
    if (sandbox === undefined) return { ...report, skipped: 'no such sandbox' }
    if (sandbox.state === 'hibernated') return { ...report, skipped: 'hibernated' }
    const desired = await this.#d.store.listMounts(sandboxId)
    const target = this.#d.service.agentTarget(sandbox)
    let live: AgentMount[]
    try {
      live = await this.#d.agents.list(target)
    } catch (err) {
      for (const m of desired) {
        await this.#d.store.updateMount(sandboxId, m.id, { status: 'unknown', lastError: 'agent unreachable', lastCheckedAt: checkedAt })
        report.mounts.push({ mountId: m.id, path: m.path, found: 'unreachable', action: 'unknown', status: 'unknown', error: (err as Error).message })
      }
      this.#d.onRun?.(report)
      return report
    }
    report.agentReachable = true
    const byId = new Map(live.map(m => [m.mountId, m]))
    for (const m of desired) {
      report.mounts.push(await this.#reconcileMount(sandbox, m, byId.get(m.id), checkedAt))
      byId.delete(m.id)
    }
    for (const orphan of byId.values()) {
      try {
        await this.#d.agents.remove(target, orphan.mountId, { force: true })
        report.orphansRemoved.push({ mountId: orphan.mountId, path: orphan.path })
        this.#d.events('orphan_removed', { sandboxId, mountId: orphan.mountId, path: orphan.path, reason: 'live mount not in the registry' })
      } catch (err) {
        this.#d.log.warn({ sandboxId, mountId: orphan.mountId, code: (err as { code?: string }).code }, 'could not remove an orphan mount')
      }
    }
    this.#d.onRun?.(report)
    return report
  }

  async #reconcileMount (sandbox: SandboxRecord, m: MountRecord, live: AgentMount | undefined, checkedAt: string): Promise<Entry> {
    const sandboxId = sandbox.id
    const found = live?.status ?? 'missing'
    const entry = (action: Entry['action'], status: string, error?: string): Entry =>
      ({ mountId: m.id, path: m.path, found, action, status, ...(error === undefined ? {} : { error }) })
    const target = this.#d.service.agentTarget(sandbox)

    if (m.status === 'removing') {
      // A remove was cut short: finish it.
      try {
        await this.#d.agents.remove(target, m.id)
        await this.#d.store.deleteMount(sandboxId, m.id)
        this.#d.events('removed', { sandboxId, mountId: m.id, reason: 'completed by reconciliation' })
        return entry('remove_completed', 'removed')
      } catch (err) {
        const status = live?.status ?? 'failed'
        await this.#d.store.updateMount(sandboxId, m.id, { status, lastError: (err as Error).message, lastCheckedAt: checkedAt, updatedAt: checkedAt })
        return entry('remove_failed', status, (err as Error).message)
      }
    }

    // A rotation cut short between the agent and the registry leaves the VM on a config the
    // registry does not hold: put the registry's back, as for a dead mount.
    const expected = live === undefined ? undefined : this.#storedFingerprint(m)
    const drifted = live !== undefined && expected !== undefined && live.configHash !== expected
    if (live !== undefined && live.status !== 'failed' && !drifted) {
      const lastError = live.lastError ?? null
      await this.#d.store.updateMount(sandboxId, m.id, {
        status: live.status,
        lastError,
        lastCheckedAt: checkedAt,
        ...(live.status !== m.status ? { updatedAt: checkedAt } : {})
      })
      if (m.status === 'pending') {
        this.#d.events('added', { sandboxId, mountId: m.id, reason: 'completed by reconciliation' })
        return entry('add_completed', live.status)
      }
      if (live.status === 'degraded' && m.status !== 'degraded') {
        this.#d.events('degraded', { sandboxId, mountId: m.id, reason: lastError ?? 'remote failing' })
        return entry('marked_degraded', 'degraded', lastError ?? undefined)
      }
      if (live.status === 'mounted' && m.status !== 'mounted') this.#d.events('recovered', { sandboxId, mountId: m.id })
      return entry('none', live.status)
    }

    // Missing or dead: mount it again from the stored config.
    try {
      const applied = await this.#d.agents.apply(target, m.id, applyRequest(m, this.#d.service.openConfig(m)))
      await this.#d.store.updateMount(sandboxId, m.id, { status: applied.status, lastError: applied.lastError ?? null, lastCheckedAt: checkedAt, updatedAt: checkedAt })
      const wasPending = m.status === 'pending'
      this.#d.events(wasPending ? 'added' : 'remounted', { sandboxId, mountId: m.id, reason: wasPending ? 'completed by reconciliation' : drifted ? 'the live config differed from the registry' : `agent reported ${found}` })
      return entry(wasPending ? 'add_completed' : 'remounted', applied.status)
    } catch (err) {
      const message = (err as Error).message
      if (m.status === 'pending') {
        // The caller never got a 201: a failed add leaves nothing behind.
        await this.#d.agents.remove(target, m.id, { force: true }).catch(() => {})
        await this.#d.store.deleteMount(sandboxId, m.id)
        this.#d.events('failed', { sandboxId, mountId: m.id, reason: `unfinished add abandoned: ${message}` })
        return entry('add_abandoned', 'removed', message)
      }
      await this.#d.store.updateMount(sandboxId, m.id, { status: 'failed', lastError: message, lastCheckedAt: checkedAt, updatedAt: checkedAt })
      if (m.status !== 'failed') this.#d.events('failed', { sandboxId, mountId: m.id, reason: message })
      return entry('remount_failed', 'failed', message)
    }
  }

  /** configHash of the registry's config for a mount; undefined when it cannot be opened. */
  #storedFingerprint (m: MountRecord): string | undefined {
    try {
      return configFingerprint(applyRequest(m, this.#d.service.openConfig(m)))
    } catch {
      return undefined
    }
  }

  /** One round over every sandbox, at most `concurrency` at a time, each under a lease. */
  async reconcileAll (): Promise<ReconcileReport[]> {
    const ids = await this.#d.store.listSandboxIds()
    const reports: ReconcileReport[] = []
    const ttl = this.#d.leaseMs
    let next = 0
    const worker = async (): Promise<void> => {
      while (next < ids.length && !this.#closed) {
        const id = ids[next++]
        try {
          if (!await this.#d.store.tryLease(`reconcile:${id}`, this.holder, ttl)) continue
          reports.push(await this.reconcileSandbox(id))
        } catch (err) {
          this.#d.log.warn({ sandboxId: id, code: (err as { code?: string }).code }, 'reconcile failed')
        }
      }
    }
    await Promise.all(Array.from({ length: Math.min(this.#d.concurrency, ids.length) }, worker))
    return reports
  }

  /** Starts the periodic loop (and a first round now). */
  start (): void {
    if (this.#d.intervalMs <= 0) return
    const tick = (): void => {
      if (this.#closed || this.#round !== undefined) return
      this.#round = this.reconcileAll().then(() => {}, () => {}).finally(() => { this.#round = undefined })
    }
    tick()
    this.#timer = setInterval(tick, this.#d.intervalMs)
    this.#timer.unref()
  }

  async close (): Promise<void> {
    this.#closed = true
    if (this.#timer !== undefined) clearInterval(this.#timer)
    await this.#round
  }
}
