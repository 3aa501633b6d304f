import t from 'tap'
import { scrub, tail } from '../../src/agent/scrub.ts'

t.test('replaces every secret, longest first, in plain, URL-encoded and JSON-escaped forms', async t => {
  t.equal(scrub('user pw=abc123 and abc123 again', ['abc123']), 'user pw=*** and *** again')
  t.equal(scrub('token abcdef', ['abc', 'abcdef']), 'token ***', 'the longer secret goes whole')
  t.equal(scrub('url https://x/?sig=a%2Fb%3D', ['a/b=']), 'url https://x/?sig=***')
  t.equal(scrub('{"k":"line\\nbreak"}', ['line\nbreak']), '{"k":"***"}')
  t.equal(scrub('nothing here', ['', 'absent']), 'nothing here', 'empty values are ignored')
})

t.test('tail keeps the end, cut at a line start', async t => {
  t.equal(tail('short'), 'short')
  const text = Array.from({ length: 100 }, (_, i) => `line ${i}`).join('\n')
  const out = tail(text, 50)
  t.ok(out.length <= 50)
  t.ok(out.endsWith('line 99'))
  t.match(out, /^line \d+/)
})
