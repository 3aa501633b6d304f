import { parseArgs, type ParseArgsConfig } from 'node:util'
import { UsageError } from './exit-codes.ts'

// node:util parseArgs with the CLI's conventions: global options anywhere, repeatable
// options, and `--opt --flag` accepted although its value starts with a dash.

export type Options = NonNullable<ParseArgsConfig['options']>

export const GLOBAL_OPTIONS = {
  url: { type: 'string' },
  'api-key': { type: 'string' },
  timeout: { type: 'string' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' }
} as const satisfies Options

/** Options whose values may begin with a dash (rclone flags). */
const DASH_VALUED = new Set(['--opt'])

export interface Parsed {
  values: Record<string, string | boolean | string[] | boolean[] | undefined>
  positionals: string[]
}

export function parse (args: string[], options: Options): Parsed {
  const joined: string[] = []
  for (let i = 0; i < args.length; i++) {
    if (DASH_VALUED.has(args[i]) && i + 1 < args.length) {
      joined.push(`${args[i]}=${args[i + 1]}`)
      i++
    } else {
      joined.push(args[i])
    }
  }
  try {
    const { values, positionals } = parseArgs({ args: joined, options: { ...GLOBAL_OPTIONS, ...options }, allowPositionals: true, strict: true })
    return { values: values as Parsed['values'], positionals }
  } catch (err) {
    throw new UsageError((err as Error).message.split('\n')[0])
  }
}

export function str (p: Parsed, name: string): string | undefined {
  const v = p.values[name]
  return typeof v === 'string' ? v : undefined
}

export function list (p: Parsed, name: string): string[] {
  const v = p.values[name]
  return Array.isArray(v) ? v.map(String) : typeof v === 'string' ? [v] : []
}

export function flag (p: Parsed, name: string): boolean {
  return p.values[name] === true
}

/** Exactly these positionals, named in the message when missing or extra. */
export function positionals (p: Parsed, names: string[]): string[] {
  if (p.positionals.length < names.length) throw new UsageError(`missing <${names[p.positionals.length]}>`)
  // The extra word is not echoed: it may be a secret typed in the wrong place.
  if (p.positionals.length > names.length) throw new UsageError(`unexpected argument at position ${names.length + 1} (expected ${names.map(n => `<${n}>`).join(' ') || 'none'})`)
  return p.positionals
}
