import closeWithGrace from 'close-with-grace'
import { randomBytes } from 'node:crypto'
import { existsSync } from 'node:fs'
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { buildApp } from './app.ts'
import { loadConfig, parseEncryptionKeys, ConfigError, type Config } from './config.ts'
import { AgentClient } from './agent/client.ts'
import { SecretBox, sha256 } from './secrets.ts'
import { openStore } from './mounts/store.ts'
import { loadTemplates } from './rclone/templates.ts'
import { loadAgentConfig } from './agent/config.ts'
import { startAgent } from './agent/start.ts'
import { metricsObserver } from './plugins/metrics.ts'

// The only file that listens: config -> store -> app -> listen, plus the embedded local mode
// (generated keys under DATA_DIR and an in-process agent serving the sandbox `local`).

/** Reads a generated secret from DATA_DIR, creating it (0600) on first start. */
async function localSecret (dataDir: string, name: string, make: () => string): Promise<{ value: string, created: boolean }> {
  const file = path.join(dataDir, name)
  if (existsSync(file)) return { value: (await readFile(file, 'utf8')).trim(), created: false }
  const value = make()
  await writeFile(file, value + '\n', { mode: 0o600, flag: 'wx' })
  return { value, created: true }
}

async function main (): Promise<void> {
  let config: Config
  try {
    config = loadConfig(process.env, sha256)
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`sandbox-mounts: configuration error: ${err.message}\n`)
      process.exit(2)
    }
    throw err
  }
  await mkdir(config.dataDir, { recursive: true, mode: 0o700 })
  await chmod(config.dataDir, 0o700)

  const banner: string[] = []
  if (config.apiKeys.size === 0) {
    const dev = await localSecret(config.dataDir, 'dev-api-key', () => `dev_${randomBytes(24).toString('base64url')}`)
    config.apiKeys.set(sha256(dev.value), 'dev')
    config.firstTenant = 'dev'
    banner.push(`Development API key (tenant "dev", stored in ${path.join(config.dataDir, 'dev-api-key')}):`, `  ${dev.value}`)
  }
  if (config.encryptionKeys.length === 0) {
    const key = await localSecret(config.dataDir, 'encryption.key', () => `local:${randomBytes(32).toString('base64')}`)
    config.encryptionKeys = parseEncryptionKeys(key.value)
  }
  if (config.internalToken === undefined) {
    config.internalToken = (await localSecret(config.dataDir, 'internal-token', () => randomBytes(24).toString('base64url'))).value
  }

  const box = new SecretBox(config.encryptionKeys)
  const store = await openStore({ databaseUrl: config.databaseUrl, dataDir: config.dataDir })
  const metrics = metricsObserver()
  const app = await buildApp(config, {
    store,
    box,
    templates: loadTemplates(config.templatesDir),
    agents: new AgentClient({ timeoutMs: config.agentTimeoutMs, observe: metrics.agentCall }),
    metrics
  })

  let localAgent: { url: string, close: () => Promise<void> } | undefined
  if (config.localSandbox !== '') {
    if (process.getuid?.() !== 0) {
      app.log.warn('the local agent needs root to mount; the sandbox "%s" is not served (set LOCAL_SANDBOX= to silence this)', config.localSandbox)
    } else {
      const token = randomBytes(24).toString('base64url')
      localAgent = await startAgent(loadAgentConfig({
        AGENT_TOKEN: token,
        AGENT_PORT: '0',
        AGENT_CONFIG_DIR: config.localAgentConfigDir,
        AGENT_STATE_DIR: path.join(config.dataDir, 'agent'),
        SANDBOX_USER: config.sandboxUser,
        AGENT_LOG_LEVEL: config.logLevel,
        PATH: process.env.PATH
      }))
      await app.mounts.registerSandbox(config.localSandbox, { tenant: config.firstTenant ?? 'dev', agentUrl: localAgent.url, agentToken: token })
    }
  }

  closeWithGrace({ delay: 10000 }, async ({ err }) => {
    if (err !== undefined) app.log.error({ err: { type: err.name, stack: err.stack } }, 'shutting down after an error')
    await app.close()
    await localAgent?.close()
    await store.close()
  })

  const address = await app.listen({ port: config.port, host: config.host })
  app.reconciler.start()
  const served = localAgent !== undefined
  if (banner.length > 0 || served) {
    const lines = [
      '',
      `sandbox-mounts is listening on ${address} (registry: ${store.kind}${store.kind === 'sqlite' ? ` in ${config.dataDir}` : ''})`,
      ...banner,
      ...(served ? [`Local sandbox "${config.localSandbox}" is served by an in-process agent on this host.`] : []),
      `API reference: ${address}/docs`,
      ''
    ]
    process.stdout.write(lines.join('\n') + '\n')
  }
}

await main()
