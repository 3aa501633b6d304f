import t from 'tap'
import fc from 'fast-check'
import { parseRemote, isValidSectionName } from '../../src/rclone/remote.ts'
import { rcloneSandbox } from '../helpers/rclone.ts'

t.test('splits <section>:<path> at the first colon', async t => {
  t.same(parseRemote('s3:bucket/data'), { section: 's3', root: 'bucket/data' })
  t.same(parseRemote('my remote.v2_x-y:'), { section: 'my remote.v2_x-y', root: '' })
  t.same(parseRemote('a:b:c/d e'), { section: 'a', root: 'b:c/d e' })
  t.same(parseRemote('.hidden:/abs'), { section: '.hidden', root: '/abs' })
  t.same(parseRemote(`${'x'.repeat(64)}:p`).section, 'x'.repeat(64))
})

t.test('refuses remotes rclone would not map to one config section', async t => {
  const bad = [
    ':s3:bucket', // on-the-fly backend
    '::', 'nocolon', '/local/path', ':',
    '-dash:x', ' lead:x', 'trail :x', 'a+b:x', 'a@b:x',
    's3,endpoint=http://x:bucket', // connection-string options
    'a/b:x', 'ü:x', `${'x'.repeat(65)}:p`,
    'a:b\nc', 'a\u0000:b', 'a:\u007f', 'a:\u0085'
  ]
  for (const remote of bad) {
    const err = t.throws(() => parseRemote(remote), JSON.stringify(remote)) as Error & { code: string }
    t.equal(err.code, 'INVALID_REMOTE')
    t.match(err.message, /^remote/)
  }
})

const NAME_CHARS = fc.constantFrom(...'abcXYZ019_.- ')
const NAMES = fc.array(NAME_CHARS, { minLength: 1, maxLength: 20 }).map(chars => chars.join('')).filter(isValidSectionName)

t.test('every accepted section name round-trips through rclone (real rclone)', async t => {
  const rc = rcloneSandbox(t)
  const names = [...new Set(fc.sample(NAMES, { numRuns: 80, seed: 3 }))]
  const config = names.map(name => `[${name}]\ntype = memory\n`).join('\n')
  const dump = await rc.dump(config)
  t.same(Object.keys(dump).sort(), [...names].sort(), 'rclone reads every section header back by that name')
  const file = rc.writeConfig(config)
  for (const name of names.slice(0, 6)) {
    const res = await rc.run(['--config', file, 'lsf', `${name}:`])
    t.equal(res.code, 0, `rclone lsf ${JSON.stringify(name)}: works (${res.stderr.trim()})`)
  }
})

t.test('names refused here are refused by rclone 1.60 too (real rclone)', async t => {
  const rc = rcloneSandbox(t)
  const file = rc.writeConfig('[a+b]\ntype = memory\n[a@b]\ntype = memory\n[ab]\ntype = memory\n')
  for (const name of ['a+b', 'a@b']) {
    t.notOk(isValidSectionName(name))
    const res = await rc.run(['--config', file, 'lsf', `${name}:`])
    t.not(res.code, 0)
    t.match(res.stderr, /invalid characters/)
  }
  t.equal((await rc.run(['--config', file, 'lsf', 'ab:'])).code, 0, 'control: a plain name works')
})
