import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from '@sinclair/typebox'
import type { BackendTemplate } from '../src/schemas/template.ts'
import { BackendDescription, describeBackends } from '../src/rclone/templates.ts'
import { ErrorBody } from '../src/schemas/common.ts'

export interface BackendRoutesOptions { templates: ReadonlyMap<string, BackendTemplate> }

const backendRoutes: FastifyPluginAsyncTypebox<BackendRoutesOptions> = async (app, { templates }) => {
  const body = { backends: describeBackends(templates as Map<never, BackendTemplate>) }
  app.get('/backends', {
    schema: {
      operationId: 'listBackends',
      tags: ['backends'],
      summary: 'Typed backends and their keys',
      description: 'Each typed backend with its accepted, required and secret keys, read from templates/.',
      response: { 200: Type.Object({ backends: Type.Array(BackendDescription) }), 401: ErrorBody }
    }
  }, async () => body)
}

export default backendRoutes
