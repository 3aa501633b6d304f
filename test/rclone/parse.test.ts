import t from 'tap'
import fc from 'fast-check'
import { parseRcloneConfig, ConfigParseError, goTrimSpace, type RcloneConfig } from '../../src/rclone/parse.ts'
import { rcloneSandbox, type Dump } from '../helpers/rclone.ts'

function toObject (config: RcloneConfig): Dump {
  return Object.fromEntries([...config].map(([name, values]) => [name, Object.fromEntries(values)]))
}

t.test('reads rclone syntax: colon keys, comments, quotes, merges, empty values', async t => {
  const config = parseRcloneConfig([
    '\ufeff# comment',
    '; another comment',
    '[a]',
    'type: s3',
    '  key =  spaced value  ',
    'colon : a=b:c',
    'q1 = `  kept  ` ignored after',
    'q2 = """ "x" """',
    'q3 = "literal quotes"',
    'gone = x',
    '[b]',
    'type = memory',
    '[ a ]',
    'gone =',
    'key = later wins',
    '#not = a key'
  ].join('\r\n'))
  t.same(toObject(config), {
    a: { type: 's3', key: 'later wins', colon: 'a=b:c', q1: '  kept  ', q2: ' "x" ', q3: '"literal quotes"', gone: '' },
    b: { type: 'memory' }
  })
})

t.test('refuses what rclone would read differently or not at all', async t => {
  const cases: Array<[string, RegExp]> = [
    ['[a]\nkey = `unterminated', /unterminated/],
    ['[a]\nkey = """unterminated"', /unterminated/],
    ['[a]\n`quoted key` = v', /quoted keys/],
    ['[a]\n- = v', /auto-numbered/],
    ['key = v\n[a]', /outside of any \[section\]/],
    ['[a]\njust words', /expected key = value/],
    ['[a]\n= v', /empty key/],
    ['[]\n', /empty section name/],
    ['[a\n', /must end with \]/],
    ['[a]\nkey = a\u0000b', /control characters/],
    ['[a]\nkey = a\rb', /control characters/],
    ['[a]\nkey = a\u0085b', /control characters/],
    ['RCLONE_ENCRYPT_V0:\nabc', /encrypted/]
  ]
  for (const [text, message] of cases) {
    const err = t.throws(() => parseRcloneConfig(text), message, JSON.stringify(text))
    t.ok(err instanceof ConfigParseError)
  }
  t.equal((t.throws(() => parseRcloneConfig('[a]\nok = 1\n\nbad line')) as ConfigParseError).line, 4, 'reports the line')
})

t.test('rclone itself rejects the unterminated quotes we refuse', async t => {
  const rc = rcloneSandbox(t)
  for (const text of ['[a]\ntype = memory\nkey = `unterminated\n', '[a]\ntype = memory\nkey = """unterminated"\n']) {
    const res = await rc.run(['config', 'dump', '--config', rc.writeConfig(text)])
    t.not(res.code, 0, JSON.stringify(text))
  }
})

t.test('goTrimSpace trims what Go trims and nothing else', async t => {
  t.equal(goTrimSpace('\u00a0\u3000 x \u2028\u0085'), 'x')
  t.equal(goTrimSpace('\ufeffx\ufeff'), '\ufeffx\ufeff', 'U+FEFF is not a Go space')
})

// Fragments chosen to hit goconfig's corner cases; generated lines combine them at random.
// Section names get a per-config prefix so many configs can share one rclone call.
type Line = (prefix: string) => string
const SPACE = fc.constantFrom('', ' ', '  ', '\t', '\u00a0', '\u3000', '\u2003')
const NAME = fc.constantFrom('a', 'b', 'a.b', 'my remote', 's3')
const KEY = fc.constantFrom('type', 'k', 'key_2', 'Key', 'x')
const VALUE_PART = fc.constantFrom(
  'v', '=', ':', ';', '#', '`', '"', '"""', '[', ']', ' ', '\u00a0', 'é', '🎉', 'abc==', '\\', "'", 'x y'
)
const VALUE = fc.array(VALUE_PART, { maxLength: 6 }).map(parts => parts.join(''))
const LINE: fc.Arbitrary<Line> = fc.oneof(
  fc.tuple(SPACE, NAME, SPACE, SPACE).map(([a, n, b, c]) => (p: string) => `${a}[${b}${p}${n}${c}]`),
  fc.tuple(SPACE, KEY, SPACE, fc.constantFrom('=', ':'), SPACE, VALUE, SPACE).map(parts => () => parts.join('')),
  fc.tuple(SPACE, fc.constantFrom('#', ';'), VALUE).map(parts => () => parts.join('')),
  SPACE.map(space => () => space)
)
const CONFIG = fc.tuple(NAME, fc.array(LINE, { maxLength: 12 }))
  .map(([first, lines]) => (p: string) => [`[${p}${first}]`, ...lines.map(line => line(p))].join('\n') + '\n')

t.test('parses exactly as rclone config dump reads it (differential, real rclone)', async t => {
  const rc = rcloneSandbox(t)
  const configs = fc.sample(CONFIG, { numRuns: 300, seed: 20240601 })
  const batches: Array<{ text: string, expected: Dump }> = []
  let compared = 0
  configs.forEach((config, i) => {
    const text = config(`c${i}_`)
    let ours: RcloneConfig
    try {
      ours = parseRcloneConfig(text)
    } catch (err) {
      t.ok(err instanceof ConfigParseError)
      return
    }
    compared++
    if (batches.length === 0 || compared % 25 === 0) batches.push({ text: '', expected: {} })
    const batch = batches[batches.length - 1]
    batch.text += text
    Object.assign(batch.expected, toObject(ours))
  })
  for (const [i, batch] of batches.entries()) t.same(await rc.dump(batch.text), batch.expected, `batch ${i} reads the same`)
  t.ok(compared > 150, `compared ${compared} configs with rclone`)
})
