import { Type, type Static } from '@sinclair/typebox'
import { Value } from '@sinclair/typebox/value'
import { fileURLToPath } from 'node:url'
import path from 'node:path'

// The control plane's whole configuration, read from the environment once at the edge
// (src/server.ts). Nothing below this module reads process.env.

const PACKAGE_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), import.meta.url.includes('/dist/') ? '../..' : '..')

export const EnvSchema = Type.Object({
  PORT: Type.Integer({ minimum: 0, maximum: 65535, default: 8080 }),
  HOST: Type.String({ default: '127.0.0.1' }),
  DATA_DIR: Type.String({ default: './data' }),
  DATABASE_URL: Type.Optional(Type.String({ pattern: '^postgres(ql)?://' })),
  API_KEYS: Type.Optional(Type.String({ description: 'tenant:key pairs, comma separated' })),
  INTERNAL_TOKEN: Type.Optional(Type.String({ minLength: 16 })),
  ENCRYPTION_KEY: Type.Optional(Type.String({ description: 'base64 32-byte key, or id:base64 pairs comma separated (first one encrypts)' })),
  LOCAL_SANDBOX: Type.String({ default: 'local', description: 'Sandbox id served by an in-process agent on this host; empty turns it off' }),
  LOCAL_AGENT_CONFIG_DIR: Type.String({ default: '/run/sandbox-mounts' }),
  SANDBOX_USER: Type.String({ default: 'sandbox' }),
  LOG_LEVEL: Type.Union([Type.Literal('fatal'), Type.Literal('error'), Type.Literal('warn'), Type.Literal('info'), Type.Literal('debug'), Type.Literal('trace'), Type.Literal('silent')], { default: 'info' }),
  AGENT_TIMEOUT_MS: Type.Integer({ minimum: 100, default: 90000 }),
  RECONCILE_INTERVAL_MS: Type.Integer({ minimum: 0, default: 60000, description: '0 turns periodic reconciliation off' }),
  RECONCILE_LEASE_MS: Type.Integer({ minimum: 0, default: 0, description: 'How long a replica keeps a sandbox for periodic reconciliation after its last round; 0 means 3 intervals, at least 15 s' }),
  RECONCILE_CONCURRENCY: Type.Integer({ minimum: 1, maximum: 256, default: 4 }),
  RATE_LIMIT_PER_MINUTE: Type.Integer({ minimum: 0, default: 1200, description: 'Requests per tenant per minute; 0 turns it off' }),
  MAX_IN_FLIGHT: Type.Integer({ minimum: 0, default: 512, description: 'Concurrent requests before 503; 0 turns it off' }),
  BODY_LIMIT: Type.Integer({ minimum: 1024, default: 262144 }),
  TEMPLATES_DIR: Type.String({ default: path.join(PACKAGE_ROOT, 'templates') })
})
export type Env = Static<typeof EnvSchema>

export interface Config {
  port: number
  host: string
  dataDir: string
  databaseUrl?: string
  /** sha256(key) hex -> tenant */
  apiKeys: Map<string, string>
  /** First tenant named in API_KEYS (owner of the local sandbox). */
  firstTenant?: string
  internalToken?: string
  encryptionKeys: Array<{ id: string, key: Buffer }>
  localSandbox: string
  localAgentConfigDir: string
  sandboxUser: string
  logLevel: Env['LOG_LEVEL']
  agentTimeoutMs: number
  reconcileIntervalMs: number
  reconcileConcurrency: number
  reconcileLeaseMs: number
  rateLimitPerMinute: number
  maxInFlight: number
  bodyLimit: number
  templatesDir: string
}

export class ConfigError extends Error {}

export function parseApiKeys (text: string | undefined, hash: (s: string) => string): { keys: Map<string, string>, first?: string } {
  const keys = new Map<string, string>()
  let first: string | undefined
  for (const pair of (text ?? '').split(',').map(s => s.trim()).filter(Boolean)) {
    const at = pair.indexOf(':')
    const tenant = pair.slice(0, at)
    const key = pair.slice(at + 1)
    if (at <= 0 || key.length < 16 || !/^[A-Za-z0-9._-]{1,64}$/.test(tenant)) {
      throw new ConfigError('API_KEYS: each entry must be tenant:key with a tenant of [A-Za-z0-9._-] and a key of at least 16 characters')
    }
    keys.set(hash(key), tenant)
    first ??= tenant
  }
  return { keys, first }
}

export function parseEncryptionKeys (text: string | undefined): Array<{ id: string, key: Buffer }> {
  if (text === undefined || text === '') return []
  return text.split(',').map((entry, i) => {
    const at = entry.indexOf(':')
    const id = at === -1 ? 'k1' : entry.slice(0, at).trim()
    const key = Buffer.from(at === -1 ? entry.trim() : entry.slice(at + 1).trim(), 'base64')
    if (key.length !== 32 || !/^[A-Za-z0-9_-]{1,32}$/.test(id)) {
      throw new ConfigError(`ENCRYPTION_KEY entry ${i + 1}: expected [id:]<base64 of 32 bytes>`)
    }
    return { id, key }
  })
}

/** Parses and checks the environment; throws ConfigError naming the variable. */
export function loadConfig (env: Record<string, string | undefined>, hash: (s: string) => string): Config {
  const raw: Record<string, unknown> = {}
  for (const name of Object.keys(EnvSchema.properties)) {
    if (env[name] !== undefined) raw[name] = env[name]
  }
  const converted = Value.Convert(EnvSchema, Value.Default(EnvSchema, raw))
  const errors = [...Value.Errors(EnvSchema, converted)]
  if (errors.length > 0) {
    const e = errors[0]
    throw new ConfigError(`${e.path.slice(1)}: ${e.message}`)
  }
  const parsed = converted as Env
  const { keys, first } = parseApiKeys(parsed.API_KEYS, hash)
  return {
    port: parsed.PORT,
    host: parsed.HOST,
    dataDir: path.resolve(parsed.DATA_DIR),
    databaseUrl: parsed.DATABASE_URL,
    apiKeys: keys,
    firstTenant: first,
    internalToken: parsed.INTERNAL_TOKEN,
    encryptionKeys: parseEncryptionKeys(parsed.ENCRYPTION_KEY),
    localSandbox: parsed.LOCAL_SANDBOX,
    localAgentConfigDir: parsed.LOCAL_AGENT_CONFIG_DIR,
    sandboxUser: parsed.SANDBOX_USER,
    logLevel: parsed.LOG_LEVEL,
    agentTimeoutMs: parsed.AGENT_TIMEOUT_MS,
    reconcileIntervalMs: parsed.RECONCILE_INTERVAL_MS,
    reconcileConcurrency: parsed.RECONCILE_CONCURRENCY,
    reconcileLeaseMs: parsed.RECONCILE_LEASE_MS > 0 ? parsed.RECONCILE_LEASE_MS : Math.max(3 * parsed.RECONCILE_INTERVAL_MS, 15000),
    rateLimitPerMinute: parsed.RATE_LIMIT_PER_MINUTE,
    maxInFlight: parsed.MAX_IN_FLIGHT,
    bodyLimit: parsed.BODY_LIMIT,
    templatesDir: path.resolve(parsed.TEMPLATES_DIR)
  }
}
