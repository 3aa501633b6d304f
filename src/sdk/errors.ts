// The one error the SDK throws. API answers keep the service's stable `code`; failures to
// reach the service get codes of their own so callers can tell "refused" from "unreachable".

export const NETWORK_ERROR = 'NETWORK_ERROR'
export const TIMEOUT = 'TIMEOUT'
export const INVALID_RESPONSE = 'INVALID_RESPONSE'

export class SandboxMountsError extends Error {
  /** HTTP status of the answer; 0 when no answer arrived. */
  readonly status: number
  /** The service's error code (e.g. MOUNT_PATH_CONFLICT), or NETWORK_ERROR, TIMEOUT, INVALID_RESPONSE. */
  readonly code: string
  /** Secret-free detail from the service, e.g. the scrubbed tail of rclone's log. */
  readonly detail: unknown
  /** The service's request id (x-request-id), to find the request in its log. */
  readonly requestId: string | undefined

  constructor (opts: { status: number, code: string, message: string, detail?: unknown, requestId?: string, cause?: unknown }) {
    super(opts.message, opts.cause === undefined ? undefined : { cause: opts.cause })
    this.name = 'SandboxMountsError'
    this.status = opts.status
    this.code = opts.code
    this.detail = opts.detail
    this.requestId = opts.requestId
  }
}

interface ErrorShape { error?: { code?: unknown, message?: unknown, detail?: unknown } }

/** Builds the error for a non-2xx answer from its (possibly non-JSON) body. */
export function errorFromResponse (status: number, text: string, requestId: string | undefined): SandboxMountsError {
  let parsed: ErrorShape | undefined
  try {
    parsed = JSON.parse(text) as ErrorShape
  } catch {}
  const e = parsed?.error
  if (e !== undefined && typeof e.code === 'string' && typeof e.message === 'string') {
    return new SandboxMountsError({ status, code: e.code, message: e.message, detail: e.detail, requestId })
  }
  // A proxy or a crashed service: the body is not ours, so it is not repeated.
  return new SandboxMountsError({ status, code: `HTTP_${status}`, message: `the service answered ${status} without an error body`, requestId })
}
