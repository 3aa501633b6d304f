import type { FastifyInstance } from 'fastify'
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

async function limitsPlugin (app: FastifyInstance, opts: LimitsOptions): Promise<void> {
  const buckets = new Map<string, { tokens: number, at: number }>()
  let inFlight = 0

  app.addHook('onRequest', async (request) => {
    if (opts.maxInFlight > 0 && inFlight >= opts.maxInFlight) {
      opts.onRefused?.('overloaded')
      throw Object.assign(new Overloaded('the service is overloaded; retry shortly'), { retryAfter: 1 })
    }
    inFlight++
    ;(request as { counted?: boolean }).counted = true
  })
  app.addHook('onResponse', async (request) => {
    if ((request as { counted?: boolean }).counted === true) inFlight--
  })

  if (opts.perMinute <= 0) return
  // Runs after authentication so the bucket is the tenant's; the orchestrator is not limited.
  app.addHook('preHandler', async (request) => {
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
