import { Type, type Static } from '@sinclair/typebox'

export const SandboxRegister = Type.Object({
  tenant: Type.String({ minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9._-]+$' }),
  agentUrl: Type.String({ minLength: 8, maxLength: 2048, pattern: '^https?://[^\\s]+$', description: 'Base URL of the sandbox\'s agent' }),
  agentToken: Type.String({ minLength: 16, maxLength: 1024, pattern: '^[\\x21-\\x7e]+$', description: 'Bearer token the agent expects; stored encrypted, never returned; printable ASCII without spaces, as it travels in a header' })
}, { additionalProperties: false })
export type SandboxRegister = Static<typeof SandboxRegister>

export const Sandbox = Type.Object({
  id: Type.String(),
  tenant: Type.String(),
  agentUrl: Type.String(),
  state: Type.Union([Type.Literal('running'), Type.Literal('hibernated')]),
  createdAt: Type.String({ format: 'date-time' }),
  updatedAt: Type.String({ format: 'date-time' })
})
export type Sandbox = Static<typeof Sandbox>
