import type { FastifyInstance, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import { Overloaded, RateLimited } from '../errors.ts'

// Per-tenant rate limit (a token bucket refilled per minute: 429 with Retry-After) and
// back-pressure (503 with Retry-After once too many requests are in flight), so a burst is
// refused cleanly instead of slowing every tenant down.

export interface LimitsOptions {
  perMinute: number
  maxInFlight: number
  onRefused?: (reason: 'rate_limited' | 'overloaded') => void
}

// Liveness and metrics must answer under load: an orchestrator restarts a replica whose
// liveness check fails, which would turn a burst into an outage.
const EXEMPT = new Set(['/healthz', '/metrics'])

declare module 'fastify' {
  interface FastifyRequest {
    releaseSlot?: () => void
  }
}

async function limitsPlugin (app: FastifyInstance, opts: LimitsOptions): Promise<void> {
  const buckets = new Map<string, { tokens: number, at: number }>()
  let inFlight = 0
  app.decorateRequest('releaseSlot', undefined)

  app.addHook('onRequest', async (request, reply) => {
    if (opts.maxInFlight <= 0 || EXEMPT.has(request.url.split('?')[0])) return
    if (inFlight >= opts.maxInFlight) {
      opts.onRefused?.('overloaded')
      throw Object.assign(new Overloaded('the service is overloaded; retry shortly'), { retryAfter: 1 })
    }
    inFlight++
    // onResponse does not run when the client hangs up first; the socket's close always fires.
    let held = true
    request.releaseSlot = () => {
      if (held) { held = false; inFlight-- }
    }
    reply.raw.once('close', request.releaseSlot)
  })
  app.addHook('onResponse', async (request: FastifyRequest) => { request.releaseSlot?.() })

  if (opts.perMinute <= 0) return
  // Runs right after authentication (an earlier onRequest hook), so the bucket is the tenant's
  // and requests that fail validation or routing are counted too; the orchestrator is not limited.
  app.addHook('onRequest', async (request) => {
    const p = request.principal
    if (p === undefined || p.kind !== 'tenant') return
    const now = Date.now()
    const rate = opts.perMinute / 60000
    const b = buckets.get(p.tenant) ?? { tokens: opts.perMinute, at: now }
    b.tokens = Math.min(opts.perMinute, b.tokens + (now - b.at) * rate)
    b.at = now
    if (b.tokens < 1) {
      buckets.set(p.tenant, b)
      opts.onRefused?.('rate_limited')
      throw Object.assign(new RateLimited(`tenant ${p.tenant} is over ${opts.perMinute} requests per minute`), { retryAfter: Math.ceil((1 - b.tokens) / rate / 1000) })
    }
    b.tokens -= 1
    buckets.set(p.tenant, b)
  })
}

export default fp(limitsPlugin, { name: 'limits', dependencies: ['auth'] })
