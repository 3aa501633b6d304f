import type { BackendTemplate, TemplateKey } from '../schemas/template.ts'
import { InvalidConfig, InvalidCredentials, InvalidRemote } from '../errors.ts'
import { parseRcloneConfig, ConfigParseError, isGoSpace, type RcloneConfig, type RcloneSection } from './parse.ts'
import { obscure, reveal } from './obscure.ts'
import { isValidSectionName } from './remote.ts'
import { checkSection, canonicalType, isGoTrue, looksSecret, PASSWORD_KEYS } from './policy.ts'

// Turns typed creds or a caller's raw config into canonical rclone INI text holding exactly
// the one section to mount. Both paths build a map, check it, and write it with the single
// writer below; a caller's text is never passed on.

export interface Rendered {
  /** rclone config text with exactly one section. */
  config: string
  section: string
  /** rclone type as written into the config. */
  type: string
  /** Option keys written, besides `type`, sorted. */
  keys: string[]
  /** Every secret value as given and as written (obscured), for log scrubbing. */
  redact: string[]
}

const KEY = /^[A-Za-z0-9_]+$/
// C0 (tab included), DEL, C1, and lone surrogates (not writable as UTF-8).
// eslint-disable-next-line no-control-regex
const UNWRITABLE = /[\u0000-\u001f\u007f-\u009f]/
const LONE_SURROGATE = /\p{Cs}/u
// goconfig substitutes %(name)s in every value it returns; there is no escape for it.
const SUBSTITUTION = /%\([^)]+\)s/

/** Why rclone 1.60 could not read this value back exactly, or undefined if it can. */
export function valueProblem (value: string): string | undefined {
  if (UNWRITABLE.test(value)) return 'must not contain line breaks or other control characters'
  if (LONE_SURROGATE.test(value)) return 'is not valid Unicode text'
  if (SUBSTITUTION.test(value)) return 'must not contain %(name)s: rclone would substitute it'
  return undefined
}

// goconfig trims values with Go's unicode.IsSpace and unwraps a value starting with a backtick
// up to its last backtick, so wrapping in backticks keeps any value (backticks and """
// included) exactly. Values that start with `"` are wrapped too, since `"""...` is unwrapped.
function writeValue (value: string): string {
  const needsQuotes = value.startsWith('`') || value.startsWith('"') ||
    isGoSpace(value[0]) || isGoSpace(value[value.length - 1])
  return needsQuotes ? `\`${value}\`` : value
}

function configField (section: string, key: string): string {
  return KEY.test(key) && key.length <= 64 ? `rcloneConfig [${section}] ${key}` : `rcloneConfig [${section}] key ${JSON.stringify(key.slice(0, 64))}`
}

/**
 * The one canonical INI writer. Throws InvalidConfig naming the key for what cannot be written
 * so that rclone reads it back unchanged.
 */
export function serializeConfig (config: RcloneConfig): string {
  const out: string[] = []
  for (const [section, values] of config) {
    if (!isValidSectionName(section)) throw new InvalidRemote('remote section name is not one rclone accepts')
    out.push(`[${section}]`)
    for (const [key, value] of values) {
      if (!KEY.test(key)) throw new InvalidConfig(`${configField(section, key)}: key names may only contain letters, digits and _`)
      const problem = valueProblem(value)
      if (problem !== undefined) throw new InvalidConfig(`${configField(section, key)}: ${problem}`)
      out.push(value === '' ? `${key} =` : `${key} = ${writeValue(value)}`)
    }
    out.push('')
  }
  return out.join('\n')
}

function sortedSection (type: string, values: ReadonlyMap<string, string>): RcloneSection {
  const section: RcloneSection = new Map([['type', type]])
  for (const key of [...values.keys()].filter(k => k !== 'type').sort()) section.set(key, values.get(key) as string)
  return section
}

function finish (section: string, values: RcloneSection, redact: Set<string>): Rendered {
  const type = values.get('type') as string
  redact.delete('')
  return {
    config: serializeConfig(new Map([[section, values]])),
    section,
    type,
    keys: [...values.keys()].filter(k => k !== 'type'),
    redact: [...redact]
  }
}

function checkSectionName (section: string): void {
  if (!isValidSectionName(section)) throw new InvalidRemote('remote section name is not one rclone accepts')
}

// ---- typed creds -------------------------------------------------------------------------

function credField (key: string): string {
  return /^[A-Za-z0-9_.-]{1,64}$/.test(key) ? `creds.${key}` : `creds key ${JSON.stringify(key.slice(0, 64))}`
}

/** The string rclone should see for one typed value; throws InvalidCredentials naming it. */
function typedValue (name: string, spec: TemplateKey, value: unknown): string {
  const field = `creds.${name}`
  if (spec.type === 'boolean') {
    if (typeof value !== 'boolean') throw new InvalidCredentials(`${field}: must be a boolean`)
    return String(value)
  }
  if (spec.type === 'integer') {
    if (typeof value !== 'number' || !Number.isSafeInteger(value)) throw new InvalidCredentials(`${field}: must be an integer`)
    return String(value)
  }
  if (typeof value !== 'string') throw new InvalidCredentials(`${field}: must be a string`)
  let text = value
  if (text !== '' && spec.format === 'json') {
    let parsed: unknown
    try {
      parsed = JSON.parse(text)
    } catch {
      throw new InvalidCredentials(`${field}: must be a JSON object`)
    }
    if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) throw new InvalidCredentials(`${field}: must be a JSON object`)
    // rclone wants it on one line; JSON strings cannot hold raw line breaks, so this is lossless.
    text = JSON.stringify(parsed)
  }
  if (spec.format === 'pem') text = text.replace(/\r\n|\r|\n/g, '\\n')
  if (spec.enum !== undefined && text !== '' && !spec.enum.includes(text)) {
    throw new InvalidCredentials(`${field}: must be one of ${spec.enum.join(', ')}`)
  }
  const problem = valueProblem(text)
  if (problem !== undefined) throw new InvalidCredentials(`${field}: ${problem}`)
  return text
}

function counts (values: ReadonlyMap<string, string>, template: BackendTemplate, key: string): boolean {
  const value = values.get(key)
  if (value === undefined) return false
  return template.keys[key]?.type === 'boolean' ? isGoTrue(value) : true
}

/**
 * Renders a typed backend's creds (plaintext as the caller gives them; obscured keys are
 * obscured here). Throws InvalidCredentials or RefusedOption naming `creds.<key>`.
 */
export function renderTyped (template: BackendTemplate, section: string, creds: Record<string, string | boolean | number>): Rendered {
  checkSectionName(section)
  const values = new Map<string, string>()
  const redact = new Set<string>()
  for (const [name, given] of Object.entries(creds)) {
    if (!Object.hasOwn(template.keys, name)) {
      throw new InvalidCredentials(`${credField(name)}: not a key of backend ${template.backend} (see GET /backends)`)
    }
    const spec = template.keys[name]
    const text = typedValue(name, spec, given)
    if (spec.secret && typeof given === 'string') redact.add(given).add(text)
    if (text !== '') values.set(name, text)
  }
  for (const [name, spec] of Object.entries(template.keys)) {
    if (!values.has(name) && spec.default !== undefined) values.set(name, String(spec.default))
  }
  for (const name of template.required) {
    if (!values.has(name)) throw new InvalidCredentials(`creds.${name}: required for backend ${template.backend}`)
  }
  if (template.requiredOneOf.length > 0 && !template.requiredOneOf.some(keys => keys.every(k => counts(values, template, k)))) {
    const options = template.requiredOneOf.map(keys => keys.map(k => template.keys[k]?.type === 'boolean' ? `${k} = true` : k).join(' + '))
    throw new InvalidCredentials(`creds: backend ${template.backend} needs one of: ${options.join('; ')}`)
  }
  const plain = sortedSection(template.type, values)
  checkSection(section, plain, 'creds')
  for (const [name, spec] of Object.entries(template.keys)) {
    const value = plain.get(name)
    if (spec.obscured && value !== undefined) {
      const hidden = obscure(value)
      plain.set(name, hidden)
      redact.add(hidden)
    }
  }
  return finish(section, plain, redact)
}

// ---- raw configs -------------------------------------------------------------------------

// goconfig looks a key missing from section `a.b` up in section `a` (if that exists, and so
// on up): merge those in so the one rendered section means what the caller's file meant.
function resolveSection (config: RcloneConfig, name: string): Map<string, string> | undefined {
  const own = config.get(name)
  if (own === undefined) return undefined
  const values = new Map(own)
  let parent = name
  for (let dot = parent.lastIndexOf('.'); dot !== -1; dot = parent.lastIndexOf('.')) {
    parent = parent.slice(0, dot)
    const inherited = config.get(parent)
    if (inherited === undefined) break
    for (const [key, value] of inherited) if (!values.has(key)) values.set(key, value)
  }
  return values
}

/**
 * Renders the section named `section` of a caller's rclone config. Password options must be
 * obscured already, as rclone writes them. Other sections are dropped. Throws InvalidConfig
 * or RefusedOption naming `rcloneConfig [section] <key>`.
 */
export function renderRaw (text: string, section: string): Rendered {
  checkSectionName(section)
  let config: RcloneConfig
  try {
    config = parseRcloneConfig(text)
  } catch (err) {
    if (err instanceof ConfigParseError) throw new InvalidConfig(err.message)
    throw err
  }
  const values = resolveSection(config, section)
  if (values === undefined) throw new InvalidConfig(`rcloneConfig: has no [${section}] section (the part of remote before the colon)`)
  if (!values.has('type')) throw new InvalidConfig(`rcloneConfig [${section}] type: missing`)
  for (const key of values.keys()) {
    if (!KEY.test(key) && !key.includes('.')) throw new InvalidConfig(`${configField(section, key)}: key names may only contain letters, digits and _`)
  }
  checkSection(section, values, 'rcloneConfig')
  const type = canonicalType(values.get('type') as string) as string
  const redact = new Set<string>()
  for (const [key, value] of values) {
    const problem = valueProblem(value)
    if (problem !== undefined) throw new InvalidConfig(`${configField(section, key)}: ${problem}`)
    if (PASSWORD_KEYS[type]?.includes(key) === true && value !== '') {
      let plain: string
      try {
        plain = reveal(value)
      } catch {
        throw new InvalidConfig(`${configField(section, key)}: must be obscured as rclone writes it (rclone obscure)`)
      }
      if (valueProblem(plain) !== undefined) throw new InvalidConfig(`${configField(section, key)}: must be obscured as rclone writes it (rclone obscure)`)
      redact.add(plain).add(value)
    } else if (looksSecret(type, key, value)) {
      redact.add(value)
    }
  }
  return finish(section, sortedSection(type, values), redact)
}
