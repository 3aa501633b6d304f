import t from 'tap'
import { existsSync, readFileSync } from 'node:fs'
import path from 'node:path'
import { EnvSchema } from '../../src/config.ts'
import { AgentEnvSchema } from '../../src/agent/config.ts'
import { EXIT } from '../../src/cli/exit-codes.ts'
import { COMMANDS, CREDS_COMMANDS } from '../../src/cli/commands.ts'
import { DEFAULT_URL } from '../../src/cli/run.ts'
import { createClient } from '../../src/sdk/index.ts'
import { buildTestApp, TENANT_A } from '../helpers/app.ts'
import { ROOT } from '../sdk/build.ts'

// The user's documentation against the code it describes: the quick start, every variable
// with its default, the CLI's commands and exit codes, the SDK's calls, the routes the curl
// session uses, and links that lead somewhere.

const read = (file: string): string => readFileSync(path.join(ROOT, file), 'utf8')
const README = read('README.md')
const OWN_DOCS = ['README.md', 'docs/cli.md', 'docs/sdk.md', 'docs/configuration.md', 'docs/troubleshooting.md']

function section (text: string, heading: string): string {
  const start = text.indexOf(`\n## ${heading}\n`)
  if (start === -1) throw new Error(`no section "${heading}"`)
  const end = text.indexOf('\n## ', start + 4)
  return text.slice(start, end === -1 ? undefined : end)
}

function codeLines (text: string): string[] {
  const blocks = [...text.matchAll(/```(?:sh|bash)\n([\s\S]*?)```/g)].map(m => m[1])
  return blocks.flatMap(b => b.split('\n')).map(l => l.trim()).filter(l => l !== '' && !l.startsWith('#'))
}

/** Table rows `| \`NAME\` | default | meaning |` as NAME -> default cell. */
function variableRows (text: string): Map<string, string> {
  const rows = new Map<string, string>()
  for (const m of text.matchAll(/^\| `([A-Z][A-Z0-9_]+)` \| ([^|]*) \|/gm)) rows.set(m[1], m[2].trim())
  return rows
}

t.test('quick start: exactly the two commands, and what they run exists', async t => {
  t.same(codeLines(section(README, 'Quick start')), ['npm run setup && npm start', 'npm run setup && npm test'])
  const pkg = JSON.parse(read('package.json')) as { scripts: Record<string, string> }
  t.match(pkg.scripts.setup, /scripts\/setup\.sh/)
  t.ok(existsSync(path.join(ROOT, 'scripts/setup.sh')))
  t.ok(pkg.scripts.start !== undefined && pkg.scripts.test !== undefined)
  t.match(README, /data\/dev-api-key/, 'where the key is')
})

t.test('every variable is documented with its default, and nothing else is', async t => {
  const schemas = [...Object.entries(EnvSchema.properties), ...Object.entries(AgentEnvSchema.properties)] as Array<[string, { default?: unknown }]>
  for (const file of ['README.md', 'docs/configuration.md']) {
    const rows = variableRows(read(file))
    for (const [name, schema] of schemas) {
      t.ok(rows.has(name), `${file} documents ${name}`)
      const cell = rows.get(name) ?? ''
      if (schema.default !== undefined && name !== 'TEMPLATES_DIR') {
        t.equal(cell, `\`${String(schema.default)}\``, `${file}: default of ${name}`)
      } else {
        t.notMatch(cell, /^`[^`]*`$/, `${file}: ${name} shows no literal default`)
      }
    }
    const known = new Set([...schemas.map(([n]) => n), 'SANDBOX_MOUNTS_URL', 'SANDBOX_MOUNTS_API_KEY'])
    for (const name of rows.keys()) t.ok(known.has(name), `${file}: ${name} is a real variable`)
  }
  t.equal(variableRows(read('docs/configuration.md')).get('SANDBOX_MOUNTS_URL'), `\`${DEFAULT_URL}\``)
})

t.test('the CLI page covers every command and exit code', async t => {
  const cli = read('docs/cli.md')
  for (const name of Object.keys(COMMANDS)) t.match(cli, new RegExp(`^### \`${name}\\b`, 'm'), `documents ${name}`)
  for (const name of Object.keys(CREDS_COMMANDS)) t.match(cli, new RegExp(`sandbox-mounts creds ${name}\\b`), `shows creds ${name}`)
  const codes = new Map([...cli.matchAll(/^\| (\d) \| ([^|]+) \|/gm)].map(m => [Number(m[1]), m[2].trim()]))
  t.same([...codes.keys()].sort(), Object.values(EXIT).sort(), 'one row per exit code')
  t.match(codes.get(EXIT.REFUSED), /422/)
  t.match(codes.get(EXIT.NOT_FOUND), /404/)
  t.match(README, /Exit codes: 0 ok, 1 unexpected,\s+2 usage, 3 bad input, 4 not found, 5 conflict\/busy, 6 remote or credentials refused, 7 agent\s+or service unavailable/)
})

t.test('the SDK page names every call the client has', async t => {
  const sdk = read('docs/sdk.md')
  const client = createClient({ baseUrl: 'http://127.0.0.1:1', apiKey: 'k' })
  const calls = [
    ...Object.keys(client.sandbox('x').mounts),
    ...Object.keys(client.credentials),
    ...Object.keys(client.internal).map(k => `internal.${k}`),
    'backends'
  ]
  for (const call of calls) t.match(sdk, new RegExp(`\\b${call.replace('.', '\\.')}\\(`), `documents ${call}`)
})

t.test('the routes the README calls exist', async t => {
  const { app, auth } = await buildTestApp(t)
  const curls = README.replace(/\\\n\s*/g, ' ').split('\n').filter(l => /^\s*curl\s/.test(l))
  t.ok(curls.length >= 5, 'the curl session and the orchestrator calls')
  for (const line of curls) {
    const method = /-X\s+([A-Z]+)/.exec(line)?.[1] ?? 'GET'
    const url = /"\$API(\/[^"]*)"/.exec(line)?.[1]
    t.ok(url, `a URL in: ${line.trim().slice(0, 60)}`)
    if (url === undefined) continue
    const res = await app.inject({ method: method as 'GET', url, headers: { ...auth(TENANT_A.key), 'content-type': 'application/json' }, payload: method === 'GET' || method === 'DELETE' ? undefined : '{}' })
    t.not(res.json().error?.code, 'ROUTE_NOT_FOUND', `${method} ${url} is a route`)
  }
})

t.test('links in the documentation lead to files', async t => {
  for (const file of OWN_DOCS) {
    const dir = path.dirname(path.join(ROOT, file))
    for (const m of read(file).matchAll(/\]\(([^)#\s]+)(#[^)]*)?\)/g)) {
      const target = m[1]
      if (/^[a-z]+:/.test(target)) continue
      t.ok(existsSync(path.resolve(dir, target)), `${file} -> ${target}`)
    }
  }
})
