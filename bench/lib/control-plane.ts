import { randomBytes } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { Writable } from 'node:stream'
import type { FastifyInstance } from 'fastify'
import { buildApp } from '../../src/app.ts'
import { AgentClient } from '../../src/agent/client.ts'
import { loadConfig } from '../../src/config.ts'
import { openStore } from '../../src/mounts/store.ts'
import type { RegistryStore } from '../../src/mounts/registry.ts'
import { loadTemplates } from '../../src/rclone/templates.ts'
import { SecretBox, sha256 } from '../../src/secrets.ts'
import type { Mount } from '../../src/schemas/mount.ts'

// The real control plane in this process, listening on loopback, with a fresh SQLite registry
// in a temp dir. The bench talks to it over HTTP like any client would.

export const BENCH_TENANT = 'bench'

export interface ControlPlane {
  url: string
  app: FastifyInstance
  store: RegistryStore
  apiKey: string
  internalToken: string
  registerSandbox: (sandboxId: string, agentUrl: string, agentToken: string) => Promise<void>
  addMount: (sandboxId: string, body: Record<string, unknown>) => Promise<{ statusCode: number, mount: Mount }>
  removeMount: (sandboxId: string, mountId: string) => Promise<number>
  close: () => Promise<void>
}

/** A sink for log lines: the app still formats every line (as in production), nobody keeps them. */
export function discardStream (): Writable {
  return new Writable({ write (_chunk, _enc, cb) { cb() } })
}

export function benchSecrets (): { apiKey: string, internalToken: string, encryptionKey: string } {
  return {
    apiKey: `bench-${randomBytes(16).toString('hex')}`,
    internalToken: randomBytes(24).toString('base64url'),
    encryptionKey: randomBytes(32).toString('base64')
  }
}

export async function startControlPlane (opts: { agentTimeoutMs?: number } = {}): Promise<ControlPlane> {
  const dataDir = await mkdtemp(path.join(tmpdir(), 'bench-cp-'))
  const secrets = benchSecrets()
  const config = loadConfig({
    API_KEYS: `${BENCH_TENANT}:${secrets.apiKey}`,
    INTERNAL_TOKEN: secrets.internalToken,
    ENCRYPTION_KEY: secrets.encryptionKey,
    LOG_LEVEL: 'info',
    // the bench drives one tenant far past any sane per-tenant limit; periodic reconciliation
    // would add agent traffic in the middle of timed requests
    RATE_LIMIT_PER_MINUTE: '0',
    RECONCILE_INTERVAL_MS: '0'
  }, sha256)
  const store = await openStore({ dataDir })
  const app = await buildApp(config, {
    store,
    box: new SecretBox(config.encryptionKeys),
    templates: loadTemplates(config.templatesDir),
    agents: new AgentClient({ timeoutMs: opts.agentTimeoutMs ?? 90_000 }),
    logStream: discardStream()
  })
  const url = await app.listen({ host: '127.0.0.1', port: 0 })
  const auth = (key: string): Record<string, string> => ({ authorization: `Bearer ${key}` })

  return {
    url,
    app,
    store,
    apiKey: secrets.apiKey,
    internalToken: secrets.internalToken,
    registerSandbox: async (sandboxId, agentUrl, agentToken) => {
      const res = await fetch(`${url}/internal/sandboxes/${sandboxId}`, {
        method: 'PUT',
        headers: { ...auth(secrets.internalToken), 'content-type': 'application/json' },
        body: JSON.stringify({ tenant: BENCH_TENANT, agentUrl, agentToken })
      })
      if (res.status >= 300) throw new Error(`registering sandbox ${sandboxId} failed: ${res.status} ${await res.text()}`)
    },
    addMount: async (sandboxId, body) => {
      const res = await fetch(`${url}/sandboxes/${sandboxId}/mounts`, {
        method: 'POST',
        headers: { ...auth(secrets.apiKey), 'content-type': 'application/json' },
        body: JSON.stringify(body)
      })
      const text = await res.text()
      if (res.status >= 300) throw new Error(`adding a mount failed: ${res.status} ${text}`)
      return { statusCode: res.status, mount: JSON.parse(text) as Mount }
    },
    removeMount: async (sandboxId, mountId) => {
      const res = await fetch(`${url}/sandboxes/${sandboxId}/mounts/${mountId}`, { method: 'DELETE', headers: auth(secrets.apiKey) })
      const text = await res.text()
      if (res.status >= 300) throw new Error(`removing mount ${mountId} failed: ${res.status} ${text}`)
      return res.status
    },
    close: async () => {
      await app.close()
      await store.close()
      await rm(dataDir, { recursive: true, force: true })
    }
  }
}
