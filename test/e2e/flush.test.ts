import t from 'tap'
import { readFile } from 'node:fs/promises'
import path from 'node:path'
import { buildE2E } from '../helpers/e2e.ts'
import { TENANT_A } from '../helpers/app.ts'
import { startWebdavServer, startS3Server } from '../helpers/servers.ts'
import { runAs } from '../helpers/sandbox-user.ts'

// Nothing lost: a file written and closed just before a remove is in the backend afterwards,
// every time (the close reaches rclone asynchronously after the writer's close() returns).

const ROUNDS = 8

t.test('write then remove at once, repeatedly: every file reaches WebDAV and S3', async t => {
  const dav = await startWebdavServer()
  t.teardown(dav.stop)
  const s3 = await startS3Server({ buckets: ['flush-bucket'] })
  t.teardown(s3.stop)
  const e = await buildE2E(t)
  const h = e.auth(TENANT_A.key)
  const targets = [
    { name: 'webdav', body: { remote: 'dav:', backend: 'webdav', creds: { url: dav.url, user: dav.user, pass: dav.pass } }, read: async (f: string) => await readFile(path.join(dav.dir, f), 'utf8').catch(() => null) },
    { name: 's3', body: { remote: 's3:flush-bucket', backend: 's3', creds: { provider: 'Other', access_key_id: s3.accessKeyId, secret_access_key: s3.secretAccessKey, endpoint: s3.endpoint, force_path_style: true } }, read: async (f: string) => { const b = await s3.readObject('flush-bucket', f); return b === null ? null : String(b) } }
  ]
  for (const target of targets) {
    let lost = 0
    for (let i = 0; i < ROUNDS; i++) {
      const mnt = path.join(e.root, `${target.name}-${i}`)
      const add = await e.app.inject({ method: 'POST', url: '/sandboxes/e2e/mounts', headers: h, payload: { path: mnt, readWrite: true, ...target.body } })
      t.equal(add.statusCode, 201, add.body)
      const file = `round-${i}.txt`
      const w = await runAs('sandbox', ['sh', '-c', `printf 'round ${i}' > '${mnt}/${file}'`])
      t.equal(w.code, 0, w.stderr)
      const del = await e.app.inject({ method: 'DELETE', url: `/sandboxes/e2e/mounts/${add.json().id as string}`, headers: h })
      t.equal(del.statusCode, 204, del.body)
      if (await target.read(file) !== `round ${i}`) lost++
    }
    t.equal(lost, 0, `${target.name}: no write lost in ${ROUNDS} write-then-remove rounds`)
  }
})
