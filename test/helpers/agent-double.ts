import Fastify, { type FastifyInstance } from 'fastify'
import { createHash } from 'node:crypto'
import type { AgentApplyRequest, AgentMount, AgentErrorCode } from '../../src/schemas/agent.ts'
import { AGENT_ERROR_STATUS } from '../../src/agent/errors.ts'

// The only test double allowed: an agent that speaks docs/agent-protocol.md over real HTTP,
// keeps mounts in memory, and can be told to fail, stall or answer garbage.

export interface AgentDouble {
  url: string
  token: string
  mounts: Map<string, AgentMount & { request: AgentApplyRequest }>
  calls: Array<{ method: string, url: string }>
  /** An apply fails with this agent error code (once), after `skip` applies that succeed. */
  failNextApply: (code: AgentErrorCode, message?: string, logTail?: string, skip?: number) => void
  failNextRemove: (code: AgentErrorCode, message?: string) => void
  setStatus: (mountId: string, status: AgentMount['status'], lastError?: string) => void
  /** Every request waits this long before answering. */
  delayMs: number
  /** Answer every request with a non-JSON body. */
  garbage: boolean
  close: () => Promise<void>
}

export async function startAgentDouble (token = 'agent-token-0123456789abcdef'): Promise<AgentDouble> {
  const app: FastifyInstance = Fastify({ logger: false })
  let nextApplyError: { code: AgentErrorCode, message: string, logTail?: string, skip: number } | undefined
  let nextRemoveError: { code: AgentErrorCode, message: string } | undefined
  const state: AgentDouble = {
    url: '',
    token,
    mounts: new Map(),
    calls: [],
    delayMs: 0,
    garbage: false,
    failNextApply: (code, message = 'failed', logTail, skip = 0) => { nextApplyError = { code, message, logTail, skip } },
    failNextRemove: (code, message = 'failed') => { nextRemoveError = { code, message } },
    setStatus: (mountId, status, lastError) => {
      const m = state.mounts.get(mountId)
      if (m !== undefined) { m.status = status; m.lastError = lastError }
    },
    close: async () => { await app.close() }
  }
  const fail = (reply: import('fastify').FastifyReply, code: AgentErrorCode, message: string, logTail?: string) =>
    reply.code(AGENT_ERROR_STATUS[code]).send({ error: { code, message, ...(logTail === undefined ? {} : { logTail }) } })

  app.addHook('onRequest', async (request, reply) => {
    state.calls.push({ method: request.method, url: request.url })
    if (state.delayMs > 0) await new Promise(resolve => setTimeout(resolve, state.delayMs))
    if (state.garbage) return await reply.code(200).header('content-type', 'application/json').send('{not json')
    if (request.headers.authorization !== `Bearer ${token}`) return await fail(reply, 'UNAUTHORIZED', 'no')
  })
  app.get('/v1/capabilities', async () => ({ rcloneVersion: 'v1.60.1-double', fusermount3: true, ready: true, processModel: 'double' }))
  app.get('/v1/mounts', async () => ({ mounts: [...state.mounts.values()].map(({ request, ...m }) => m) }))
  app.get<{ Params: { id: string } }>('/v1/mounts/:id', async (request, reply) => {
    const m = state.mounts.get(request.params.id)
    if (m === undefined) return await fail(reply, 'NOT_FOUND', 'no such mount')
    const { request: _req, ...rest } = m
    return rest
  })
  app.put<{ Params: { id: string }, Body: AgentApplyRequest }>('/v1/mounts/:id', async (request, reply) => {
    if (nextApplyError !== undefined && nextApplyError.skip-- <= 0) {
      const e = nextApplyError
      nextApplyError = undefined
      return await fail(reply, e.code, e.message, e.logTail)
    }
    const body = request.body
    const configHash = createHash('sha256').update(JSON.stringify([body.config, body.section, body.root, body.mountOptions, body.readWrite])).digest('hex')
    const m = { mountId: request.params.id, path: body.path, readWrite: body.readWrite, status: 'mounted' as const, configHash, request: body }
    state.mounts.set(request.params.id, m)
    const { request: _req, ...rest } = m
    return rest
  })
  app.delete<{ Params: { id: string } }>('/v1/mounts/:id', async (request, reply) => {
    if (nextRemoveError !== undefined) {
      const e = nextRemoveError
      nextRemoveError = undefined
      return await fail(reply, e.code, e.message)
    }
    state.mounts.delete(request.params.id)
    return await reply.code(204).send()
  })
  state.url = await app.listen({ host: '127.0.0.1', port: 0 })
  return state
}
