import type { FastifyInstance, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import type { RegistryStore } from '../mounts/registry.ts'
import { sha256 } from '../secrets.ts'
import { stableJson } from '../mounts/spec.ts'
import { IdempotencyConflict, ValidationFailed } from '../errors.ts'

// `Idempotency-Key` on POST and DELETE: a retry with the same key and the same request gets
// the first answer back and does nothing twice; the same key with another request is refused.
// Records live in the registry, so any replica answers the retry. 5xx answers are not kept:
// the retry runs again.

declare module 'fastify' {
  interface FastifyRequest {
    idempotency?: { scope: string, key: string, hash: string }
  }
}

const KEEP_MS = 24 * 3600 * 1000

function scopeOf (request: FastifyRequest): string {
  const p = request.principal
  return p === undefined ? 'anonymous' : p.kind === 'internal' ? 'internal' : `tenant:${p.tenant}`
}

async function idempotencyPlugin (app: FastifyInstance, opts: { store: RegistryStore }): Promise<void> {
  app.decorateRequest('idempotency', undefined)

  app.addHook('preHandler', async (request, reply) => {
    if (request.method !== 'POST' && request.method !== 'DELETE') return
    const key = request.headers['idempotency-key']
    if (key === undefined) return
    if (typeof key !== 'string' || !/^[\x21-\x7e]{1,255}$/.test(key)) throw new ValidationFailed('Idempotency-Key: 1 to 255 printable ASCII characters')
    const scope = scopeOf(request)
    const hash = sha256(`${request.method} ${request.url}\n${stableJson(request.body ?? null)}`)
    const seen = await opts.store.getIdempotency(scope, key)
    if (seen !== undefined) {
      if (seen.requestHash !== hash) throw new IdempotencyConflict('Idempotency-Key: this key was used for a different request')
      return await reply.header('idempotent-replayed', 'true').header('content-type', 'application/json; charset=utf-8').code(seen.statusCode).send(seen.body === '' ? undefined : seen.body)
    }
    request.idempotency = { scope, key, hash }
  })

  app.addHook('onSend', async (request, reply, payload) => {
    const idem = request.idempotency
    if (idem === undefined || reply.statusCode >= 500) return payload
    await opts.store.putIdempotency({
      tenant: idem.scope,
      key: idem.key,
      requestHash: idem.hash,
      statusCode: reply.statusCode,
      body: typeof payload === 'string' ? payload : '',
      createdAt: new Date().toISOString()
    })
    return payload
  })

  const timer = setInterval(() => {
    opts.store.deleteIdempotencyBefore(new Date(Date.now() - KEEP_MS).toISOString()).catch(() => {})
  }, 3600 * 1000)
  timer.unref()
  app.addHook('onClose', async () => { clearInterval(timer) })
}

export default fp(idempotencyPlugin, { name: 'idempotency', dependencies: ['auth'] })
