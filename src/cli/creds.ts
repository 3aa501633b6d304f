import { readFile } from 'node:fs/promises'
import type { BackendDescription } from '../rclone/templates.ts'
import type { Creds } from '../sdk/index.ts'
import { UsageError } from './exit-codes.ts'

// --cred key=value, where the value may come from elsewhere so secrets stay out of shell
// history and process listings: @env:NAME (an environment variable), @- (one line of stdin),
// @file:PATH (a file's contents, one trailing newline dropped). Messages name keys and
// sources, never values.

export interface CredSources {
  env: Record<string, string | undefined>
  /** Reads one line from stdin (prompting without echo on a terminal). */
  readLine: (prompt: string) => Promise<string>
}

export async function resolveCreds (pairs: string[], sources: CredSources): Promise<Record<string, string>> {
  const out: Record<string, string> = {}
  let stdinUsed = false
  for (const pair of pairs) {
    const eq = pair.indexOf('=')
    if (eq <= 0) throw new UsageError(`--cred ${pair.slice(0, 64).split('=')[0]}: expected key=value`)
    const key = pair.slice(0, eq)
    const raw = pair.slice(eq + 1)
    if (Object.hasOwn(out, key)) throw new UsageError(`--cred ${key}: given twice`)
    if (raw.startsWith('@env:')) {
      const name = raw.slice(5)
      const value = sources.env[name]
      if (value === undefined) throw new UsageError(`--cred ${key}: environment variable ${name} is not set`)
      out[key] = value
    } else if (raw === '@-') {
      if (stdinUsed) throw new UsageError(`--cred ${key}: only one value can be read from stdin`)
      stdinUsed = true
      out[key] = await sources.readLine(`${key}: `)
    } else if (raw.startsWith('@file:')) {
      const file = raw.slice(6)
      try {
        out[key] = (await readFile(file, 'utf8')).replace(/\r?\n$/, '')
      } catch (err) {
        throw new UsageError(`--cred ${key}: cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? 'error'})`)
      }
    } else {
      out[key] = raw
    }
  }
  return out
}

/**
 * Types values by the backend's template: booleans and integers become JSON booleans and
 * numbers only where the key is declared so; everything else stays a string, and unknown keys
 * are left for the service to refuse with its own message.
 */
export function typeCreds (values: Record<string, string>, backend: string, backends: BackendDescription[]): Creds {
  const desc = backends.find(b => b.backend === backend)
  if (desc === undefined) throw new UsageError(`--backend ${backend}: not a typed backend (one of ${backends.map(b => b.backend).join(', ')}; or use --config-file)`)
  const out: Creds = {}
  for (const [key, value] of Object.entries(values)) {
    const spec = desc.keys.find(k => k.name === key)
    if (spec?.type === 'boolean') {
      if (value !== 'true' && value !== 'false') throw new UsageError(`--cred ${key}: expects true or false`)
      out[key] = value === 'true'
    } else if (spec?.type === 'integer') {
      if (!/^-?\d{1,15}$/.test(value)) throw new UsageError(`--cred ${key}: expects an integer`)
      out[key] = Number(value)
    } else {
      out[key] = value
    }
  }
  return out
}
