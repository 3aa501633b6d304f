import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { randomBytes } from 'node:crypto'
import { stringify } from 'yaml'
import { buildApp } from './app.ts'
import { loadConfig } from './config.ts'
import { AgentClient } from './agent/client.ts'
import { SecretBox, sha256 } from './secrets.ts'
import { openStore } from './mounts/store.ts'
import { loadTemplates } from './rclone/templates.ts'

/** The OpenAPI document generated from the route schemas, as committed in openapi.yaml. */
export async function generateOpenApiYaml (): Promise<string> {
  const dataDir = await mkdtemp(path.join(tmpdir(), 'sandbox-mounts-openapi-'))
  const store = await openStore({ dataDir })
  try {
    const config = loadConfig({ LOG_LEVEL: 'silent', RECONCILE_INTERVAL_MS: '0' }, sha256)
    const app = await buildApp(config, {
      store,
      agents: new AgentClient({ timeoutMs: 1000 }),
      box: new SecretBox([{ id: 'k1', key: randomBytes(32) }]),
      templates: loadTemplates(config.templatesDir)
    })
    await app.ready()
    const doc = app.swagger()
    await app.close()
    return '# Generated from the route schemas by `npm run openapi`; a test fails when it is stale.\n' + stringify(doc, { lineWidth: 0 })
  } finally {
    await store.close()
    await rm(dataDir, { recursive: true, force: true })
  }
}
