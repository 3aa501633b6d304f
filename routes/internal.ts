import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { ErrorBody } from '../src/schemas/common.ts'
import { SandboxParams } from '../src/schemas/mount.ts'
import { Sandbox, SandboxRegister } from '../src/schemas/sandbox.ts'
import type { MountService } from '../src/mounts/service.ts'

// Orchestrator-only routes (INTERNAL_TOKEN): sandbox registration.

export interface InternalRoutesOptions { service: MountService }

const internalRoutes: FastifyPluginAsyncTypebox<InternalRoutesOptions> = async (app, { service }) => {
  app.addHook('preHandler', app.requireInternal)

  app.put('/internal/sandboxes/:sandboxId', {
    schema: {
      operationId: 'registerSandbox',
      tags: ['internal'],
      summary: 'Register or update a sandbox and its agent (orchestrator only)',
      description: 'Binds a sandbox to its tenant and to the address and token of its in-VM agent. The token is stored encrypted and never returned.',
      params: SandboxParams,
      body: SandboxRegister,
      response: { 200: Sandbox, 201: Sandbox, 400: ErrorBody, 401: ErrorBody, 403: ErrorBody, 409: ErrorBody, 503: ErrorBody }
    }
  }, async (request, reply) => {
    const { created } = await service.registerSandbox(request.params.sandboxId, request.body)
    const s = await service.sandboxFor({ kind: 'internal' }, request.params.sandboxId)
    return reply.code(created ? 201 : 200).send({ id: s.id, tenant: s.tenant, agentUrl: s.agentUrl, state: s.state, createdAt: s.createdAt, updatedAt: s.updatedAt })
  })
}

export default internalRoutes
