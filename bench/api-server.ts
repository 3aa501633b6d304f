import Fastify from 'fastify'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { buildApp } from '../src/app.ts'
import { AgentClient } from '../src/agent/client.ts'
import { loadConfig } from '../src/config.ts'
import { openStore } from '../src/mounts/store.ts'
import { metricsObserver } from '../src/plugins/metrics.ts'
import { loadTemplates } from '../src/rclone/templates.ts'
import { REDACT_PATHS } from '../src/redact.ts'
import { SecretBox, sha256 } from '../src/secrets.ts'
import { MountList } from '../src/schemas/mount.ts'
import { toApiMount } from '../src/mounts/service.ts'
import { BENCH_TENANT, discardStream } from './lib/control-plane.ts'

// Child process for item 3: the real control plane (wired as src/server.ts wires it, SQLite
// registry) and a bare Fastify route answering the same JSON, in one process with the same
// logger settings. Secrets come in the environment; prints one JSON line with both addresses;
// exits on SIGTERM or when stdin closes.

const MOUNTS = Number(process.env.BENCH_API_MOUNTS ?? 20)
const CYCLE_SANDBOXES = Number(process.env.BENCH_API_CYCLE_SANDBOXES ?? 64)
const agentUrl = process.env.BENCH_AGENT_URL ?? ''
const agentToken = process.env.BENCH_AGENT_TOKEN ?? ''

const dataDir = await mkdtemp(path.join(tmpdir(), 'bench-api-'))
const secrets = {
  apiKey: process.env.BENCH_API_KEY ?? '',
  internalToken: process.env.BENCH_INTERNAL_TOKEN ?? '',
  encryptionKey: process.env.BENCH_ENCRYPTION_KEY ?? ''
}
const config = loadConfig({
  API_KEYS: `${BENCH_TENANT}:${secrets.apiKey}`,
  INTERNAL_TOKEN: secrets.internalToken,
  ENCRYPTION_KEY: secrets.encryptionKey,
  LOG_LEVEL: 'info',
  // the limiter still runs on every request; one tenant at full speed must not be refused
  RATE_LIMIT_PER_MINUTE: '1000000000',
  RECONCILE_INTERVAL_MS: '0'
}, sha256)
const loggerOptions = { level: config.logLevel, redact: { paths: REDACT_PATHS, censor: '[redacted]' } }
const store = await openStore({ dataDir })
const metrics = metricsObserver()
const app = await buildApp(config, {
  store,
  box: new SecretBox(config.encryptionKeys),
  templates: loadTemplates(config.templatesDir),
  agents: new AgentClient({ timeoutMs: config.agentTimeoutMs, observe: metrics.agentCall }),
  metrics,
  logStream: discardStream()
})

const internal = { authorization: `Bearer ${secrets.internalToken}` }
const tenant = { authorization: `Bearer ${secrets.apiKey}` }
const register = async (id: string): Promise<void> => {
  const res = await app.inject({ method: 'PUT', url: `/internal/sandboxes/${id}`, headers: internal, payload: { tenant: BENCH_TENANT, agentUrl, agentToken } })
  if (res.statusCode >= 300) throw new Error(`register ${id}: ${res.statusCode} ${res.body}`)
}
await register('api')
for (let i = 0; i < CYCLE_SANDBOXES; i++) await register(`cycle-${i}`)
const creds = { provider: 'Other', access_key_id: 'AKIABENCH000000001', secret_access_key: 'bench-secret-not-real-0001', endpoint: 'https://s3.example.internal', force_path_style: true }
for (let i = 0; i < MOUNTS; i++) {
  const res = await app.inject({ method: 'POST', url: '/sandboxes/api/mounts', headers: tenant, payload: { path: `/mnt/data-${i}`, remote: `s3:bucket-${i}/datasets`, backend: 's3', creds, mountOptions: ['--dir-cache-time', '1m'] } })
  if (res.statusCode !== 201) throw new Error(`seed mount ${i}: ${res.statusCode} ${res.body}`)
}
const listed = await app.inject({ method: 'GET', url: '/sandboxes/api/mounts', headers: tenant })
const body = listed.json() as { mounts: unknown[] }
if (body.mounts.length !== MOUNTS) throw new Error(`listed ${body.mounts.length} mounts`)

// The baseline: the same JSON, no auth, no registry, no schema; same logger configuration.
const bare = Fastify({ logger: { ...loggerOptions, stream: discardStream() } })
bare.get('/sandboxes/:sandboxId/mounts', async () => body)
// Between the two: the bare route plus the registry read the real route does (sandbox, its
// mounts, the API view, the response schema), to tell the store's share from the rest.
const withStore = Fastify({ logger: { ...loggerOptions, stream: discardStream() } })
withStore.get<{ Params: { sandboxId: string } }>('/sandboxes/:sandboxId/mounts', { schema: { response: { 200: MountList } } }, async (request, reply) => {
  if (await store.getSandbox(request.params.sandboxId) === undefined) return await reply.code(404).send()
  return { mounts: (await store.listMounts(request.params.sandboxId)).map(m => toApiMount(m)) }
})

const realUrl = await app.listen({ host: '127.0.0.1', port: 0 })
const bareUrl = await bare.listen({ host: '127.0.0.1', port: 0 })
const storeUrl = await withStore.listen({ host: '127.0.0.1', port: 0 })

let closing = false
const close = async (): Promise<void> => {
  if (closing) return
  closing = true
  await Promise.allSettled([app.close(), bare.close(), withStore.close()])
  await store.close()
  await rm(dataDir, { recursive: true, force: true })
  process.exit(0)
}
process.once('SIGTERM', () => { close().catch(() => process.exit(1)) })
process.stdin.on('end', () => { close().catch(() => process.exit(1)) })
process.stdin.resume()
process.stdout.write(JSON.stringify({ realUrl, bareUrl, storeUrl, listBytes: listed.body.length, cycleSandboxes: CYCLE_SANDBOXES }) + '\n')
