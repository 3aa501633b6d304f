import type { Mount } from '../schemas/mount.ts'
import type { Credential } from '../schemas/credential.ts'
import type { BackendDescription } from '../rclone/templates.ts'
import type { ReconcileReport } from '../schemas/reconcile.ts'

// Human output: aligned tables and key: value blocks. Scripts use --json instead.

/** Left-aligned columns separated by two spaces; the last column is not padded. */
export function table (header: string[], rows: string[][]): string {
  const all = [header, ...rows]
  const widths = header.map((_, i) => Math.max(...all.map(r => (r[i] ?? '').length)))
  return all.map(r => r.map((cell, i) => i === r.length - 1 ? cell : cell.padEnd(widths[i])).join('  ').trimEnd()).join('\n') + '\n'
}

export function mountTable (mounts: Mount[]): string {
  if (mounts.length === 0) return 'no mounts\n'
  return table(['ID', 'PATH', 'REMOTE', 'BACKEND', 'MODE', 'STATUS'],
    mounts.map(m => [m.id, m.path, m.remote, m.backend, m.readWrite ? 'rw' : 'ro', m.status]))
}

export function mountDetail (m: Mount): string {
  const lines: Array<[string, string | undefined]> = [
    ['id', m.id], ['sandbox', m.sandboxId], ['path', m.path], ['remote', m.remote], ['backend', m.backend],
    ['credentials', m.credentialsRef], ['mode', m.readWrite ? 'read-write' : 'read-only'],
    ['options', m.mountOptions.length > 0 ? m.mountOptions.join(' ') : undefined], ['status', m.status],
    ['last error', m.lastError], ['last checked', m.lastCheckedAt], ['created', m.createdAt], ['updated', m.updatedAt]
  ]
  const shown = lines.filter((l): l is [string, string] => l[1] !== undefined)
  const width = Math.max(...shown.map(([k]) => k.length)) + 1
  return shown.map(([k, v]) => `${(k + ':').padEnd(width)} ${v}`).join('\n') + '\n'
}

export function credentialTable (creds: Credential[]): string {
  if (creds.length === 0) return 'no credentials\n'
  return table(['NAME', 'BACKEND', 'KEYS', 'UPDATED'], creds.map(c => [c.name, c.backend, c.keys.join(','), c.updatedAt]))
}

export function backendText (backends: BackendDescription[]): string {
  return backends.map(b => {
    const keys = b.keys.map(k => `  ${k.name}${k.required ? ' (required)' : ''}${k.secret ? ' (secret)' : ''}: ${k.type}${k.enum === undefined ? '' : ` [${k.enum.join('|')}]`}`)
    const oneOf = b.requiredOneOf.length > 0 ? [`  one of: ${b.requiredOneOf.map(g => g.join('+')).join(' | ')}`] : []
    return [`${b.backend} (rclone type "${b.type}"): ${b.description}`, ...keys, ...oneOf].join('\n')
  }).join('\n\n') + '\n'
}

export function reconcileText (r: ReconcileReport): string {
  const head = `sandbox ${r.sandboxId}: agent ${r.agentReachable ? 'reachable' : 'unreachable'}${r.skipped === undefined ? '' : `, skipped (${r.skipped})`}\n`
  const rows = r.mounts.map(m => [m.mountId, m.path, m.found, m.action, m.status, m.error ?? ''])
  const body = rows.length > 0 ? table(['ID', 'PATH', 'FOUND', 'ACTION', 'STATUS', 'ERROR'], rows) : ''
  const orphans = r.orphansRemoved.map(o => `removed orphan ${o.mountId} at ${o.path}\n`).join('')
  return head + body + orphans
}
