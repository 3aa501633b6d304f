import t from 'tap'
import { setTimeout as sleep } from 'node:timers/promises'
import { KeyedMutex } from '../../src/lib/keyed-mutex.ts'

t.test('runs callers of one key one at a time, in order, and forgets released keys', async t => {
  const mutex = new KeyedMutex()
  const log: string[] = []
  const runs = [30, 10, 0].map(async (delay, i) => await mutex.run('k', async () => {
    log.push(`in ${i}`)
    await sleep(delay)
    log.push(`out ${i}`)
    return i
  }))
  t.equal(mutex.size, 1, 'one entry for a key with a holder and waiters')
  t.same(await Promise.all(runs), [0, 1, 2])
  t.same(log, ['in 0', 'out 0', 'in 1', 'out 1', 'in 2', 'out 2'])
  t.equal(mutex.size, 0, 'no entry left after release')
})

t.test('other keys do not wait; a throwing fn releases its key', async t => {
  const mutex = new KeyedMutex()
  let release!: () => void
  const gate = new Promise<void>(resolve => { release = resolve })
  const held = mutex.run('a', async () => { await gate })
  t.equal(await mutex.run('b', async () => 'b ran'), 'b ran')
  t.equal(mutex.size, 1)
  release()
  await held

  await t.rejects(mutex.run('a', async () => { throw new Error('nope') }), /nope/)
  t.equal(await mutex.run('a', async () => 'after'), 'after')
  t.equal(mutex.size, 0)

  for (let i = 0; i < 1000; i++) await mutex.run(`key-${i}`, async () => i)
  t.equal(mutex.size, 0, 'many distinct keys leave nothing behind')
})

t.test('re-entrant for the holder, still exclusive for others', async t => {
  const mutex = new KeyedMutex()
  const log: string[] = []
  t.equal(mutex.holds('k'), false)
  const outer = mutex.run('k', async () => {
    t.equal(mutex.holds('k'), true)
    t.equal(mutex.holds('other'), false)
    await sleep(20)
    const inner = await mutex.run('k', async () => { log.push('inner'); return 'nested' })
    log.push('outer done')
    return inner
  })
  const stranger = mutex.run('k', async () => { log.push('stranger') })
  const outcome = await Promise.race([Promise.all([outer, stranger]), sleep(5000).then(() => 'deadlock')])
  t.same(outcome, ['nested', undefined])
  t.same(log, ['inner', 'outer done', 'stranger'])
  t.equal(mutex.holds('k'), false)
  t.equal(mutex.size, 0)
})
