import { readFile } from 'node:fs/promises'
import type { Client, MountCreate } from '../sdk/index.ts'
import type { BackendName } from '../schemas/mount.ts'
import { flag, list, positionals, str, type Options, type Parsed } from './args.ts'
import { resolveCreds, typeCreds } from './creds.ts'
import { UsageError } from './exit-codes.ts'
import { backendText, credentialTable, mountDetail, mountTable, reconcileText } from './format.ts'
import { readLine, withProgress, type Io } from './io.ts'

// One entry per sub-command: its options, its usage line and what it does. Commands print
// through `out`; --json prints the API's answer as is.

export interface Context {
  io: Io
  args: Parsed
  client: () => Client
  json: boolean
}

export interface Command {
  usage: string
  summary: string
  options: Options
  run: (ctx: Context) => Promise<void>
}

function out (ctx: Context, human: string, data: unknown): void {
  ctx.io.stdout.write(ctx.json ? JSON.stringify(data, null, 2) + '\n' : human)
}

const sources = (ctx: Context): Parameters<typeof resolveCreds>[1] => ({ env: ctx.io.env, readLine: async (prompt) => await readLine(ctx.io, prompt) })

/** --cred pairs resolved and typed by the backend's template from GET /backends. */
async function credsFor (ctx: Context, backend: string | undefined): Promise<Record<string, string | number | boolean>> {
  const pairs = list(ctx.args, 'cred')
  if (pairs.length === 0) throw new UsageError('at least one --cred key=value is required')
  const values = await resolveCreds(pairs, sources(ctx))
  if (backend === undefined || backend === 'custom') return values
  return typeCreds(values, backend, await ctx.client().backends())
}

/** Splits each --opt on whitespace, so both `--opt "--dir-cache-time 1m"` and `--opt --dir-cache-time=1m` work. */
function mountOptions (ctx: Context): string[] | undefined {
  const opts = list(ctx.args, 'opt').flatMap(o => o.trim().split(/\s+/)).filter(Boolean)
  return opts.length === 0 ? undefined : opts
}

async function readConfigFile (ctx: Context, file: string): Promise<string> {
  if (file === '-') {
    return await new Promise((resolve, reject) => {
      let text = ''
      ctx.io.stdin.setEncoding('utf8')
      ctx.io.stdin.on('data', (c: string) => { text += c })
      ctx.io.stdin.on('end', () => { resolve(text) })
      ctx.io.stdin.on('error', reject)
    })
  }
  try {
    return await readFile(file, 'utf8')
  } catch (err) {
    throw new UsageError(`--config-file: cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? 'error'})`)
  }
}

const TENANT = { tenant: { type: 'string' } } as const satisfies Options
const tenantOf = (ctx: Context): { tenant?: string } => {
  const tenant = str(ctx.args, 'tenant')
  return tenant === undefined ? {} : { tenant }
}

const add: Command = {
  usage: 'add <sandbox> --path P --remote R (--backend B --cred key=value ... | --credentials-ref NAME | --config-file FILE) [--read-write] [--opt FLAG ...] [--idempotency-key K]',
  summary: 'mount a remote into a sandbox; waits until it is live',
  options: {
    path: { type: 'string' },
    remote: { type: 'string' },
    backend: { type: 'string' },
    cred: { type: 'string', multiple: true },
    'credentials-ref': { type: 'string' },
    'config-file': { type: 'string' },
    'read-write': { type: 'boolean' },
    opt: { type: 'string', multiple: true },
    'idempotency-key': { type: 'string' }
  },
  run: async (ctx) => {
    const [sandbox] = positionals(ctx.args, ['sandbox'])
    const path = str(ctx.args, 'path')
    const remote = str(ctx.args, 'remote')
    if (path === undefined) throw new UsageError('--path is required')
    if (remote === undefined) throw new UsageError('--remote is required')
    const backend = str(ctx.args, 'backend')
    const ref = str(ctx.args, 'credentials-ref')
    const configFile = str(ctx.args, 'config-file')
    const hasCreds = list(ctx.args, 'cred').length > 0
    if (configFile !== undefined && (backend !== undefined || ref !== undefined || hasCreds)) {
      throw new UsageError('--config-file: give either a config file, or --backend with --cred or --credentials-ref')
    }
    if (ref !== undefined && hasCreds) throw new UsageError('--credentials-ref: give either --cred or --credentials-ref, not both')
    if (configFile === undefined && ref === undefined && backend === undefined) {
      throw new UsageError('one of --backend (with --cred), --credentials-ref or --config-file is required')
    }
    if (configFile === undefined && ref === undefined && !hasCreds) throw new UsageError('--backend needs --cred key=value (or --credentials-ref)')
    const body: MountCreate = { path, remote }
    if (configFile !== undefined) body.rcloneConfig = await readConfigFile(ctx, configFile)
    if (backend !== undefined) body.backend = backend as BackendName
    if (ref !== undefined) body.credentialsRef = ref
    if (hasCreds) body.creds = await credsFor(ctx, backend)
    if (flag(ctx.args, 'read-write')) body.readWrite = true
    const opts = mountOptions(ctx)
    if (opts !== undefined) body.mountOptions = opts
    const mounts = ctx.client().sandbox(sandbox).mounts
    const mount = await withProgress(ctx.io, `mounting ${remote} at ${path}…`, async () =>
      await mounts.add(body, { idempotencyKey: str(ctx.args, 'idempotency-key') }))
    out(ctx, `mounted ${mount.remote} at ${mount.path} (id ${mount.id}, ${mount.readWrite ? 'read-write' : 'read-only'}, ${mount.status})\n`, mount)
  }
}

const listCmd: Command = {
  usage: 'list <sandbox> [--refresh] [--json]',
  summary: 'list a sandbox\'s mounts (--refresh asks the agent for live health)',
  options: { refresh: { type: 'boolean' } },
  run: async (ctx) => {
    const [sandbox] = positionals(ctx.args, ['sandbox'])
    const mounts = await ctx.client().sandbox(sandbox).mounts.list({ refresh: flag(ctx.args, 'refresh') ? true : undefined })
    out(ctx, mountTable(mounts), { mounts })
  }
}

const get: Command = {
  usage: 'get <sandbox> <mountId> [--json]',
  summary: 'show one mount with its live health',
  options: {},
  run: async (ctx) => {
    const [sandbox, mountId] = positionals(ctx.args, ['sandbox', 'mountId'])
    const mount = await ctx.client().sandbox(sandbox).mounts.get(mountId)
    out(ctx, mountDetail(mount), mount)
  }
}

const rm: Command = {
  usage: 'rm <sandbox> <path|mountId> [--force] [--idempotency-key K]',
  summary: 'flush pending writes and unmount (--force: lazy-unmount a busy mount)',
  options: { force: { type: 'boolean' }, 'idempotency-key': { type: 'string' } },
  run: async (ctx) => {
    const [sandbox, target] = positionals(ctx.args, ['sandbox', 'path|mountId'])
    const mounts = ctx.client().sandbox(sandbox).mounts
    const opts = { force: flag(ctx.args, 'force') ? true : undefined, idempotencyKey: str(ctx.args, 'idempotency-key') }
    await withProgress(ctx.io, `unmounting ${target}…`, async () => {
      if (target.startsWith('/')) await mounts.remove(target, opts)
      else await mounts.removeById(target, opts)
    })
    out(ctx, `removed ${target}\n`, { removed: target })
  }
}

const rotate: Command = {
  usage: 'rotate <sandbox> <mountId> --cred key=value ...',
  summary: 'swap a mount\'s inline credentials (preflighted; the old mount stays if they fail)',
  options: { cred: { type: 'string', multiple: true } },
  run: async (ctx) => {
    const [sandbox, mountId] = positionals(ctx.args, ['sandbox', 'mountId'])
    const mounts = ctx.client().sandbox(sandbox).mounts
    const { backend } = await mounts.get(mountId)
    const creds = await credsFor(ctx, backend)
    const result = await withProgress(ctx.io, 'rotating…', async () => await mounts.rotate(mountId, creds))
    out(ctx, `rotated ${result.rotated.length} mount(s)\n`, result)
  }
}

const reconcile: Command = {
  usage: 'reconcile <sandbox> [--json]',
  summary: 'compare the registry with the agent now and repair',
  options: {},
  run: async (ctx) => {
    const [sandbox] = positionals(ctx.args, ['sandbox'])
    const report = await withProgress(ctx.io, 'reconciling…', async () => await ctx.client().sandbox(sandbox).mounts.reconcile())
    out(ctx, reconcileText(report), report)
  }
}

const backends: Command = {
  usage: 'backends [--json]',
  summary: 'typed backends and the --cred keys each accepts',
  options: {},
  run: async (ctx) => {
    positionals(ctx.args, [])
    const list = await ctx.client().backends()
    out(ctx, backendText(list), { backends: list })
  }
}

const credsAdd: Command = {
  usage: 'creds add <name> --backend B --cred key=value ... [--tenant T]',
  summary: 'store named credentials (sealed at rest, never returned)',
  options: { backend: { type: 'string' }, cred: { type: 'string', multiple: true }, ...TENANT },
  run: async (ctx) => {
    const [name] = positionals(ctx.args, ['name'])
    const backend = str(ctx.args, 'backend')
    if (backend === undefined) throw new UsageError('--backend is required')
    const creds = await credsFor(ctx, backend)
    const cred = await ctx.client().credentials.create({ name, backend: backend as BackendName, creds }, tenantOf(ctx))
    out(ctx, `stored ${cred.name} (${cred.backend}: ${cred.keys.join(', ')})\n`, cred)
  }
}

const credsList: Command = {
  usage: 'creds list [--tenant T] [--json]',
  summary: 'list stored credentials (names and keys, never values)',
  options: { ...TENANT },
  run: async (ctx) => {
    positionals(ctx.args, [])
    const credentials = await ctx.client().credentials.list(tenantOf(ctx))
    out(ctx, credentialTable(credentials), { credentials })
  }
}

const credsRotate: Command = {
  usage: 'creds rotate <name> --cred key=value ... [--tenant T]',
  summary: 'replace stored credentials and every mount using them (preflighted)',
  options: { cred: { type: 'string', multiple: true }, ...TENANT },
  run: async (ctx) => {
    const [name] = positionals(ctx.args, ['name'])
    const api = ctx.client().credentials
    const existing = (await api.list(tenantOf(ctx))).find(c => c.name === name)
    const creds = await credsFor(ctx, existing?.backend)
    const result = await withProgress(ctx.io, `rotating ${name}…`, async () => await api.rotate(name, creds, tenantOf(ctx)))
    out(ctx, `rotated ${name}; ${result.rotated.length} mount(s) now use the new credentials\n`, result)
  }
}

const credsRm: Command = {
  usage: 'creds rm <name> [--tenant T]',
  summary: 'delete stored credentials (refused while mounts use them)',
  options: { ...TENANT },
  run: async (ctx) => {
    const [name] = positionals(ctx.args, ['name'])
    await ctx.client().credentials.remove(name, tenantOf(ctx))
    out(ctx, `deleted ${name}\n`, { deleted: name })
  }
}

export const COMMANDS: Record<string, Command> = { add, list: listCmd, get, rm, rotate, reconcile, backends }
export const CREDS_COMMANDS: Record<string, Command> = { add: credsAdd, list: credsList, rotate: credsRotate, rm: credsRm }
