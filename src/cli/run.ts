import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import path from 'node:path'
import { createClient, type Client } from '../sdk/index.ts'
import { SandboxMountsError } from '../sdk/errors.ts'
import { GLOBAL_OPTIONS, flag, parse, str } from './args.ts'
import { COMMANDS, CREDS_COMMANDS, type Command } from './commands.ts'
import { EXIT, UsageError, exitCodeFor } from './exit-codes.ts'
import type { Io } from './io.ts'

// Argument dispatch, client set-up from flags or the environment, and the one place that
// turns errors into `error: <code>: <message>` and an exit code.

export const DEFAULT_URL = 'http://127.0.0.1:8080'

function version (): string {
  const here = path.dirname(fileURLToPath(import.meta.url))
  const root = path.resolve(here, import.meta.url.includes('/dist/') ? '../../..' : '../..')
  try {
    return (JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')) as { version: string }).version
  } catch {
    return 'unknown'
  }
}

function usage (): string {
  const lines = Object.values(COMMANDS).map(c => `  sandbox-mounts ${c.usage}\n      ${c.summary}`)
  const creds = Object.values(CREDS_COMMANDS).map(c => `  sandbox-mounts ${c.usage}\n      ${c.summary}`)
  return [
    'Usage:',
    ...lines,
    ...creds,
    '',
    'Global options:',
    `  --url URL         control plane (env SANDBOX_MOUNTS_URL, default ${DEFAULT_URL})`,
    '  --api-key KEY     API key (env SANDBOX_MOUNTS_API_KEY; prefer the variable: flags show in `ps`)',
    '  --timeout SECS    per request (default 120)',
    '  --json            machine-readable output',
    '',
    '--cred values: key=value, key=@env:VAR, key=@- (one line from stdin), key=@file:PATH',
    'Exit codes: 0 ok, 1 unexpected, 2 usage, 3 bad input, 4 not found, 5 conflict/busy,',
    '            6 remote or credentials refused, 7 agent or service unavailable',
    ''
  ].join('\n')
}

/** Leading global options are allowed before the command word. */
function splitCommand (argv: string[]): { words: string[], rest: string[] } {
  const rest: string[] = []
  let i = 0
  for (; i < argv.length && argv[i].startsWith('-'); i++) {
    rest.push(argv[i])
    const name = argv[i].slice(2)
    const spec = (GLOBAL_OPTIONS as Record<string, { type: string }>)[name]
    if (spec?.type === 'string' && i + 1 < argv.length) rest.push(argv[++i])
  }
  const words: string[] = []
  if (i < argv.length) words.push(argv[i++])
  if (words[0] === 'creds' && i < argv.length && !argv[i].startsWith('-')) words.push(argv[i++])
  return { words, rest: [...rest, ...argv.slice(i)] }
}

function clientFor (io: Io, url: string | undefined, apiKey: string | undefined, timeout: string | undefined): () => Client {
  let client: Client | undefined
  return () => {
    if (client !== undefined) return client
    const key = apiKey ?? io.env.SANDBOX_MOUNTS_API_KEY
    if (key === undefined || key === '') throw new UsageError('no API key: set SANDBOX_MOUNTS_API_KEY or pass --api-key')
    const secs = timeout === undefined ? 120 : Number(timeout)
    if (!Number.isFinite(secs) || secs <= 0) throw new UsageError('--timeout: expected a number of seconds')
    const baseUrl = url ?? io.env.SANDBOX_MOUNTS_URL ?? DEFAULT_URL
    try {
      client = createClient({ baseUrl, apiKey: key, timeoutMs: Math.round(secs * 1000) })
    } catch (err) {
      throw new UsageError(`--url ${(err as Error).message}`)
    }
    return client
  }
}

function report (io: Io, err: unknown): number {
  const code = exitCodeFor(err)
  if (err instanceof UsageError) {
    io.stderr.write(`error: USAGE: ${err.message}\n`)
  } else if (err instanceof SandboxMountsError) {
    io.stderr.write(`error: ${err.code}: ${err.message}\n`)
    const tail = (err.detail as { logTail?: unknown } | undefined)?.logTail
    if (typeof tail === 'string' && tail !== '') io.stderr.write(tail.split('\n').map(l => `  | ${l}`).join('\n') + '\n')
  } else {
    io.stderr.write(`error: INTERNAL: ${(err as Error)?.message ?? String(err)}\n`)
  }
  return code
}

/** Runs one CLI invocation; resolves to the process exit code. */
export async function run (argv: string[], io: Io): Promise<number> {
  try {
    const { words, rest } = splitCommand(argv)
    if (words.length === 0) {
      if (rest.includes('--version')) {
        io.stdout.write(`${version()}\n`)
        return EXIT.OK
      }
      io[rest.includes('--help') || rest.includes('-h') ? 'stdout' : 'stderr'].write(usage())
      return rest.includes('--help') || rest.includes('-h') ? EXIT.OK : EXIT.USAGE
    }
    if (words[0] === 'help') {
      io.stdout.write(usage())
      return EXIT.OK
    }
    let command: Command | undefined
    if (words[0] === 'creds') {
      command = words[1] === undefined ? undefined : CREDS_COMMANDS[words[1]]
      if (command === undefined) throw new UsageError(`creds: expected one of ${Object.keys(CREDS_COMMANDS).join(', ')}`)
    } else {
      command = Object.hasOwn(COMMANDS, words[0]) ? COMMANDS[words[0]] : undefined
      if (command === undefined) throw new UsageError(`unknown command ${JSON.stringify(words[0].slice(0, 40))}`)
    }
    const args = parse(rest, command.options)
    if (flag(args, 'help')) {
      io.stdout.write(`Usage: sandbox-mounts ${command.usage}\n  ${command.summary}\n`)
      return EXIT.OK
    }
    await command.run({
      io,
      args,
      json: flag(args, 'json'),
      client: clientFor(io, str(args, 'url'), str(args, 'api-key'), str(args, 'timeout'))
    })
    return EXIT.OK
  } catch (err) {
    return report(io, err)
  }
}
