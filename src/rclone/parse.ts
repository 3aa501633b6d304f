// Parses rclone config text the way rclone 1.60 reads it (github.com/Unknwon/goconfig v1.0.0,
// see shared/RCLONE.md): lines end at `\n`; each line and each key and value is trimmed with
// Go's unicode.IsSpace; a line starting with `#` or `;` is a comment; a line split at the first
// `=` or `:`; a value starting with a backtick (or `"""`, 6+ bytes) runs to the last backtick
// (or `"""`) and whatever follows is dropped; `"..."` stays literal; an empty value is kept as
// empty; duplicate sections merge with later keys winning. Anything rclone might read differently
// from us is refused instead of guessed: the caller re-renders a canonical config from the map.

export type RcloneSection = Map<string, string>
export type RcloneConfig = Map<string, RcloneSection>

export class ConfigParseError extends Error {
  readonly line: number
  constructor (message: string, line: number) {
    super(`rcloneConfig line ${line}: ${message}`)
    this.line = line
  }
}

// C0 except tab, DEL, C1 and lone surrogates (they cannot be written back as UTF-8).
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f]|\p{Cs}/u
// Go's unicode.IsSpace: ASCII space/tab/VT/FF/CR/LF, NEL, NBSP and categories Zs, Zl, Zp.
const GO_SPACE = '[\\t\\n\\v\\f\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]'
const LEADING_SPACE = new RegExp(`^${GO_SPACE}+`)
const TRAILING_SPACE = new RegExp(`${GO_SPACE}+$`)

/** strings.TrimSpace as Go does it (JS trim() differs: it strips U+FEFF and keeps U+0085). */
export function goTrimSpace (s: string): string {
  return s.replace(LEADING_SPACE, '').replace(TRAILING_SPACE, '')
}

export function isGoSpace (ch: string): boolean {
  return LEADING_SPACE.test(ch)
}

function byteLength (s: string): number {
  return Buffer.byteLength(s, 'utf8')
}

function parseValue (right: string, lineNo: number): string {
  let quote = ''
  if (byteLength(right) >= 2 && right.startsWith('`')) quote = '`'
  else if (byteLength(right) >= 6 && right.startsWith('"""')) quote = '"""'
  if (quote === '') return right
  const end = right.lastIndexOf(quote)
  if (end < quote.length) throw new ConfigParseError(`unterminated ${quote} quoted value`, lineNo)
  return right.slice(quote.length, end)
}

export function parseRcloneConfig (text: string): RcloneConfig {
  const config: RcloneConfig = new Map()
  let current: RcloneSection | undefined
  const lines = text.replace(/^\ufeff/, '').split('\n')
  for (let i = 0; i < lines.length; i++) {
    const lineNo = i + 1
    const raw = lines[i].endsWith('\r') ? lines[i].slice(0, -1) : lines[i]
    if (CONTROL.test(raw)) throw new ConfigParseError('control characters are not allowed', lineNo)
    const line = goTrimSpace(raw)
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue
    if (line.startsWith('RCLONE_ENCRYPT_V')) throw new ConfigParseError('encrypted configs are not accepted', lineNo)
    if (line.startsWith('[')) {
      if (!line.endsWith(']')) throw new ConfigParseError('section header must end with ]', lineNo)
      const name = goTrimSpace(line.slice(1, -1))
      if (name === '') throw new ConfigParseError('empty section name', lineNo)
      current = config.get(name)
      if (current === undefined) {
        current = new Map()
        config.set(name, current)
      }
      continue
    }
    // goconfig reads a key wrapped in quotes differently (it may then hold `=` or `:`).
    if (line.startsWith('"') || line.startsWith('`')) throw new ConfigParseError('quoted keys are not accepted', lineNo)
    const at = line.search(/[=:]/)
    if (at === -1) throw new ConfigParseError('expected key = value', lineNo)
    if (current === undefined) throw new ConfigParseError('key outside of any [section]', lineNo)
    const key = goTrimSpace(line.slice(0, at))
    if (key === '') throw new ConfigParseError('empty key', lineNo)
    // goconfig renames a key `-` to an auto-numbered `#1`, `#2`, ...
    if (key === '-') throw new ConfigParseError('auto-numbered keys (-) are not accepted', lineNo)
    const value = parseValue(goTrimSpace(line.slice(at + 1)), lineNo)
    current.set(key, value)
  }
  return config
}
