import { Type, type Static } from '@sinclair/typebox'
import { BackendName } from './mount.ts'

// One templates/<backend>.json per typed backend: which rclone keys a caller may set, their
// types, which are secret, which rclone stores obscured, and which are required.

export const TemplateKeyName = Type.String({ pattern: '^[a-z0-9_]{1,64}$' })

export const TemplateKey = Type.Object({
  type: Type.Union([Type.Literal('string'), Type.Literal('boolean'), Type.Literal('integer')]),
  secret: Type.Boolean({ description: 'Never logged or returned; listed in secretKeys and redact lists' }),
  obscured: Type.Boolean({ description: 'rclone stores it obscured (IsPassword); callers give plaintext' }),
  format: Type.Optional(Type.Union([
    Type.Literal('json'),
    Type.Literal('pem')
  ], { description: 'json: a JSON object, written on one line; pem: real line breaks are written as the literal \\n rclone expects' })),
  enum: Type.Optional(Type.Array(Type.String(), { minItems: 1 })),
  default: Type.Optional(Type.Union([Type.String(), Type.Boolean(), Type.Integer()])),
  description: Type.String()
}, { additionalProperties: false })
export type TemplateKey = Static<typeof TemplateKey>

export const BackendTemplate = Type.Object({
  backend: BackendName,
  type: Type.String({ minLength: 1, description: 'rclone config type, e.g. `google cloud storage` for gcs' }),
  description: Type.String(),
  keys: Type.Record(TemplateKeyName, TemplateKey, { additionalProperties: false }),
  required: Type.Array(TemplateKeyName, { description: 'Keys that must always be given' }),
  requiredOneOf: Type.Array(Type.Array(TemplateKeyName, { minItems: 1 }), {
    description: 'Alternatives, each a list of keys that must all be given (a boolean counts only when true); at least one alternative must be complete'
  })
}, { additionalProperties: false, $id: 'BackendTemplate' })
export type BackendTemplate = Static<typeof BackendTemplate>
