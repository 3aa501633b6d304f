import { execFile } from 'node:child_process'

// fusermount3 -u cleans up after a dead daemon and refuses a busy mount; -uz detaches a busy
// mount at once (rclone keeps serving open files until they close).

export async function fusermountUnmount (bin: string, mountPoint: string, opts: { lazy?: boolean } = {}): Promise<{ ok: boolean, message: string }> {
  return await new Promise(resolve => {
    execFile(bin, [opts.lazy === true ? '-uz' : '-u', mountPoint], { env: { PATH: '/usr/bin:/bin', LANG: 'C' }, timeout: 15_000, encoding: 'utf8' }, (err, _stdout, stderr) => {
      if (err === null) return resolve({ ok: true, message: '' })
      resolve({ ok: false, message: stderr.trim().split('\n').pop() ?? err.message })
    })
  })
}
