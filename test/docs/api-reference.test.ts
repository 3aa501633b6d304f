import t from 'tap'
import { execFile } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { buildTestApp } from '../helpers/app.ts'

// The API reference at /docs renders in a real browser, offline: swagger-ui's assets come
// from the service itself, and the page lists the mounts routes from the route schemas.

const CHROMIUM = '/usr/bin/chromium'

function dumpDom (url: string, profile: string): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(CHROMIUM, [
      '--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
      '--no-first-run', '--disable-dev-shm-usage', `--user-data-dir=${profile}`, '--virtual-time-budget=5000', '--dump-dom', url
    ], { timeout: 45_000, maxBuffer: 32 * 1024 * 1024, env: { PATH: process.env.PATH, HOME: profile } }, (err, stdout) => {
      if (err !== null) reject(err)
      else resolve(stdout)
    })
  })
}

t.test('/docs renders the mounts API in headless chromium', async t => {
  const { app } = await buildTestApp(t)
  const requested: string[] = []
  app.addHook('onRequest', async (request) => { requested.push(request.url) })
  const url = await app.listen({ port: 0, host: '127.0.0.1' })
  const profile = await mkdtemp(path.join(tmpdir(), 'sm-chromium-'))
  t.teardown(async () => { await rm(profile, { recursive: true, force: true }) })

  const dom = await dumpDom(`${url}/docs/`, profile)
  t.match(dom, /class="swagger-ui/, 'swagger-ui mounted into the page')
  t.match(dom, /\/sandboxes\/\{sandboxId\}\/mounts/, 'the mounts path is listed')
  t.match(dom, /addMount/, 'operation ids are shown')
  t.match(dom, /removeMountByPath/)
  t.match(dom, /\/internal\/sandboxes\/\{sandboxId\}/)
  t.ok(requested.some(u => u.includes('swagger-ui-bundle.js')), 'the script came from the service')
  t.ok(requested.some(u => /\/docs\/json|\/openapi\.json/.test(u)), 'the spec came from the service')
})
