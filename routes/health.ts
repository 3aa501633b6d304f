import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from '@sinclair/typebox'
import { ErrorBody } from '../src/schemas/common.ts'
import type { RegistryStore } from '../src/mounts/registry.ts'

export interface HealthRoutesOptions { store: RegistryStore, replica: string }

const Status = Type.Object({ status: Type.String(), replica: Type.String({ description: 'This process\'s replica id (holder of its reconciliation leases)' }) })

const healthRoutes: FastifyPluginAsyncTypebox<HealthRoutesOptions> = async (app, { store, replica }) => {
  app.get('/healthz', {
    schema: { operationId: 'healthz', tags: ['health'], summary: 'Liveness', description: 'The process is up.', response: { 200: Status } }
  }, async () => ({ status: 'ok', replica }))

  app.get('/readyz', {
    schema: { operationId: 'readyz', tags: ['health'], summary: 'Readiness', description: 'The registry answers.', response: { 200: Status, 503: ErrorBody } }
  }, async (request, reply) => {
    try {
      await store.ping()
      return { status: 'ready', replica }
    } catch {
      return reply.code(503).send({ error: { code: 'STORE_UNAVAILABLE', message: 'the registry does not answer' } })
    }
  })
}

export default healthRoutes
