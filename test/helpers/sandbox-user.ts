import { execFile } from 'node:child_process'
import { readFile } from 'node:fs/promises'
import { promisify } from 'node:util'

// The unprivileged user the agent mounts storage for. Tests create it once per machine; several
// test files may race to create it, so "already exists" counts as success.

const exec = promisify(execFile)

export interface SandboxUser {
  name: string
  uid: number
  gid: number
}

export async function lookupUser (name: string): Promise<SandboxUser | null> {
  const passwd = await readFile('/etc/passwd', 'utf8')
  for (const line of passwd.split('\n')) {
    const fields = line.split(':')
    if (fields[0] === name && fields.length >= 4) return { name, uid: Number(fields[2]), gid: Number(fields[3]) }
  }
  return null
}

export async function ensureSandboxUser (name = 'sandbox'): Promise<SandboxUser> {
  for (let attempt = 0; attempt < 20; attempt++) {
    const found = await lookupUser(name)
    if (found !== null) return found
    try {
      await exec('useradd', ['--system', '--create-home', '--shell', '/bin/bash', '--user-group', name])
    } catch (err) {
      // 9: the user appeared meanwhile; 10: /etc/passwd is locked by a concurrent useradd
      const code = (err as { code?: number }).code
      if (code !== 9 && code !== 10) throw err
      await new Promise(resolve => setTimeout(resolve, 100 + Math.random() * 200))
    }
  }
  throw new Error(`could not create user ${name}`)
}

export interface RunResult {
  code: number
  stdout: string
  stderr: string
}

/** Runs a command as the given user with a clean environment; never throws on a non-zero exit. */
export async function runAs (user: string, argv: string[], opts: { cwd?: string, timeoutMs?: number } = {}): Promise<RunResult> {
  try {
    const { stdout, stderr } = await exec('runuser', ['-u', user, '--', ...argv], {
      cwd: opts.cwd ?? '/',
      env: { PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', LANG: 'C' },
      timeout: opts.timeoutMs ?? 10_000,
      encoding: 'utf8'
    })
    return { code: 0, stdout, stderr }
  } catch (err) {
    const e = err as { code?: number | string, stdout?: string, stderr?: string }
    return { code: typeof e.code === 'number' ? e.code : -1, stdout: e.stdout ?? '', stderr: e.stderr ?? String(err) }
  }
}
