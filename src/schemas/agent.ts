import { Type, type Static } from '@sinclair/typebox'

// Wire protocol between the control plane and the in-VM agent (docs/agent-protocol.md).
// Every request carries `Authorization: Bearer <agentToken>`.

export const AgentMountStatus = Type.Union([
  Type.Literal('mounted'),
  Type.Literal('degraded'),
  Type.Literal('failed')
])
export type AgentMountStatus = Static<typeof AgentMountStatus>

/** PUT /v1/mounts/:mountId — apply (create, or replace the configuration of) one mount. */
export const AgentApplyRequest = Type.Object({
  path: Type.String({ description: 'Absolute mount point inside the VM' }),
  /** Canonical rclone config text, rendered by the control plane; holds exactly the sections needed. */
  config: Type.String(),
  /** Section of `config` that is mounted. */
  section: Type.String(),
  /** Path inside the remote (the part of `remote` after the colon). */
  root: Type.String(),
  readWrite: Type.Boolean(),
  /** Canonical, already-validated mount flags: ["--dir-cache-time", "1m", ...]. */
  mountOptions: Type.Array(Type.String()),
  /** Values to scrub from anything the agent returns or logs (secret values and their obscured forms). */
  redact: Type.Array(Type.String()),
  preflightTimeoutMs: Type.Optional(Type.Integer({ minimum: 100 })),
  mountTimeoutMs: Type.Optional(Type.Integer({ minimum: 100 }))
}, { additionalProperties: false })
export type AgentApplyRequest = Static<typeof AgentApplyRequest>

export const AgentMount = Type.Object({
  mountId: Type.String(),
  path: Type.String(),
  readWrite: Type.Boolean(),
  status: AgentMountStatus,
  lastError: Type.Optional(Type.String()),
  /** Fingerprint of the applied config (sha256 hex of config+section+root+flags); lets the control plane see drift. */
  configHash: Type.String()
})
export type AgentMount = Static<typeof AgentMount>

export const AgentMountList = Type.Object({ mounts: Type.Array(AgentMount) })
export type AgentMountList = Static<typeof AgentMountList>

export const AgentCapabilities = Type.Object({
  rcloneVersion: Type.Union([Type.String(), Type.Null()]),
  fusermount3: Type.Boolean(),
  ready: Type.Boolean(),
  processModel: Type.String()
})
export type AgentCapabilities = Static<typeof AgentCapabilities>

export const AgentErrorCode = Type.Union([
  Type.Literal('UNAUTHORIZED'),
  Type.Literal('BAD_REQUEST'),
  Type.Literal('RUNTIME_MISSING'),
  Type.Literal('MOUNT_POINT_REFUSED'),
  Type.Literal('PREFLIGHT_FAILED'),
  Type.Literal('MOUNT_FAILED'),
  Type.Literal('MOUNT_BUSY'),
  Type.Literal('FLUSH_TIMEOUT'),
  Type.Literal('NOT_FOUND'),
  Type.Literal('INTERNAL')
])
export type AgentErrorCode = Static<typeof AgentErrorCode>

export const AgentErrorBody = Type.Object({
  error: Type.Object({
    code: AgentErrorCode,
    message: Type.String(),
    /** Last lines of rclone's output with every redact value replaced by ***. */
    logTail: Type.Optional(Type.String())
  })
})
export type AgentErrorBody = Static<typeof AgentErrorBody>
