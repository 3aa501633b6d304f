import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from '@sinclair/typebox'
import { ErrorBody } from '../src/schemas/common.ts'
import { SandboxParams } from '../src/schemas/mount.ts'
import { ReconcileReport, SandboxEvent } from '../src/schemas/reconcile.ts'
import type { Lifecycle } from '../src/mounts/lifecycle.ts'

export interface LifecycleRoutesOptions { lifecycle: Lifecycle }

const errors = { 400: ErrorBody, 401: ErrorBody, 403: ErrorBody, 404: ErrorBody, 409: ErrorBody, 503: ErrorBody }

const lifecycleRoutes: FastifyPluginAsyncTypebox<LifecycleRoutesOptions> = async (app, { lifecycle }) => {
  app.post('/sandboxes/:sandboxId/mounts/reconcile', {
    schema: {
      operationId: 'reconcileMounts',
      tags: ['mounts'],
      summary: 'Reconcile a sandbox now',
      description: 'Compares the registry with the agent\'s live mounts: remounts missing or dead ones, removes orphans, and returns what it found and did.',
      params: SandboxParams,
      response: { 200: ReconcileReport, ...errors }
    }
  }, async (request) => await lifecycle.reconcile(request.principal!, request.params.sandboxId))

  app.post('/internal/sandboxes/:sandboxId/events', {
    preHandler: app.requireInternal,
    schema: {
      operationId: 'sandboxEvent',
      tags: ['internal'],
      summary: 'Report a sandbox lifecycle event (orchestrator only)',
      description: 'hibernating: mounts are kept by the VM snapshot, add/remove answer 409 until woke. woke/restarted: reconcile. destroyed: delete the sandbox\'s entries and stored secrets.',
      params: SandboxParams,
      body: SandboxEvent,
      response: { 200: ReconcileReport, 204: Type.Null(), ...errors }
    }
  }, async (request, reply) => {
    const report = await lifecycle.event(request.params.sandboxId, request.body.type)
    if (report === undefined) return reply.code(204).send(null)
    return report
  })
}

export default lifecycleRoutes
