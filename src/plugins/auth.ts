import type { FastifyInstance, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import { safeEqual, sha256 } from '../secrets.ts'
import { Unauthorized, Forbidden } from '../errors.ts'
import type { Principal } from '../mounts/service.ts'

// Bearer authentication: a tenant's API key (API_KEYS) or the orchestrator's INTERNAL_TOKEN.
// Keys are kept only as sha256 digests; the internal token is compared in constant time.

declare module 'fastify' {
  interface FastifyRequest {
    principal?: Principal
  }
  interface FastifyInstance {
    requireInternal: (request: FastifyRequest) => Promise<void>
  }
}

export interface AuthOptions {
  apiKeys: Map<string, string>
  internalToken?: string
  /** Routes that need no key (health, docs). */
  publicPrefixes: string[]
}

function bearer (request: FastifyRequest): string | undefined {
  const header = request.headers.authorization
  if (typeof header !== 'string') return undefined
  const m = /^Bearer\s+(\S+)\s*$/i.exec(header)
  return m?.[1]
}

async function authPlugin (app: FastifyInstance, opts: AuthOptions): Promise<void> {
  app.decorateRequest('principal', undefined)
  app.addHook('onRequest', async (request) => {
    const url = request.url.split('?')[0]
    if (opts.publicPrefixes.some(p => url === p || url.startsWith(p + '/') || (p.endsWith('.json') && url === p))) return
    const token = bearer(request)
    if (token === undefined) throw new Unauthorized('Authorization: a Bearer API key is required')
    if (opts.internalToken !== undefined && safeEqual(token, opts.internalToken)) {
      request.principal = { kind: 'internal' }
      return
    }
    const tenant = opts.apiKeys.get(sha256(token))
    if (tenant === undefined) throw new Unauthorized('Authorization: the API key is not valid')
    request.principal = { kind: 'tenant', tenant }
  })
  app.decorate('requireInternal', async (request: FastifyRequest) => {
    if (request.principal?.kind !== 'internal') throw new Forbidden('Authorization: this route needs the internal token')
  })
}

export default fp(authPlugin, { name: 'auth' })
