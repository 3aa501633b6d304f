import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from '@sinclair/typebox'
import { ErrorBody } from '../src/schemas/common.ts'
import { Credential, CredentialCreate, CredentialName, CredentialUpdate, RotationResult } from '../src/schemas/credential.ts'
import { MountParams } from '../src/schemas/mount.ts'
import type { CredentialService } from '../src/mounts/credentials.ts'

export interface CredentialRoutesOptions { credentials: CredentialService }

const errors = { 400: ErrorBody, 401: ErrorBody, 404: ErrorBody, 409: ErrorBody, 422: ErrorBody, 424: ErrorBody, 502: ErrorBody, 503: ErrorBody, 504: ErrorBody }
const TenantQuery = Type.Object({ tenant: Type.Optional(Type.String({ maxLength: 64, description: 'Only with the internal token: whose credentials' })) }, { additionalProperties: false })
const NameParams = Type.Object({ name: CredentialName })

const credentialRoutes: FastifyPluginAsyncTypebox<CredentialRoutesOptions> = async (app, { credentials }) => {
  app.post('/credentials', {
    schema: {
      operationId: 'createCredential',
      tags: ['credentials'],
      summary: 'Store named credentials',
      description: 'Validated against the backend\'s template, sealed at rest (AES-256-GCM) and never returned. Mounts refer to them with credentialsRef.',
      querystring: TenantQuery,
      body: CredentialCreate,
      response: { 201: Credential, ...errors }
    }
  }, async (request, reply) => {
    return reply.code(201).send(await credentials.create(request.principal!, request.body, request.query.tenant))
  })

  app.get('/credentials', {
    schema: {
      operationId: 'listCredentials',
      tags: ['credentials'],
      summary: 'List stored credentials',
      description: 'Names, backends and key names; never values.',
      querystring: TenantQuery,
      response: { 200: Type.Object({ credentials: Type.Array(Credential) }), ...errors }
    }
  }, async (request) => ({ credentials: await credentials.list(request.principal!, request.query.tenant) }))

  app.put('/credentials/:name', {
    schema: {
      operationId: 'rotateCredential',
      tags: ['credentials'],
      summary: 'Rotate named credentials',
      description: 'Preflights the new credentials and swaps them into every mount that uses them (pending writes flushed first). When they fail, every mount stays as it was and the answer says why.',
      params: NameParams,
      querystring: TenantQuery,
      body: CredentialUpdate,
      response: { 200: RotationResult, ...errors }
    }
  }, async (request) => await credentials.rotateNamed(request.principal!, request.params.name, request.body.creds, request.query.tenant))

  app.delete('/credentials/:name', {
    schema: {
      operationId: 'deleteCredential',
      tags: ['credentials'],
      summary: 'Delete named credentials',
      description: '409 while mounts use them.',
      params: NameParams,
      querystring: TenantQuery,
      response: { 204: Type.Null(), ...errors }
    }
  }, async (request, reply) => {
    await credentials.remove(request.principal!, request.params.name, request.query.tenant)
    return reply.code(204).send(null)
  })

  app.put('/sandboxes/:sandboxId/mounts/:mountId/credentials', {
    schema: {
      operationId: 'rotateMountCredentials',
      tags: ['mounts', 'credentials'],
      summary: 'Rotate one mount\'s credentials',
      description: 'For a mount with inline creds: preflights the new ones, flushes pending writes and swaps them in without a remove/add. The old mount stays when they fail.',
      params: MountParams,
      body: CredentialUpdate,
      response: { 200: RotationResult, ...errors }
    }
  }, async (request) => await credentials.rotateMount(request.principal!, request.params.sandboxId, request.params.mountId, request.body.creds))
}

export default credentialRoutes
