import createError from '@fastify/error'
import type { AgentErrorCode } from '../schemas/agent.ts'

// The agent's error vocabulary (docs/agent-protocol.md). Messages are built from scrubbed text
// only; `logTail` carries the scrubbed tail of rclone's log when it helps.

export const AGENT_ERROR_STATUS: Readonly<Record<AgentErrorCode, number>> = {
  UNAUTHORIZED: 401,
  BAD_REQUEST: 400,
  RUNTIME_MISSING: 424,
  MOUNT_POINT_REFUSED: 409,
  PREFLIGHT_FAILED: 422,
  MOUNT_FAILED: 502,
  MOUNT_BUSY: 409,
  FLUSH_TIMEOUT: 409,
  NOT_FOUND: 404,
  INTERNAL: 500
}

const ctors = Object.fromEntries(
  (Object.keys(AGENT_ERROR_STATUS) as AgentErrorCode[]).map(code => [code, createError(code, '%s', AGENT_ERROR_STATUS[code])])
) as Record<AgentErrorCode, ReturnType<typeof createError>>

export interface AgentFailure extends Error {
  code: AgentErrorCode
  statusCode: number
  logTail?: string
}

export function agentError (code: AgentErrorCode, message: string, logTail?: string): AgentFailure {
  const err = new ctors[code](message) as AgentFailure
  if (logTail !== undefined && logTail !== '') err.logTail = logTail
  return err
}

export function isAgentFailure (err: unknown): err is AgentFailure {
  if (!(err instanceof Error)) return false
  const code: unknown = (err as Error & { code?: unknown }).code
  return typeof code === 'string' && Object.hasOwn(AGENT_ERROR_STATUS, code)
}

export const RUNTIME_MISSING_MESSAGE = 'sandbox image is missing rclone and/or fusermount3'
