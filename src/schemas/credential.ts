import { Type, type Static } from '@sinclair/typebox'
import { BackendName, CredsObject } from './mount.ts'

export const CredentialName = Type.String({ minLength: 1, maxLength: 128, pattern: '^[A-Za-z0-9][A-Za-z0-9._-]*$' })

export const CredentialCreate = Type.Object({
  name: CredentialName,
  backend: BackendName,
  creds: CredsObject
}, { additionalProperties: false })
export type CredentialCreate = Static<typeof CredentialCreate>

export const CredentialUpdate = Type.Object({ creds: CredsObject }, { additionalProperties: false })
export type CredentialUpdate = Static<typeof CredentialUpdate>

export const Credential = Type.Object({
  name: Type.String(),
  backend: BackendName,
  keys: Type.Array(Type.String(), { description: 'Names of the keys held; values are never returned' }),
  createdAt: Type.String({ format: 'date-time' }),
  updatedAt: Type.String({ format: 'date-time' })
})
export type Credential = Static<typeof Credential>

export const RotationResult = Type.Object({
  credential: Type.Optional(Credential),
  rotated: Type.Array(Type.Object({ mountId: Type.String(), sandboxId: Type.String(), path: Type.String() }))
})
export type RotationResult = Static<typeof RotationResult>
