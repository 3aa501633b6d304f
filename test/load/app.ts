import type { Test } from 'tap'
import { randomBytes } from 'node:crypto'
import type { FastifyInstance } from 'fastify'
import { buildApp } from '../../src/app.ts'
import { AgentClient } from '../../src/agent/client.ts'
import { SecretBox, sha256 } from '../../src/secrets.ts'
import { loadConfig } from '../../src/config.ts'
import { metricsObserver, type Metrics } from '../../src/plugins/metrics.ts'
import type { RegistryStore } from '../../src/mounts/registry.ts'
import { captureStream, INTERNAL_TOKEN, TEMPLATES, TENANT_A, TENANT_B } from '../helpers/app.ts'
import { openTestStore } from '../helpers/store.ts'
import { startAgentDouble, type AgentDouble } from '../helpers/agent-double.ts'

// The real app with the environment a test chooses (small limits, reconciliation interval), the
// metrics observer wired into the agent client as src/server.ts does, and the agent double.

export interface ConfiguredApp {
  app: FastifyInstance
  store: RegistryStore
  agent: AgentDouble
  metrics: Metrics
  logs: string[]
  auth: (key: string) => { authorization: string }
  registerSandbox: (sandboxId: string, tenant?: string, agentUrl?: string) => Promise<void>
}

export async function buildConfiguredApp (t: Test, env: Record<string, string>, opts: { agentTimeoutMs?: number } = {}): Promise<ConfiguredApp> {
  const store = await openTestStore(t)
  const agent = await startAgentDouble()
  const logs: string[] = []
  const config = loadConfig({
    API_KEYS: `${TENANT_A.tenant}:${TENANT_A.key},${TENANT_B.tenant}:${TENANT_B.key}`,
    INTERNAL_TOKEN,
    LOG_LEVEL: 'info',
    RECONCILE_INTERVAL_MS: '0',
    ...env
  }, sha256)
  const metrics = metricsObserver()
  const app = await buildApp(config, {
    store,
    agents: new AgentClient({ timeoutMs: opts.agentTimeoutMs ?? 5000, observe: metrics.agentCall }),
    box: new SecretBox([{ id: 'k1', key: randomBytes(32) }]),
    templates: TEMPLATES,
    logStream: captureStream(logs),
    metrics
  })
  t.teardown(async () => { await app.close(); await agent.close() })
  const auth = (key: string): { authorization: string } => ({ authorization: `Bearer ${key}` })
  return {
    app,
    store,
    agent,
    metrics,
    logs,
    auth,
    registerSandbox: async (sandboxId, tenant = TENANT_A.tenant, agentUrl = agent.url) => {
      const res = await app.inject({ method: 'PUT', url: `/internal/sandboxes/${sandboxId}`, headers: auth(INTERNAL_TOKEN), payload: { tenant, agentUrl, agentToken: agent.token } })
      if (res.statusCode >= 300) throw new Error(`register failed: ${res.statusCode} ${res.body}`)
    }
  }
}
