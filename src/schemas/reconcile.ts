import { Type, type Static } from '@sinclair/typebox'

export const ReconcileAction = Type.Union([
  Type.Literal('none'), Type.Literal('remounted'), Type.Literal('remount_failed'), Type.Literal('marked_degraded'),
  Type.Literal('marked_failed'), Type.Literal('add_completed'), Type.Literal('add_abandoned'), Type.Literal('remove_completed'),
  Type.Literal('remove_failed'), Type.Literal('unknown')
])

export const ReconcileReport = Type.Object({
  sandboxId: Type.String(),
  checkedAt: Type.String({ format: 'date-time' }),
  agentReachable: Type.Boolean(),
  skipped: Type.Optional(Type.String({ description: 'Why nothing was done (e.g. hibernated)' })),
  mounts: Type.Array(Type.Object({
    mountId: Type.String(),
    path: Type.String(),
    found: Type.String({ description: 'What the agent reported: mounted, degraded, failed or missing' }),
    action: ReconcileAction,
    status: Type.String(),
    error: Type.Optional(Type.String())
  })),
  orphansRemoved: Type.Array(Type.Object({ mountId: Type.String(), path: Type.String() }))
})
export type ReconcileReport = Static<typeof ReconcileReport>

export const SandboxEvent = Type.Object({
  type: Type.Union([Type.Literal('hibernating'), Type.Literal('woke'), Type.Literal('restarted'), Type.Literal('destroyed')])
}, { additionalProperties: false })
export type SandboxEvent = Static<typeof SandboxEvent>
