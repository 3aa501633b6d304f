import { spawn } from 'node:child_process'

// stat(2) on a FUSE path in a child process: a hung daemon then blocks the child, never one of
// the agent's own threads, and the agent stops waiting after `timeoutMs`.

export type StatResult =
  | { ok: true }
  | { ok: false, reason: 'timeout' | 'not-connected' | 'missing' | 'error', message: string }

export async function statWithTimeout (path: string, timeoutMs: number, statBin = 'stat'): Promise<StatResult> {
  return await new Promise(resolve => {
    let stderr = ''
    let settled = false
    const done = (result: StatResult): void => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      resolve(result)
    }
    const child = spawn(statBin, ['-c', '%i', '--', path], {
      stdio: ['ignore', 'ignore', 'pipe'],
      env: { PATH: '/usr/bin:/bin', LANG: 'C', LC_ALL: 'C' }
    })
    child.stderr.on('data', (chunk: Buffer) => { stderr = (stderr + chunk.toString()).slice(-1000) })
    const timer = setTimeout(() => {
      child.kill('SIGKILL')
      done({ ok: false, reason: 'timeout', message: `the mount did not answer stat within ${timeoutMs} ms` })
    }, timeoutMs)
    child.once('error', err => done({ ok: false, reason: 'error', message: `stat could not run: ${err.message}` }))
    child.once('close', code => {
      if (code === 0) return done({ ok: true })
      if (/not connected/i.test(stderr)) return done({ ok: false, reason: 'not-connected', message: 'the mount is dead (transport endpoint is not connected)' })
      if (/No such file/i.test(stderr)) return done({ ok: false, reason: 'missing', message: 'the mount point does not exist' })
      done({ ok: false, reason: 'error', message: `stat failed: ${stderr.trim().split('\n').pop() ?? ''}` })
    })
  })
}
