import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from '@sinclair/typebox'
import { ErrorBody } from '../src/schemas/common.ts'
import { Mount, MountCreate, MountList, MountParams, RemoveQuery, SandboxParams } from '../src/schemas/mount.ts'
import type { MountService } from '../src/mounts/service.ts'

// HTTP <-> MountService for /sandboxes/:sandboxId/mounts. Handlers only translate.

export interface MountRoutesOptions { service: MountService }

const errors = {
  400: ErrorBody,
  401: ErrorBody,
  404: ErrorBody,
  409: ErrorBody,
  413: ErrorBody,
  415: ErrorBody,
  422: ErrorBody,
  424: ErrorBody,
  429: ErrorBody,
  500: ErrorBody,
  502: ErrorBody,
  503: ErrorBody,
  504: ErrorBody
}

const mountRoutes: FastifyPluginAsyncTypebox<MountRoutesOptions> = async (app, { service }) => {
  app.post('/sandboxes/:sandboxId/mounts', {
    schema: {
      operationId: 'addMount',
      tags: ['mounts'],
      summary: 'Mount a remote into a sandbox',
      description: 'Validates the spec, renders a safe rclone config and has the sandbox agent mount it. Answers 201 once the mount is live, 200 when the same spec is already mounted at that path, 409 when another spec holds the path.',
      params: SandboxParams,
      body: MountCreate,
      response: { 200: Mount, 201: Mount, ...errors }
    }
  }, async (request, reply) => {
    const { mount, created } = await service.add(request.principal!, request.params.sandboxId, request.body)
    return reply.code(created ? 201 : 200).send(mount)
  })

  app.get('/sandboxes/:sandboxId/mounts', {
    schema: {
      operationId: 'listMounts',
      tags: ['mounts'],
      summary: 'List a sandbox\'s mounts',
      description: 'Answers from the registry. With refresh=true each mount\'s health is asked of the agent first (status `unknown` when the agent cannot be reached).',
      params: SandboxParams,
      querystring: Type.Object({ refresh: Type.Optional(Type.Boolean({ default: false })) }, { additionalProperties: false }),
      response: { 200: MountList, ...errors }
    }
  }, async (request) => {
    return { mounts: await service.list(request.principal!, request.params.sandboxId, { refresh: request.query.refresh }) }
  })

  app.get('/sandboxes/:sandboxId/mounts/:mountId', {
    schema: {
      operationId: 'getMount',
      tags: ['mounts'],
      summary: 'Get one mount with its live health',
      description: 'Refreshes the mount\'s health from the agent: mounted, degraded (remote failing) or failed (daemon gone).',
      params: MountParams,
      response: { 200: Mount, ...errors }
    }
  }, async (request) => {
    return await service.get(request.principal!, request.params.sandboxId, request.params.mountId)
  })

  app.delete('/sandboxes/:sandboxId/mounts', {
    schema: {
      operationId: 'removeMountByPath',
      tags: ['mounts'],
      summary: 'Remove the mount at ?path=',
      description: 'Flushes pending writes, unmounts and deletes the mount. A busy mount answers 409 unless force=true (lazy unmount).',
      params: SandboxParams,
      querystring: RemoveQuery,
      response: { 204: Type.Null(), ...errors }
    }
  }, async (request, reply) => {
    if (request.query.path === undefined) {
      return reply.code(400).send({ error: { code: 'VALIDATION_FAILED', message: 'query.path: required (or DELETE /sandboxes/:sandboxId/mounts/:mountId)' } })
    }
    await service.remove(request.principal!, request.params.sandboxId, { path: request.query.path }, { force: request.query.force })
    return reply.code(204).send(null)
  })

  app.delete('/sandboxes/:sandboxId/mounts/:mountId', {
    schema: {
      operationId: 'removeMount',
      tags: ['mounts'],
      summary: 'Remove one mount by id',
      description: 'Flushes pending writes, unmounts and deletes the mount. A busy mount answers 409 unless force=true (lazy unmount).',
      params: MountParams,
      querystring: Type.Object({ force: RemoveQuery.properties.force }, { additionalProperties: false }),
      response: { 204: Type.Null(), ...errors }
    }
  }, async (request, reply) => {
    await service.remove(request.principal!, request.params.sandboxId, { mountId: request.params.mountId }, { force: request.query.force })
    return reply.code(204).send(null)
  })
}

export default mountRoutes
