import type { Readable, Writable } from 'node:stream'

// The CLI's streams, passed in so every command writes through one place.

export interface Io {
  stdout: Writable
  stderr: Writable & { isTTY?: boolean, columns?: number }
  stdin: Readable & { isTTY?: boolean, setRawMode?: (mode: boolean) => unknown }
  env: Record<string, string | undefined>
}

/** One line from a pipe; on a terminal, a prompt on stderr and no echo (for passwords). */
export async function readLine (io: Io, prompt: string): Promise<string> {
  const input = io.stdin
  if (input.isTTY === true && typeof input.setRawMode === 'function') return await readHidden(io, prompt)
  input.setEncoding('utf8')
  let buf = ''
  for await (const chunk of input) {
    buf += String(chunk)
    const nl = buf.indexOf('\n')
    if (nl !== -1) return buf.slice(0, nl).replace(/\r$/, '')
  }
  return buf.replace(/\r$/, '')
}

async function readHidden (io: Io, prompt: string): Promise<string> {
  const input = io.stdin
  io.stderr.write(prompt)
  input.setRawMode?.(true)
  input.setEncoding('utf8')
  input.resume()
  try {
    return await new Promise<string>((resolve, reject) => {
      let value = ''
      const onData = (chunk: string): void => {
        for (const ch of chunk) {
          if (ch === '\r' || ch === '\n' || ch === '\u0004') {
            input.off('data', onData)
            resolve(value)
            return
          }
          if (ch === '\u0003') {
            input.off('data', onData)
            reject(new Error('interrupted'))
            return
          }
          value = ch === '\u007f' || ch === '\b' ? value.slice(0, -1) : value + ch
        }
      }
      input.on('data', onData)
    })
  } finally {
    input.setRawMode?.(false)
    input.pause()
    io.stderr.write('\n')
  }
}

/**
 * A "mounting…" spinner on stderr while a slow call runs, only on a terminal; scripts and
 * pipes get no progress noise.
 */
export async function withProgress<T> (io: Io, label: string, work: () => Promise<T>): Promise<T> {
  if (io.stderr.isTTY !== true) return await work()
  const frames = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏']
  const started = Date.now()
  let i = 0
  const draw = (): void => {
    const secs = ((Date.now() - started) / 1000).toFixed(1)
    io.stderr.write(`\r\x1b[2K${frames[i++ % frames.length]} ${label} ${secs}s`)
  }
  draw()
  const timer = setInterval(draw, 100)
  try {
    return await work()
  } finally {
    clearInterval(timer)
    io.stderr.write('\r\x1b[2K')
  }
}
