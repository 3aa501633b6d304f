import { Type } from '@sinclair/typebox'
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { AgentApplyRequest, AgentCapabilities, AgentErrorBody, AgentMount, AgentMountList } from '../schemas/agent.ts'
import type { MountManager } from './manager.ts'

// The agent's HTTP surface (docs/agent-protocol.md). Handlers only translate HTTP to the
// manager; the manager's errors carry their status and code.

const MountParams = Type.Object({
  mountId: Type.String({ minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9_-]+$' })
})

export const AgentApplyResponse = Type.Composite([AgentMount, Type.Object({
  outcome: Type.Union([Type.Literal('created'), Type.Literal('replaced'), Type.Literal('unchanged')])
})])

const errors = { 400: AgentErrorBody, 401: AgentErrorBody, 404: AgentErrorBody, 409: AgentErrorBody, 422: AgentErrorBody, 424: AgentErrorBody, 500: AgentErrorBody, 502: AgentErrorBody }

const agentRoutes: FastifyPluginAsyncTypebox<{ manager: MountManager }> = async (app, { manager }) => {
  app.get('/healthz', {
    schema: {
      operationId: 'agentHealth',
      description: 'The agent answers; reports whether its rclone daemon runs',
      response: { 200: Type.Object({ ok: Type.Boolean(), rcd: Type.Union([Type.Literal('running'), Type.Literal('stopped')]), mounts: Type.Integer() }), ...errors }
    }
  }, async () => ({ ok: true, rcd: await manager.daemonRunning() ? 'running' as const : 'stopped' as const, mounts: manager.size }))

  app.get('/v1/capabilities', {
    schema: { operationId: 'agentCapabilities', description: 'What the sandbox image provides', response: { 200: AgentCapabilities, ...errors } }
  }, async () => await manager.capabilities())

  app.get('/v1/mounts', {
    schema: { operationId: 'agentListMounts', description: 'Every mount the agent manages, with live health', response: { 200: AgentMountList, ...errors } }
  }, async () => ({ mounts: await manager.list() }))

  app.get('/v1/mounts/:mountId', {
    schema: { operationId: 'agentGetMount', description: 'One mount with live health', params: MountParams, response: { 200: AgentMount, ...errors } }
  }, async request => await manager.get(request.params.mountId))

  app.put('/v1/mounts/:mountId', {
    schema: {
      operationId: 'agentApplyMount',
      description: 'Create, keep (same config, live) or replace one mount; answers once it is live or failed',
      params: MountParams,
      body: AgentApplyRequest,
      response: { 200: AgentApplyResponse, 201: AgentApplyResponse, ...errors }
    }
  }, async (request, reply) => {
    const { mount, outcome } = await manager.apply(request.params.mountId, request.body, request.log)
    return await reply.code(outcome === 'created' ? 201 : 200).send({ ...mount, outcome })
  })

  app.delete('/v1/mounts/:mountId', {
    schema: {
      operationId: 'agentRemoveMount',
      description: 'Flush, unmount and delete everything of one mount; 204 also when it is already gone',
      params: MountParams,
      querystring: Type.Object({ force: Type.Optional(Type.Boolean({ default: false })) }),
      response: { 204: Type.Null(), ...errors }
    }
  }, async (request, reply) => {
    await manager.remove(request.params.mountId, { force: request.query.force === true }, request.log)
    return await reply.code(204).send(null)
  })
}

export default agentRoutes
