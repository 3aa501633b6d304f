import type { FastifyBaseLogger } from 'fastify'

// Lifecycle events: one structured log line per change, with ids and a reason, never a secret.
export type MountEvent = 'added' | 'failed' | 'degraded' | 'remounted' | 'orphan_removed' | 'rotated' | 'removed' | 'recovered' | 'sandbox_destroyed' | 'sandbox_state'

export interface EventSink {
  (event: MountEvent, fields: { sandboxId: string, mountId?: string, reason?: string, [k: string]: unknown }): void
}

export function logEvents (log: FastifyBaseLogger): EventSink {
  return (event, fields) => { log.info({ event, ...fields }, `mount ${event}`) }
}
