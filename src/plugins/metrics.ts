import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import { Counter, Gauge, Histogram, Registry } from 'prom-client'
import type { RegistryStore } from '../mounts/registry.ts'
import type { ReconcileReport } from '../schemas/reconcile.ts'

// Prometheus metrics, one registry per app instance (tests build many apps in one process).

export interface Metrics {
  registry: Registry
  agentCall: (op: string, outcome: 'ok' | 'error', seconds: number) => void
  reconcileRun: (report: ReconcileReport) => void
  refused: (reason: 'rate_limited' | 'overloaded') => void
}

export function metricsObserver (): Metrics {
  const registry = new Registry()
  const agentCalls = new Counter({ name: 'sandbox_mounts_agent_calls_total', help: 'Calls to sandbox agents by operation and outcome', labelNames: ['op', 'outcome'], registers: [registry] })
  const agentLatency = new Histogram({ name: 'sandbox_mounts_agent_call_duration_seconds', help: 'Latency of calls to sandbox agents', labelNames: ['op'], buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60], registers: [registry] })
  const runs = new Counter({ name: 'sandbox_mounts_reconcile_runs_total', help: 'Reconciliation runs by whether the agent answered', labelNames: ['agent'], registers: [registry] })
  const repairs = new Counter({ name: 'sandbox_mounts_reconcile_repairs_total', help: 'Repairs made by reconciliation, by action', labelNames: ['action'], registers: [registry] })
  const refusals = new Counter({ name: 'sandbox_mounts_refused_requests_total', help: 'Requests refused by rate limits or back-pressure', labelNames: ['reason'], registers: [registry] })
  return {
    registry,
    agentCall: (op, outcome, seconds) => {
      agentCalls.inc({ op, outcome })
      agentLatency.observe({ op }, seconds)
    },
    reconcileRun: (report) => {
      runs.inc({ agent: report.agentReachable ? 'reachable' : 'unreachable' })
      for (const m of report.mounts) if (m.action !== 'none') repairs.inc({ action: m.action })
      if (report.orphansRemoved.length > 0) repairs.inc({ action: 'orphan_removed' }, report.orphansRemoved.length)
    },
    refused: (reason) => { refusals.inc({ reason }) }
  }
}

async function metricsPlugin (app: FastifyInstance, opts: { metrics: Metrics, store: RegistryStore }): Promise<void> {
  const { registry } = opts.metrics
  const requests = new Histogram({
    name: 'sandbox_mounts_http_request_duration_seconds',
    help: 'HTTP requests by route, method and status',
    labelNames: ['route', 'method', 'status'],
    buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [registry]
  })
  const store = opts.store
  // eslint-disable-next-line no-new
  new Gauge({
    name: 'sandbox_mounts_mounts',
    help: 'Mounts in the registry by status',
    labelNames: ['status'],
    registers: [registry],
    async collect () {
      this.reset()
      for (const [status, n] of Object.entries(await store.countMountsByStatus())) this.set({ status }, n)
    }
  })

  app.addHook('onResponse', async (request, reply) => {
    const route = request.routeOptions.url ?? 'unmatched'
    requests.observe({ route, method: request.method, status: String(reply.statusCode) }, reply.elapsedTime / 1000)
  })

  app.get('/metrics', {
    preHandler: app.requireInternal,
    schema: { hide: true }
  }, async (_request, reply) => {
    return await reply.header('content-type', registry.contentType).send(await registry.metrics())
  })
}

export default fp(metricsPlugin, { name: 'metrics', dependencies: ['auth'] })
