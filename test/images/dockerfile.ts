// A small Dockerfile reader for checks without a docker daemon: instructions with line
// continuations joined, grouped by stage, and a .dockerignore matcher for plain patterns.

export interface Instruction { op: string, args: string, line: number }
export interface Stage { name: string | undefined, image: string, instructions: Instruction[] }

export function parseDockerfile (text: string): Stage[] {
  const stages: Stage[] = []
  const lines = text.split('\n')
  for (let i = 0; i < lines.length; i++) {
    const start = i
    let line = lines[i]
    if (/^\s*(#|$)/.test(line)) continue
    while (line.trimEnd().endsWith('\\') && i + 1 < lines.length) {
      line = line.trimEnd().slice(0, -1) + ' ' + lines[++i].trim()
    }
    const m = /^\s*([A-Za-z]+)\s+(.*)$/.exec(line)
    if (m === null) continue
    const ins = { op: m[1].toUpperCase(), args: m[2].trim(), line: start + 1 }
    if (ins.op === 'FROM') {
      const f = /^(?:--platform=\S+\s+)?(\S+)(?:\s+AS\s+(\S+))?$/i.exec(ins.args)
      stages.push({ image: f?.[1] ?? ins.args, name: f?.[2], instructions: [] })
    } else if (ins.op !== 'ARG' || stages.length > 0) {
      stages.at(-1)?.instructions.push(ins)
    }
  }
  return stages
}

export interface Copy { from: string | undefined, sources: string[], dest: string, workdir: string, line: number }

/** COPY instructions of a stage, with the WORKDIR in effect for each. */
export function copiesOf (stage: Stage): Copy[] {
  const out: Copy[] = []
  let workdir = '/'
  for (const ins of stage.instructions) {
    if (ins.op === 'WORKDIR') workdir = ins.args.startsWith('/') ? ins.args : `${workdir.replace(/\/$/, '')}/${ins.args}`
    if (ins.op !== 'COPY' && ins.op !== 'ADD') continue
    let words: string[]
    if (ins.args.replace(/^(--\S+\s+)*/, '').startsWith('[')) {
      const flags = ins.args.match(/^(--\S+\s+)*/)?.[0] ?? ''
      words = [...flags.split(/\s+/).filter(Boolean), ...(JSON.parse(ins.args.slice(flags.length)) as string[])]
    } else {
      words = ins.args.split(/\s+/)
    }
    const from = words.find(w => w.startsWith('--from='))?.slice(7)
    const rest = words.filter(w => !w.startsWith('--'))
    out.push({ from, sources: rest.slice(0, -1), dest: rest.at(-1) ?? '', workdir, line: ins.line })
  }
  return out
}

/** The last value of an instruction in a stage (USER, CMD, ...). */
export function last (stage: Stage, op: string): string | undefined {
  return stage.instructions.filter(i => i.op === op).at(-1)?.args
}

/** True when .dockerignore leaves `file` (relative to the context) out of the build context. */
export function ignoredBy (dockerignore: string, file: string): boolean {
  let ignored = false
  for (const raw of dockerignore.split('\n')) {
    const line = raw.trim()
    if (line === '' || line.startsWith('#')) continue
    const negate = line.startsWith('!')
    const pattern = (negate ? line.slice(1) : line).replace(/^\/+|\/+$/g, '')
    const re = new RegExp('^' + pattern.split('**').map(p => p.split('*').map(s => s.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('[^/]*')).join('.*') + '(/.*)?$')
    if (re.test(file)) ignored = !negate
  }
  return ignored
}
