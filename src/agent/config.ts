import { Type, type Static } from '@sinclair/typebox'
import { Value } from '@sinclair/typebox/value'
import path from 'node:path'

// The agent's whole configuration, read from the environment once by src/agent/main.ts.
// Nothing else in the agent reads process.env.

export const AgentEnvSchema = Type.Object({
  AGENT_HOST: Type.String({ default: '127.0.0.1' }),
  AGENT_PORT: Type.Integer({ minimum: 0, maximum: 65535, default: 7070 }),
  AGENT_TOKEN: Type.String({ minLength: 16, description: 'Bearer token the control plane presents' }),
  AGENT_CONFIG_DIR: Type.String({ default: '/run/sandbox-mounts', description: 'rclone configs (a tmpfs in the VM)' }),
  AGENT_STATE_DIR: Type.String({ default: '/var/lib/sandbox-mounts-agent', description: 'Mount records, rcd state, VFS cache' }),
  SANDBOX_USER: Type.String({ default: 'sandbox', pattern: '^[a-z_][a-z0-9_-]*[$]?$' }),
  RCLONE_BIN: Type.String({ default: 'rclone' }),
  FUSERMOUNT_BIN: Type.String({ default: 'fusermount3' }),
  AGENT_PREFLIGHT_TIMEOUT_MS: Type.Integer({ minimum: 100, default: 10_000 }),
  AGENT_MOUNT_TIMEOUT_MS: Type.Integer({ minimum: 100, default: 20_000 }),
  AGENT_FLUSH_TIMEOUT_MS: Type.Integer({ minimum: 0, default: 60_000 }),
  AGENT_LOG_LEVEL: Type.Union(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].map(l => Type.Literal(l)), { default: 'info' })
})
export type AgentEnv = Static<typeof AgentEnvSchema>

export interface AgentConfig {
  host: string
  port: number
  token: string
  configDir: string
  stateDir: string
  sandboxUser: string
  rcloneBin: string
  fusermountBin: string
  preflightTimeoutMs: number
  mountTimeoutMs: number
  flushTimeoutMs: number
  logLevel: string
  /** PATH handed to rclone (it looks up fusermount3 there); the only variable it inherits. */
  path: string
}

export class AgentConfigError extends Error {
  override name = 'AgentConfigError'
}

/** Parses and checks the environment; throws AgentConfigError naming the variable (never its value). */
export function loadAgentConfig (env: Record<string, string | undefined>): AgentConfig {
  const raw: Record<string, unknown> = {}
  for (const name of Object.keys(AgentEnvSchema.properties)) {
    if (env[name] !== undefined) raw[name] = env[name]
  }
  const converted = Value.Convert(AgentEnvSchema, Value.Default(AgentEnvSchema, raw))
  const first = Value.Errors(AgentEnvSchema, converted).First()
  if (first !== undefined) {
    const name = first.path.slice(1)
    throw new AgentConfigError(name === '' ? first.message : `${name}: ${first.message}`)
  }
  const parsed = converted as AgentEnv
  return {
    host: parsed.AGENT_HOST,
    port: parsed.AGENT_PORT,
    token: parsed.AGENT_TOKEN,
    configDir: path.resolve(parsed.AGENT_CONFIG_DIR),
    stateDir: path.resolve(parsed.AGENT_STATE_DIR),
    sandboxUser: parsed.SANDBOX_USER,
    rcloneBin: parsed.RCLONE_BIN,
    fusermountBin: parsed.FUSERMOUNT_BIN,
    preflightTimeoutMs: parsed.AGENT_PREFLIGHT_TIMEOUT_MS,
    mountTimeoutMs: parsed.AGENT_MOUNT_TIMEOUT_MS,
    flushTimeoutMs: parsed.AGENT_FLUSH_TIMEOUT_MS,
    logLevel: parsed.AGENT_LOG_LEVEL,
    path: env.PATH ?? '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'
  }
}
