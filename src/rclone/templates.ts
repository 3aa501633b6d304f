import { readFileSync } from 'node:fs'
import path from 'node:path'
import { Type, type Static } from '@sinclair/typebox'
import { Value } from '@sinclair/typebox/value'
import { BackendTemplate } from '../schemas/template.ts'
import { BackendName } from '../schemas/mount.ts'
import { canonicalType, isRefusedKey } from './policy.ts'

// Reads templates/<backend>.json once at startup and fails fast on anything inconsistent, so a
// bad template is a boot error rather than a surprise at mount time.

const BACKENDS = BackendName.anyOf.map(literal => literal.const)

function fail (file: string, message: string): never {
  throw new Error(`template ${file}: ${message}`)
}

function checkConsistency (file: string, template: BackendTemplate): void {
  const keys = template.keys
  if (canonicalType(template.type) === undefined) fail(file, `type "${template.type}" is not an allowed rclone storage type`)
  for (const [name, spec] of Object.entries(keys)) {
    if (name === 'type') fail(file, 'keys must not include type')
    if (isRefusedKey(name)) fail(file, `key ${name} is refused by the config policy`)
    if (spec.obscured && !spec.secret) fail(file, `key ${name} is obscured but not secret`)
    if (spec.format !== undefined && spec.type !== 'string') fail(file, `key ${name} has a format but is not a string`)
    if (spec.enum !== undefined && spec.type !== 'string') fail(file, `key ${name} has an enum but is not a string`)
    if (spec.default !== undefined) {
      const ok = spec.type === 'integer' ? Number.isSafeInteger(spec.default) : spec.type === 'boolean' ? typeof spec.default === 'boolean' : typeof spec.default === 'string'
      if (!ok) fail(file, `default of ${name} is not a ${spec.type}`)
      if (spec.enum !== undefined && !spec.enum.includes(String(spec.default))) fail(file, `default of ${name} is not in its enum`)
    }
  }
  for (const name of [...template.required, ...template.requiredOneOf.flat()]) {
    if (!Object.hasOwn(keys, name)) fail(file, `required key ${name} is not in keys`)
  }
}

/** Loads and validates every templates/<backend>.json; throws on the first problem. */
export function loadTemplates (dir: string): Map<BackendName, BackendTemplate> {
  const templates = new Map<BackendName, BackendTemplate>()
  for (const backend of BACKENDS) {
    const file = path.join(dir, `${backend}.json`)
    let data: unknown
    try {
      data = JSON.parse(readFileSync(file, 'utf8'))
    } catch (err) {
      fail(file, `cannot be read as JSON (${(err as Error).message})`)
    }
    if (!Value.Check(BackendTemplate, data)) {
      const first = Value.Errors(BackendTemplate, data).First()
      fail(file, `does not match the template schema at ${first?.path ?? '/'}: ${first?.message ?? 'invalid'}`)
    }
    if (data.backend !== backend) fail(file, `backend is "${data.backend}", expected "${backend}"`)
    checkConsistency(file, data)
    templates.set(backend, data)
  }
  return templates
}

export const BackendKeyDescription = Type.Object({
  name: Type.String(),
  type: Type.Union([Type.Literal('string'), Type.Literal('boolean'), Type.Literal('integer')]),
  secret: Type.Boolean(),
  required: Type.Boolean({ description: 'Always required (see also requiredOneOf)' }),
  enum: Type.Optional(Type.Array(Type.String())),
  default: Type.Optional(Type.Union([Type.String(), Type.Boolean(), Type.Integer()])),
  description: Type.String()
})

export const BackendDescription = Type.Object({
  backend: BackendName,
  type: Type.String({ description: 'rclone config type' }),
  description: Type.String(),
  keys: Type.Array(BackendKeyDescription),
  required: Type.Array(Type.String()),
  requiredOneOf: Type.Array(Type.Array(Type.String()), { description: 'At least one of these key groups must be given in full (a boolean counts when true)' }),
  secretKeys: Type.Array(Type.String(), { description: 'Keys whose values are never logged or returned' })
}, { $id: 'BackendDescription' })
export type BackendDescription = Static<typeof BackendDescription>

/** What GET /backends shows: each backend's keys, requirements and secret keys. */
export function describeBackends (templates: ReadonlyMap<string, BackendTemplate>): BackendDescription[] {
  return [...templates.values()].map(t => ({
    backend: t.backend,
    type: t.type,
    description: t.description,
    keys: Object.entries(t.keys).map(([name, spec]) => ({
      name,
      type: spec.type,
      secret: spec.secret,
      required: t.required.includes(name),
      ...(spec.enum === undefined ? {} : { enum: [...spec.enum] }),
      ...(spec.default === undefined ? {} : { default: spec.default }),
      description: spec.description
    })),
    required: [...t.required],
    requiredOneOf: t.requiredOneOf.map(keys => [...keys]),
    secretKeys: Object.entries(t.keys).filter(([, spec]) => spec.secret).map(([name]) => name)
  }))
}
