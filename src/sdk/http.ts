import { errorFromResponse, INVALID_RESPONSE, NETWORK_ERROR, SandboxMountsError, TIMEOUT } from './errors.ts'

// One request to the control plane: bearer auth, JSON in and out, a deadline, and every
// failure turned into a SandboxMountsError. Request bodies never reach an error message.

export type FetchLike = (input: string, init: RequestInit) => Promise<Response>

export interface Transport {
  baseUrl: string
  apiKey: string
  fetch: FetchLike
  timeoutMs: number
}

export interface RequestOptions {
  query?: Record<string, string | number | boolean | undefined>
  body?: unknown
  idempotencyKey?: string
}

function urlFor (t: Transport, path: string, query: RequestOptions['query']): string {
  const params = new URLSearchParams()
  for (const [k, v] of Object.entries(query ?? {})) {
    if (v !== undefined) params.set(k, String(v))
  }
  const qs = params.toString()
  return `${t.baseUrl}${path}${qs === '' ? '' : `?${qs}`}`
}

/** Sends one request; resolves to the parsed JSON body (undefined for 204), rejects with SandboxMountsError. */
export async function request<T> (t: Transport, method: string, path: string, opts: RequestOptions = {}): Promise<T> {
  const headers: Record<string, string> = { accept: 'application/json', authorization: `Bearer ${t.apiKey}` }
  if (opts.body !== undefined) headers['content-type'] = 'application/json'
  if (opts.idempotencyKey !== undefined) headers['idempotency-key'] = opts.idempotencyKey
  const url = urlFor(t, path, opts.query)
  let res: Response
  let text: string
  try {
    res = await t.fetch(url, {
      method,
      headers,
      body: opts.body === undefined ? undefined : JSON.stringify(opts.body),
      signal: AbortSignal.timeout(t.timeoutMs)
    })
    text = await res.text()
  } catch (err) {
    const name = (err as { name?: string }).name
    if (name === 'TimeoutError' || name === 'AbortError') {
      throw new SandboxMountsError({ status: 0, code: TIMEOUT, message: `${method} ${path}: no answer within ${t.timeoutMs} ms`, cause: err })
    }
    const cause = (err as { cause?: { code?: string } }).cause
    const why = typeof cause?.code === 'string' ? cause.code : (err as Error).message
    throw new SandboxMountsError({ status: 0, code: NETWORK_ERROR, message: `cannot reach ${t.baseUrl} (${why})`, cause: err })
  }
  const requestId = res.headers.get('x-request-id') ?? undefined
  if (!res.ok) throw errorFromResponse(res.status, text, requestId)
  if (res.status === 204 || text === '') return undefined as T
  try {
    return JSON.parse(text) as T
  } catch {
    throw new SandboxMountsError({ status: res.status, code: INVALID_RESPONSE, message: `${method} ${path}: the answer is not JSON`, requestId })
  }
}
