import type { Test } from 'tap'
import { Writable } from 'node:stream'
import { randomBytes } from 'node:crypto'
import type { FastifyInstance } from 'fastify'
import { buildApp } from '../../src/app.ts'
import { AgentClient } from '../../src/agent/client.ts'
import { SecretBox, sha256 } from '../../src/secrets.ts'
import { loadTemplates } from '../../src/rclone/templates.ts'
import { loadConfig } from '../../src/config.ts'
import type { RegistryStore } from '../../src/mounts/registry.ts'
import { openTestStore } from './store.ts'
import { startAgentDouble, type AgentDouble } from './agent-double.ts'

export const TENANT_A = { tenant: 'acme', key: 'acme-key-0123456789abcdef' }
export const TENANT_B = { tenant: 'globex', key: 'globex-key-0123456789abcdef' }
export const INTERNAL_TOKEN = 'internal-token-0123456789abcdef'

export interface TestApp {
  app: FastifyInstance
  store: RegistryStore
  agent: AgentDouble
  box: SecretBox
  /** Every line the app logged. */
  logs: string[]
  auth: (key: string) => { authorization: string }
  registerSandbox: (sandboxId: string, tenant?: string) => Promise<void>
}

export function captureStream (lines: string[]): Writable {
  return new Writable({
    write (chunk, _enc, cb) { lines.push(...String(chunk).split('\n').filter(Boolean)); cb() }
  })
}

export const TEMPLATES = loadTemplates(loadConfig({}, sha256).templatesDir)

export async function buildTestApp (t: Test, opts: { store?: RegistryStore, agentTimeoutMs?: number, box?: SecretBox } = {}): Promise<TestApp> {
  const store = opts.store ?? await openTestStore(t)
  const agent = await startAgentDouble()
  const box = opts.box ?? new SecretBox([{ id: 'k1', key: randomBytes(32) }])
  const logs: string[] = []
  const config = loadConfig({
    API_KEYS: `${TENANT_A.tenant}:${TENANT_A.key},${TENANT_B.tenant}:${TENANT_B.key}`,
    INTERNAL_TOKEN,
    LOG_LEVEL: 'debug'
  }, sha256)
  const app = await buildApp(config, {
    store,
    agents: new AgentClient({ timeoutMs: opts.agentTimeoutMs ?? 5000 }),
    box,
    templates: TEMPLATES,
    logStream: captureStream(logs)
  })
  t.teardown(async () => { await app.close(); await agent.close() })
  const auth = (key: string) => ({ authorization: `Bearer ${key}` })
  return {
    app,
    store,
    agent,
    box,
    logs,
    auth,
    registerSandbox: async (sandboxId, tenant = TENANT_A.tenant) => {
      const res = await app.inject({
        method: 'PUT',
        url: `/internal/sandboxes/${sandboxId}`,
        headers: auth(INTERNAL_TOKEN),
        payload: { tenant, agentUrl: agent.url, agentToken: agent.token }
      })
      if (res.statusCode >= 300) throw new Error(`register failed: ${res.statusCode} ${res.body}`)
    }
  }
}
