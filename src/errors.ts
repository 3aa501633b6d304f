import createError from '@fastify/error'

// One error vocabulary for the control plane and the agent. Every error body is
// { error: { code, message } }; the code is stable and machine-readable, the message names
// the offending field. Messages never carry secret values.

export const ValidationFailed = createError('VALIDATION_FAILED', '%s', 400)
export const UnknownField = createError('UNKNOWN_FIELD', '%s', 400)
export const InvalidPath = createError('INVALID_PATH', '%s', 400)
export const InvalidRemote = createError('INVALID_REMOTE', '%s', 400)
export const UnknownBackend = createError('UNKNOWN_BACKEND', '%s', 400)
export const InvalidCredentials = createError('INVALID_CREDENTIALS', '%s', 400)
export const InvalidConfig = createError('INVALID_RCLONE_CONFIG', '%s', 400)
export const RefusedOption = createError('REFUSED_OPTION', '%s', 400)
export const RefusedMountOption = createError('REFUSED_MOUNT_OPTION', '%s', 400)
export const BodyTooLarge = createError('BODY_TOO_LARGE', '%s', 413)
export const Unauthorized = createError('UNAUTHORIZED', '%s', 401)
export const Forbidden = createError('FORBIDDEN', '%s', 403)
export const SandboxNotFound = createError('SANDBOX_NOT_FOUND', '%s', 404)
export const MountNotFound = createError('MOUNT_NOT_FOUND', '%s', 404)
export const CredentialNotFound = createError('CREDENTIAL_NOT_FOUND', '%s', 404)
export const PathConflict = createError('MOUNT_PATH_CONFLICT', '%s', 409)
export const CredentialInUse = createError('CREDENTIAL_IN_USE', '%s', 409)
export const CredentialExists = createError('CREDENTIAL_EXISTS', '%s', 409)
export const SandboxHibernated = createError('SANDBOX_HIBERNATED', '%s', 409)
export const MountBusy = createError('MOUNT_BUSY', '%s', 409)
export const IdempotencyConflict = createError('IDEMPOTENCY_KEY_REUSED', '%s', 422)
export const MountPointRefused = createError('MOUNT_POINT_REFUSED', '%s', 409)
export const RemoteUnreachable = createError('REMOTE_PREFLIGHT_FAILED', '%s', 422)
export const RuntimeMissing = createError('SANDBOX_RUNTIME_MISSING', '%s', 424)
export const MountFailed = createError('MOUNT_FAILED', '%s', 502)
export const FlushPending = createError('MOUNT_FLUSH_PENDING', '%s', 409)
export const AgentAuthFailed = createError('AGENT_AUTH_FAILED', '%s', 502)
export const InvalidJson = createError('INVALID_JSON', '%s', 400)
export const UnsupportedMediaType = createError('UNSUPPORTED_MEDIA_TYPE', '%s', 415)
export const SandboxConflict = createError('SANDBOX_CONFLICT', '%s', 409)
export const NotFound = createError('NOT_FOUND', '%s', 404)
export const RateLimited = createError('RATE_LIMITED', '%s', 429)
export const AgentUnreachable = createError('AGENT_UNREACHABLE', '%s', 503)
export const AgentError = createError('AGENT_ERROR', '%s', 502)
export const AgentTimeout = createError('AGENT_TIMEOUT', '%s', 504)
export const Overloaded = createError('OVERLOADED', '%s', 503)
export const StoreUnavailable = createError('STORE_UNAVAILABLE', '%s', 503)

export interface CodedError extends Error {
  code: string
  statusCode?: number
  /** Extra, secret-free detail returned to the caller (e.g. a scrubbed rclone log tail). */
  detail?: unknown
}

export function withDetail<E extends Error> (err: E, detail: unknown): E & { detail: unknown } {
  return Object.assign(err, { detail })
}
