import { createHash } from 'node:crypto'
import type { Static, TSchema } from '@sinclair/typebox'
import { Value } from '@sinclair/typebox/value'
import { AgentCapabilities, AgentMount, AgentMountList, type AgentApplyRequest, type AgentErrorBody } from '../schemas/agent.ts'
import {
  AgentAuthFailed, AgentError, AgentTimeout, AgentUnreachable, FlushPending, MountBusy, MountFailed,
  MountPointRefused, RemoteUnreachable, RuntimeMissing, withDetail
} from '../errors.ts'

// The control plane's typed client for the in-VM agent (docs/agent-protocol.md). Transport
// failures become AGENT_UNREACHABLE (503) or AGENT_TIMEOUT (504); the agent's own error codes
// become the control plane's codes. Nothing from the request (config, token) is ever put into
// an error. Answers are checked against the protocol's schemas (a broken or hostile agent gets
// AGENT_ERROR, not a crash), and redirects are never followed: the request body carries secrets.

/** The protocol's configHash of an apply request: what the agent reports for the config it runs. */
export function configFingerprint (req: Pick<AgentApplyRequest, 'config' | 'section' | 'root' | 'mountOptions' | 'readWrite'>): string {
  return createHash('sha256').update(JSON.stringify([req.config, req.section, req.root, req.mountOptions, req.readWrite])).digest('hex')
}

export interface AgentTarget {
  sandboxId: string
  url: string
  token: string
}

export interface AgentCallOptions {
  timeoutMs?: number
}

export interface AgentCallObserver {
  (op: string, outcome: 'ok' | 'error', seconds: number): void
}

export class AgentClient {
  readonly #timeoutMs: number
  readonly #observe?: AgentCallObserver

  constructor (opts: { timeoutMs: number, observe?: AgentCallObserver }) {
    this.#timeoutMs = opts.timeoutMs
    this.#observe = opts.observe
  }

  async capabilities (target: AgentTarget): Promise<AgentCapabilities> {
    return await this.#call(target, 'capabilities', 'GET', '/v1/capabilities', AgentCapabilities)
  }

  async apply (target: AgentTarget, mountId: string, req: AgentApplyRequest): Promise<AgentMount> {
    return await this.#call(target, 'apply', 'PUT', `/v1/mounts/${encodeURIComponent(mountId)}`, AgentMount, req)
  }

  async remove (target: AgentTarget, mountId: string, opts: { force?: boolean } = {}): Promise<void> {
    const q = opts.force === true ? '?force=true' : ''
    await this.#call(target, 'remove', 'DELETE', `/v1/mounts/${encodeURIComponent(mountId)}${q}`, undefined)
  }

  async list (target: AgentTarget, opts: AgentCallOptions = {}): Promise<AgentMount[]> {
    const body = await this.#call(target, 'list', 'GET', '/v1/mounts', AgentMountList, undefined, opts)
    return body.mounts
  }

  /** One mount's live state, or undefined when the agent does not know it. */
  async get (target: AgentTarget, mountId: string, opts: AgentCallOptions = {}): Promise<AgentMount | undefined> {
    try {
      return await this.#call(target, 'get', 'GET', `/v1/mounts/${encodeURIComponent(mountId)}`, AgentMount, undefined, opts)
    } catch (err) {
      if ((err as { agentCode?: string }).agentCode === 'NOT_FOUND') return undefined
      throw err
    }
  }

  async #call<S extends TSchema | undefined> (target: AgentTarget, op: string, method: string, pathname: string, schema: S, body?: unknown, opts: AgentCallOptions = {}): Promise<S extends TSchema ? Static<S> : undefined> {
    const started = performance.now()
    let outcome: 'ok' | 'error' = 'error'
    try {
      const result = await this.#send(target, method, pathname, body, opts.timeoutMs ?? this.#timeoutMs)
      if (schema !== undefined && !Value.Check(schema, result)) {
        throw new AgentError(`the agent of sandbox ${target.sandboxId} answered ${op} with a body that does not match the agent protocol`)
      }
      outcome = 'ok'
      return result as S extends TSchema ? Static<S> : undefined
    } finally {
      this.#observe?.(op, outcome, (performance.now() - started) / 1000)
    }
  }

  async #send (target: AgentTarget, method: string, pathname: string, body: unknown, timeoutMs: number): Promise<unknown> {
    let res: Response
    try {
      res = await fetch(new URL(pathname, target.url), {
        method,
        headers: {
          authorization: `Bearer ${target.token}`,
          ...(body === undefined ? {} : { 'content-type': 'application/json' })
        },
        body: body === undefined ? undefined : JSON.stringify(body),
        redirect: 'manual',
        signal: AbortSignal.timeout(timeoutMs)
      })
    } catch (err) {
      const name = (err as Error).name
      if (name === 'TimeoutError' || name === 'AbortError') {
        throw new AgentTimeout(`the agent of sandbox ${target.sandboxId} did not answer within ${timeoutMs} ms`)
      }
      throw new AgentUnreachable(`the agent of sandbox ${target.sandboxId} is unreachable`)
    }
    let text: string
    try {
      text = await res.text()
    } catch (err) {
      if ((err as Error).name === 'TimeoutError') throw new AgentTimeout(`the agent of sandbox ${target.sandboxId} did not answer within ${timeoutMs} ms`)
      throw new AgentUnreachable(`the agent of sandbox ${target.sandboxId} closed the connection`)
    }
    if (res.status === 204) return undefined
    if (res.status >= 300 && res.status < 400) throw new AgentError(`the agent of sandbox ${target.sandboxId} answered with a redirect (HTTP ${res.status}); agents must answer directly`)
    let parsed: unknown
    try {
      parsed = text === '' ? undefined : JSON.parse(text)
    } catch {
      throw new AgentError(`the agent of sandbox ${target.sandboxId} answered with something that is not JSON (HTTP ${res.status})`)
    }
    if (res.ok) {
      if (parsed === null || typeof parsed !== 'object') throw new AgentError(`the agent of sandbox ${target.sandboxId} answered without a body`)
      return parsed
    }
    throw toError(target.sandboxId, res.status, parsed)
  }
}

function toError (sandboxId: string, status: number, body: unknown): Error {
  const e = (body as Partial<AgentErrorBody> | undefined)?.error
  if (e === undefined || typeof e.code !== 'string') {
    return new AgentError(`the agent of sandbox ${sandboxId} failed with HTTP ${status}`)
  }
  const message = typeof e.message === 'string' ? e.message.slice(0, 2000) : 'no message'
  const detail = typeof e.logTail === 'string' && e.logTail !== '' ? { logTail: e.logTail.slice(-4000) } : undefined
  let err: Error
  switch (e.code) {
    case 'RUNTIME_MISSING': err = new RuntimeMissing(message); break
    case 'MOUNT_POINT_REFUSED': err = new MountPointRefused(message); break
    case 'PREFLIGHT_FAILED': err = new RemoteUnreachable(`the remote did not answer a listing: ${message}`); break
    case 'MOUNT_FAILED': err = new MountFailed(message); break
    case 'MOUNT_BUSY': err = new MountBusy(message); break
    case 'FLUSH_TIMEOUT': err = new FlushPending(message); break
    case 'UNAUTHORIZED': err = new AgentAuthFailed(`the agent of sandbox ${sandboxId} refused the control plane's token`); break
    default: err = new AgentError(`the agent of sandbox ${sandboxId} failed: ${message}`)
  }
  return Object.assign(detail === undefined ? err : withDetail(err, detail), { agentCode: e.code })
}
