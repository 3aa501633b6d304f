import t from 'tap'
import { readFile } from 'node:fs/promises'
import { parse } from 'yaml'
import { generateOpenApiYaml } from '../src/openapi.ts'

t.test('openapi.yaml is what the route schemas generate (run `npm run openapi` after changing routes)', async t => {
  const committed = await readFile(new URL('../openapi.yaml', import.meta.url), 'utf8')
  const generated = await generateOpenApiYaml()
  t.equal(committed, generated, 'openapi.yaml is stale')
  const doc = parse(generated)
  t.ok(doc.paths['/sandboxes/{sandboxId}/mounts'].post, 'POST mounts documented')
  t.equal(doc.paths['/sandboxes/{sandboxId}/mounts'].post.operationId, 'addMount')
  t.ok(doc.paths['/sandboxes/{sandboxId}/mounts'].post.responses['409'], 'conflict documented')
  for (const [route, ops] of Object.entries(doc.paths as Record<string, Record<string, { operationId?: string }>>)) {
    for (const [method, op] of Object.entries(ops)) t.ok(op.operationId, `${method} ${route} has an operationId`)
  }
})
