import { Type, type Static } from '@sinclair/typebox'

export const BackendName = Type.Union([
  Type.Literal('s3'), Type.Literal('gcs'), Type.Literal('azureblob'),
  Type.Literal('sftp'), Type.Literal('webdav'), Type.Literal('dropbox')
], { description: 'Typed backend; raw configs report `custom`' })
export type BackendName = Static<typeof BackendName>

export const MountStatus = Type.Union([
  Type.Literal('pending'),
  Type.Literal('mounted'),
  Type.Literal('degraded'),
  Type.Literal('failed'),
  Type.Literal('unknown'),
  Type.Literal('removing')
], { description: 'pending: being applied; mounted: live and healthy; degraded: daemon alive, remote failing; failed: daemon gone or mount dead; unknown: agent unreachable; removing: a remove is under way' })
export type MountStatus = Static<typeof MountStatus>

export const CredsObject = Type.Record(
  Type.String({ maxLength: 64 }),
  Type.Union([Type.String({ maxLength: 16384 }), Type.Boolean(), Type.Integer()]),
  { description: 'rclone config keys of the backend (see GET /backends); values never come back', maxProperties: 64 }
)

export const MountCreate = Type.Object({
  path: Type.String({ minLength: 1, maxLength: 1024, description: 'Absolute mount point inside the sandbox' }),
  remote: Type.String({ minLength: 2, maxLength: 2048, description: '`<section>:<path>` as rclone writes it, e.g. `s3:my-bucket/datasets`' }),
  backend: Type.Optional(BackendName),
  creds: Type.Optional(CredsObject),
  credentialsRef: Type.Optional(Type.String({ minLength: 1, maxLength: 128, description: 'Name of stored credentials (POST /credentials) to use instead of `creds`' })),
  rcloneConfig: Type.Optional(Type.String({ minLength: 1, maxLength: 65536, description: 'Raw rclone config; the section named like the part of `remote` before the colon is mounted' })),
  readWrite: Type.Optional(Type.Boolean({ default: false, description: 'Mounts are read-only unless true' })),
  mountOptions: Type.Optional(Type.Array(Type.String({ maxLength: 256 }), { maxItems: 64, description: 'rclone mount/VFS flags from the allowlist, e.g. ["--dir-cache-time", "1m"]' }))
}, { additionalProperties: false })
export type MountCreate = Static<typeof MountCreate>

export const Mount = Type.Object({
  id: Type.String(),
  sandboxId: Type.String(),
  path: Type.String(),
  remote: Type.String(),
  backend: Type.Union([BackendName, Type.Literal('custom')]),
  credentialsRef: Type.Optional(Type.String()),
  readWrite: Type.Boolean(),
  mountOptions: Type.Array(Type.String()),
  status: MountStatus,
  lastError: Type.Optional(Type.String()),
  lastCheckedAt: Type.Optional(Type.String({ format: 'date-time' })),
  createdAt: Type.String({ format: 'date-time' }),
  updatedAt: Type.String({ format: 'date-time' })
})
export type Mount = Static<typeof Mount>

export const MountList = Type.Object({ mounts: Type.Array(Mount) })
export type MountList = Static<typeof MountList>

export const SandboxParams = Type.Object({
  sandboxId: Type.String({ minLength: 1, maxLength: 128, pattern: '^[A-Za-z0-9][A-Za-z0-9._-]*$' })
})
export const MountParams = Type.Object({
  sandboxId: SandboxParams.properties.sandboxId,
  mountId: Type.String({ minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9_-]+$' })
})
export const RemoveQuery = Type.Object({
  path: Type.Optional(Type.String({ minLength: 1, maxLength: 1024 })),
  force: Type.Optional(Type.Boolean({ default: false, description: 'Lazy-unmount a busy mount' }))
}, { additionalProperties: false })
