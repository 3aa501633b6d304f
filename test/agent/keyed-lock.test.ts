import t from 'tap'
import { KeyedLock } from '../../src/agent/keyed-lock.ts'

t.test('one at a time per key, in order; other keys run alongside; a failure does not block', async t => {
  const lock = new KeyedLock()
  const events: string[] = []
  const step = (name: string, ms: number, fail = false) => async () => {
    events.push(`${name}:start`)
    await new Promise(resolve => setTimeout(resolve, ms))
    events.push(`${name}:end`)
    if (fail) throw new Error(name)
    return name
  }
  const results = await Promise.allSettled([
    lock.run('a', step('a1', 30, true)),
    lock.run('a', step('a2', 10)),
    lock.run('b', step('b1', 5))
  ])
  t.equal(results[0].status, 'rejected')
  t.same(results.slice(1).map(r => r.status === 'fulfilled' ? r.value : null), ['a2', 'b1'])
  t.ok(events.indexOf('a1:end') < events.indexOf('a2:start'), 'a2 waited for a1')
  t.ok(events.indexOf('b1:start') < events.indexOf('a1:end'), 'b ran alongside a')
})
