import { SandboxMountsError } from '../sdk/errors.ts'

// Exit codes by error class, so scripts can branch without parsing messages (docs/cli.md).

export const EXIT = {
  OK: 0,
  UNEXPECTED: 1,
  USAGE: 2,
  BAD_INPUT: 3,
  NOT_FOUND: 4,
  CONFLICT: 5,
  REFUSED: 6,
  UNAVAILABLE: 7
} as const

/** Wrong command line: unknown option, missing argument, unreadable --cred source. */
export class UsageError extends Error {}

/** The exit code for an error the CLI did not expect to recover from. */
export function exitCodeFor (err: unknown): number {
  if (err instanceof UsageError) return EXIT.USAGE
  if (!(err instanceof SandboxMountsError)) return EXIT.UNEXPECTED
  // A reused idempotency key is a conflict with an earlier request, not a refused remote.
  if (err.code === 'IDEMPOTENCY_KEY_REUSED') return EXIT.CONFLICT
  const s = err.status
  if (s === 0 || s >= 500 || s === 424) return EXIT.UNAVAILABLE
  if (s === 404) return EXIT.NOT_FOUND
  if (s === 409 || s === 429) return EXIT.CONFLICT
  if (s === 422) return EXIT.REFUSED
  if (s >= 400) return EXIT.BAD_INPUT
  return EXIT.UNEXPECTED
}
