import { Type, type Static } from '@sinclair/typebox'

export const ErrorBody = Type.Object({
  error: Type.Object({
    code: Type.String({ description: 'Stable machine-readable error code' }),
    message: Type.String({ description: 'What went wrong, naming the offending field' }),
    detail: Type.Optional(Type.Unknown({ description: 'Secret-free detail, e.g. the scrubbed tail of rclone\'s log' }))
  })
}, { description: 'Every error answer has this shape' })
export type ErrorBody = Static<typeof ErrorBody>
