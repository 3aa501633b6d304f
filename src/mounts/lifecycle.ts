import type { ReconcileReport, SandboxEvent } from '../schemas/reconcile.ts'
import type { RegistryStore } from './registry.ts'
import type { EventSink } from './events.ts'
import type { MountService, Principal } from './service.ts'
import type { Reconciler } from './reconciler.ts'

// Sandbox lifecycle from the orchestrator. Hibernation tears nothing down (the VM snapshot
// keeps the FUSE mounts and the daemon); waking or a cold restart reconciles; destruction
// drops the sandbox's registry entries and every secret sealed for it.

export class Lifecycle {
  readonly #store: RegistryStore
  readonly #service: MountService
  readonly #reconciler: Reconciler
  readonly #events: EventSink
  readonly #now: () => Date

  constructor (deps: { store: RegistryStore, service: MountService, reconciler: Reconciler, events: EventSink, now?: () => Date }) {
    this.#store = deps.store
    this.#service = deps.service
    this.#reconciler = deps.reconciler
    this.#events = deps.events
    this.#now = deps.now ?? (() => new Date())
  }

  async reconcile (principal: Principal, sandboxId: string): Promise<ReconcileReport> {
    await this.#service.sandboxFor(principal, sandboxId)
    return await this.#reconciler.reconcileSandbox(sandboxId)
  }

  async event (sandboxId: string, type: SandboxEvent['type']): Promise<ReconcileReport | undefined> {
    await this.#service.sandboxFor({ kind: 'internal' }, sandboxId)
    const now = this.#now().toISOString()
    switch (type) {
      case 'hibernating':
        await this.#store.withSandboxLock(sandboxId, async () => { await this.#store.setSandboxState(sandboxId, 'hibernated', now) })
        this.#events('sandbox_state', { sandboxId, reason: 'hibernating' })
        return undefined
      case 'woke':
      case 'restarted':
        await this.#store.withSandboxLock(sandboxId, async () => { await this.#store.setSandboxState(sandboxId, 'running', now) })
        this.#events('sandbox_state', { sandboxId, reason: type })
        return await this.#reconciler.reconcileSandbox(sandboxId)
      case 'destroyed':
        await this.#store.withSandboxLock(sandboxId, async () => { await this.#store.deleteSandbox(sandboxId) })
        this.#events('sandbox_destroyed', { sandboxId, reason: 'destroyed' })
        return undefined
    }
  }
}
