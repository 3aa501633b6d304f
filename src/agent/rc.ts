// HTTP client for rclone's remote control (rcd). rcd's error answers echo the whole request
// input, credentials included: only their `error` string is ever kept, and it is scrubbed
// by the caller's redact values before it goes anywhere.

import { scrub } from './scrub.ts'

export interface RcEndpoint {
  url: string
  user: string
  pass: string
}

export class RcError extends Error {
  /** HTTP status of rcd's answer; 0 when rcd could not be reached; -1 on timeout. */
  readonly status: number
  constructor (message: string, status: number) {
    super(message)
    this.status = status
  }

  get unreachable (): boolean {
    return this.status === 0
  }

  get timedOut (): boolean {
    return this.status === -1
  }
}

export interface RcCallOptions {
  timeoutMs?: number
  /** Secret values to scrub from an error message. */
  redact?: readonly string[]
}

export class RcClient {
  readonly #endpoint: RcEndpoint
  readonly #auth: string

  constructor (endpoint: RcEndpoint) {
    this.#endpoint = endpoint
    this.#auth = 'Basic ' + Buffer.from(`${endpoint.user}:${endpoint.pass}`).toString('base64')
  }

  get url (): string {
    return this.#endpoint.url
  }

  async call<T = Record<string, unknown>> (method: string, params: Record<string, unknown> = {}, opts: RcCallOptions = {}): Promise<T> {
    const redact = [...(opts.redact ?? []), this.#endpoint.pass]
    const timeoutMs = opts.timeoutMs ?? 30_000
    let res: Response
    try {
      res = await fetch(`${this.#endpoint.url}/${method}`, {
        method: 'POST',
        headers: { authorization: this.#auth, 'content-type': 'application/json' },
        body: JSON.stringify(params),
        signal: AbortSignal.timeout(timeoutMs)
      })
    } catch (err) {
      const name = (err as Error).name
      if (name === 'TimeoutError' || name === 'AbortError') throw new RcError(`rclone ${method} did not answer within ${timeoutMs} ms`, -1)
      throw new RcError('the rclone daemon is not reachable', 0)
    }
    let body: unknown
    try {
      const text = await res.text()
      body = text === '' ? {} : JSON.parse(text)
    } catch (err) {
      const name = (err as Error).name
      if (name === 'TimeoutError' || name === 'AbortError') throw new RcError(`rclone ${method} did not answer within ${timeoutMs} ms`, -1)
      throw new RcError(`rclone ${method} answered HTTP ${res.status} without JSON`, res.status)
    }
    if (!res.ok) {
      const error = (body as { error?: unknown } | null)?.error
      const message = typeof error === 'string' && error !== '' ? error : `HTTP ${res.status}`
      throw new RcError(scrub(message, redact), res.status)
    }
    return body as T
  }
}
