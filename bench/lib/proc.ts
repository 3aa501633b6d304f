import { readdir, readFile } from 'node:fs/promises'

// Resident memory from /proc: VmRSS of one process and of a whole process tree (children by
// PPid, detached ones included, since setsid keeps the parent link).

export interface ProcInfo {
  pid: number
  ppid: number
  name: string
  rssKB: number
  /** Heap, stacks: memory that is this process's alone. */
  anonKB: number
  /** Mapped file pages (mostly the executable): shared and reclaimable under pressure. */
  fileKB: number
  argv: string[]
}

export async function procInfo (pid: number): Promise<ProcInfo | undefined> {
  try {
    const status = await readFile(`/proc/${pid}/status`, 'utf8')
    const field = (name: string): string => new RegExp(`^${name}:\\s*(.*)$`, 'm').exec(status)?.[1] ?? ''
    const argv = (await readFile(`/proc/${pid}/cmdline`, 'utf8')).split('\0').filter(Boolean)
    const kb = (name: string): number => Number.parseInt(field(name) || '0', 10)
    return { pid, ppid: Number(field('PPid')), name: field('Name'), rssKB: kb('VmRSS'), anonKB: kb('RssAnon'), fileKB: kb('RssFile'), argv }
  } catch {
    return undefined
  }
}

export async function allProcesses (): Promise<ProcInfo[]> {
  const pids = (await readdir('/proc')).filter(d => /^\d+$/.test(d)).map(Number)
  const infos = await Promise.all(pids.map(procInfo))
  return infos.filter((p): p is ProcInfo => p !== undefined)
}

/** The process and all its descendants. */
export async function processTree (root: number): Promise<ProcInfo[]> {
  const all = await allProcesses()
  const out: ProcInfo[] = []
  const want = new Set([root])
  // parents appear before children only by accident: sweep until nothing new joins
  let grew = true
  while (grew) {
    grew = false
    for (const p of all) {
      if (want.has(p.pid) && !out.includes(p)) { out.push(p); grew = true }
      if (want.has(p.ppid) && !want.has(p.pid)) { want.add(p.pid); grew = true }
    }
  }
  return out
}

export function mb (kb: number): number {
  return Math.round(kb / 1024 * 10) / 10
}
