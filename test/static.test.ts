import t from 'tap'
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import path from 'node:path'

// The whole tree typechecks (what `npm start`'s build needs) and follows the house style.

const run = promisify(execFile)
const ROOT = path.resolve(import.meta.dirname, '..')
const bin = (name: string): string => path.join(ROOT, 'node_modules', '.bin', name)

t.test('tsc --noEmit is clean', async t => {
  const res = await run(bin('tsc'), ['--noEmit', '-p', 'tsconfig.json'], { cwd: ROOT, timeout: 240_000, maxBuffer: 16 << 20 }).then(r => ({ ok: true, out: r.stdout }), (e: { stdout?: string }) => ({ ok: false, out: e.stdout ?? String(e) }))
  t.ok(res.ok, res.out.slice(0, 4000))
})

t.test('eslint (neostandard) is clean', async t => {
  const res = await run(bin('eslint'), ['.'], { cwd: ROOT, timeout: 240_000, maxBuffer: 16 << 20 }).then(r => ({ ok: true, out: r.stdout }), (e: { stdout?: string }) => ({ ok: false, out: e.stdout ?? String(e) }))
  t.ok(res.ok, res.out.slice(0, 4000))
})
