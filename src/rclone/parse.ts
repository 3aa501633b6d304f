// Parses rclone config text the way rclone 1.60 reads it (shared/RCLONE.md): a line splits at
// the first `=` or `:`, keys and values are trimmed, `#`/`;` start a comment only at the start
// of a line, a value wrapped in backticks or """ is unquoted, duplicate sections merge with
// later keys winning. Anything rclone might read differently from us is refused instead of
// guessed: the caller re-renders a canonical config from the returned map.

export type RcloneSection = Map<string, string>
export type RcloneConfig = Map<string, RcloneSection>

export class ConfigParseError extends Error {
  readonly line: number
  constructor (message: string, line: number) {
    super(`rcloneConfig line ${line}: ${message}`)
    this.line = line
  }
}

// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u0008\u000b-\u001f\u007f]/

function unquote (value: string): string {
  if (value.length >= 6 && value.startsWith('"""') && value.endsWith('"""')) return value.slice(3, -3)
  if (value.length >= 2 && value.startsWith('`') && value.endsWith('`')) return value.slice(1, -1)
  return value
}

export function parseRcloneConfig (text: string): RcloneConfig {
  const config: RcloneConfig = new Map()
  let current: RcloneSection | undefined
  const lines = text.split('\n')
  for (let i = 0; i < lines.length; i++) {
    const lineNo = i + 1
    const raw = lines[i].endsWith('\r') ? lines[i].slice(0, -1) : lines[i]
    if (CONTROL.test(raw)) throw new ConfigParseError('control characters are not allowed', lineNo)
    const line = raw.trim()
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue
    if (line.startsWith('RCLONE_ENCRYPT_V0:')) throw new ConfigParseError('encrypted configs are not accepted', lineNo)
    if (line.startsWith('[')) {
      if (!line.endsWith(']')) throw new ConfigParseError('section header must end with ]', lineNo)
      const name = line.slice(1, -1).trim()
      if (name === '') throw new ConfigParseError('empty section name', lineNo)
      current = config.get(name)
      if (current === undefined) {
        current = new Map()
        config.set(name, current)
      }
      continue
    }
    const eq = line.indexOf('=')
    const colon = line.indexOf(':')
    const at = eq === -1 ? colon : colon === -1 ? eq : Math.min(eq, colon)
    if (at === -1) throw new ConfigParseError('expected key = value', lineNo)
    if (current === undefined) throw new ConfigParseError('key outside of any [section]', lineNo)
    const key = line.slice(0, at).trim()
    if (key === '') throw new ConfigParseError('empty key', lineNo)
    if (line.endsWith('\\')) throw new ConfigParseError('line continuations are not accepted', lineNo)
    current.set(key, unquote(line.slice(at + 1).trim()))
  }
  return config
}
