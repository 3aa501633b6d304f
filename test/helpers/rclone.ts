import type { Test } from 'tap'
import { execFile } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'

// Runs the real rclone against temp config files. rclone always gets a minimal environment
// (no AWS_*, GOOGLE_*, RCLONE_* or AWS_CA_BUNDLE, HOME in a temp dir) so nothing ambient
// changes what it reads.

export interface RcloneResult {
  code: number
  stdout: string
  stderr: string
}

export type Dump = Record<string, Record<string, string>>

export interface RcloneSandbox {
  dir: string
  /** Writes text to a new 0600 config file in the sandbox and returns its path. */
  writeConfig: (text: string) => string
  run: (args: string[], opts?: { stdin?: string, timeoutMs?: number }) => Promise<RcloneResult>
  /** `rclone config dump`: every section as rclone read it. */
  dump: (configText: string) => Promise<Dump>
  /** `rclone reveal` (the value goes on the command line: fake credentials only). */
  reveal: (obscured: string) => Promise<string>
  /** `rclone obscure -` with the value on stdin (rclone reads its first line). */
  obscure: (plain: string) => Promise<string>
  /** `rclone backend features <section>:`: builds the backend, reports its features. */
  features: (configText: string, section: string) => Promise<RcloneResult>
}

let counter = 0

export function rcloneSandbox (t: Test): RcloneSandbox {
  const dir = mkdtempSync(path.join(tmpdir(), 'rclone-test-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const env = { PATH: '/usr/local/bin:/usr/bin:/bin', HOME: dir, TMPDIR: dir }

  const run = async (args: string[], opts: { stdin?: string, timeoutMs?: number } = {}): Promise<RcloneResult> =>
    await new Promise(resolve => {
      const child = execFile('rclone', args, { env, cwd: dir, timeout: opts.timeoutMs ?? 20_000, maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
        const code = err === null ? 0 : typeof err.code === 'number' ? err.code : -1
        resolve({ code, stdout, stderr })
      })
      child.stdin?.end(opts.stdin ?? '')
    })

  const writeConfig = (text: string): string => {
    const file = path.join(dir, `rclone-${process.pid}-${++counter}.conf`)
    writeFileSync(file, text, { mode: 0o600 })
    return file
  }

  const mustRun = async (args: string[], stdin?: string): Promise<string> => {
    const res = await run(args, { stdin })
    if (res.code !== 0) throw new Error(`rclone ${args[0]} exited ${res.code}: ${res.stderr.slice(-2000)}`)
    return res.stdout
  }

  return {
    dir,
    writeConfig,
    run,
    dump: async configText => JSON.parse(await mustRun(['config', 'dump', '--config', writeConfig(configText)])) as Dump,
    reveal: async obscured => (await mustRun(['reveal', '--', obscured])).replace(/\n$/, ''),
    obscure: async plain => (await mustRun(['obscure', '-'], plain)).trim(),
    features: async (configText, section) => await run(['--config', writeConfig(configText), 'backend', 'features', `${section}:`])
  }
}

let providersCache: Promise<Array<{ Name: string, Prefix: string, Options: Array<{ Name: string, IsPassword: boolean, Type: string }> }>> | undefined

/** `rclone config providers`: the installed rclone's whole option schema. */
export async function rcloneProviders (t: Test): Promise<Array<{ Name: string, Prefix: string, Options: Array<{ Name: string, IsPassword: boolean, Type: string }> }>> {
  providersCache ??= rcloneSandbox(t).run(['config', 'providers']).then(res => JSON.parse(res.stdout))
  return await providersCache
}
