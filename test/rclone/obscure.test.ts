import t from 'tap'
import fc from 'fast-check'
import { obscure, reveal } from '../../src/rclone/obscure.ts'
import { rcloneSandbox } from '../helpers/rclone.ts'

const FIXED = [
  '', 'a', 'hunter2', ' leading and trailing ', 'p=a:s;s#w"o\'r`d', '"""', '\\n literal',
  'héllo wörld', '日本語のパスワード', '🎉🔐 emoji', 'ZmFrZQ==', 'x'.repeat(5000), 'tab\there', 'nul\u0000inside'
]

t.test('rclone reveal returns the original of obscure() for fixed values', async t => {
  const rc = rcloneSandbox(t)
  for (const value of FIXED) {
    t.equal(await rc.reveal(obscure(value)), value, JSON.stringify(value.slice(0, 40)))
  }
})

t.test('rclone reveal returns the original of obscure() for arbitrary text', async t => {
  const rc = rcloneSandbox(t)
  const values = fc.sample(fc.string({ unit: 'grapheme', maxLength: 200 }), { numRuns: 40, seed: 42 })
  for (const value of values) t.equal(await rc.reveal(obscure(value)), value)
})

t.test('reveal() reads what rclone obscure writes', async t => {
  const rc = rcloneSandbox(t)
  // rclone obscure - reads one line from stdin, so no line breaks here.
  const values = ['simple', ' spaced ', 'ünïcödé ✓', 'x'.repeat(1000), ...fc.sample(fc.string({ unit: 'grapheme', maxLength: 80 }).filter(s => !/[\r\n]/.test(s)), { numRuns: 20, seed: 7 })]
  for (const value of values) t.equal(reveal(await rc.obscure(value)), value)
})

t.test('obscure uses a fresh IV each time', async t => {
  const a = obscure('same')
  const b = obscure('same')
  t.not(a, b)
  t.equal(reveal(a), reveal(b))
  t.match(a, /^[A-Za-z0-9_-]+$/, 'base64url without padding')
})

t.test('reveal refuses values that are not obscured, without echoing them', async t => {
  for (const bad of ['not base64!', 'abc', 'A'.repeat(21), 'padded==', 'a b c d e f g h i j k l m n o p']) {
    const err = t.throws(() => reveal(bad), JSON.stringify(bad)) as Error
    t.notMatch(err.message, bad)
  }
  // CTR is malleable: flip the ciphertext so the value reveals to bytes that are not UTF-8,
  // which is what a long plaintext that happens to be base64url reveals to.
  const raw = Buffer.from(obscure('abcd'), 'base64url')
  const bad = Buffer.from([0xff, 0xfe, 0xc3, 0x28])
  for (let i = 0; i < 4; i++) raw[16 + i] ^= 'abcd'.charCodeAt(i) ^ bad[i]
  t.throws(() => reveal(raw.toString('base64url')), /does not reveal to text/)
})
