import t from 'tap'
import { readFile, stat } from 'node:fs/promises'
import { join } from 'node:path'
import pino from 'pino'
import { RcError } from '../../src/agent/rc.ts'
import { processAlive, RcdSupervisor } from '../../src/agent/rcd.ts'
import { makeBase, obscure } from './fixture.ts'

// A real rclone rcd: started with a minimal environment and no secret on its command line,
// adopted by a second supervisor, and its error answers (which echo the request) never passed on.

t.test('rcd start, adoption, scrubbed errors, stop', async t => {
  const base = await makeBase(t)
  const opts = { rclone: '/usr/bin/rclone', stateDir: join(base, 'state'), configDir: join(base, 'config'), path: '/usr/bin:/bin', log: pino({ level: 'silent' }) }
  const sup = new RcdSupervisor(opts)
  t.teardown(() => sup.stop())
  const rc = await sup.ensure()
  const pid = sup.pid as number
  t.ok(await processAlive(pid))

  const state = JSON.parse(await readFile(join(opts.stateDir, 'rcd.json'), 'utf8')) as { pass: string, pid: number }
  t.equal(state.pid, pid)
  t.equal((await stat(join(opts.stateDir, 'rcd.json'))).mode & 0o777, 0o600)
  const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8')
  t.notOk(cmdline.includes(state.pass), 'the rc password is not on the command line')
  // tap's process instrumentation adds its own variables to every child it sees spawned
  const environ = (await readFile(`/proc/${pid}/environ`, 'utf8')).split('\0').filter(Boolean).map(v => v.split('=')[0])
    .filter(name => !name.startsWith('_TAPJS_') && name !== 'NODE_OPTIONS').sort()
  t.same(environ, ['HOME', 'PATH', 'RCLONE_RC_PASS', 'RCLONE_RC_USER'], 'nothing else from the agent environment')

  const secret = obscure('pl41n-s3cret-value')
  const err = await rc.call('operations/list', { fs: { type: 'webdav', url: 'http://127.0.0.1:1', user: 'u', pass: secret, _root: '' }, remote: '' }, { redact: [secret], timeoutMs: 10_000 }).catch((e: unknown) => e)
  t.ok(err instanceof RcError)
  t.match((err as Error).message, /connection refused/)
  t.notOk((err as Error).message.includes(secret), 'the echoed input is dropped')
  t.notOk((err as Error).message.includes('input'))

  const second = new RcdSupervisor(opts)
  await second.ensure()
  t.equal(second.pid, pid, 'a second supervisor adopts the running daemon')

  await sup.stop()
  t.notOk(await processAlive(pid), 'stopped')
  t.equal(await second.current(), undefined, 'the adopter notices')
  await second.ensure()
  t.not(second.pid, pid, 'and starts a new one on demand')
  await second.stop()
})
