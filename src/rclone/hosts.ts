// Recognizes hosts that reach a cloud VM's metadata service or link-local addresses, in any
// spelling a resolver might accept: decimal, hex or octal IPv4 (inet_aton forms), IPv4 inside
// IPv6 (mapped, compatible, NAT64, 6to4), brackets, zone ids, trailing dots, case.
// Names that merely resolve there (DNS rebinding) cannot be caught without resolving.

const METADATA_NAMES = new Set([
  'metadata', 'metadata.google.internal', 'metadata.goog', 'instance-data', 'instance-data.ec2.internal'
])

function ipv4Refused (a: number, b: number, c: number, d: number): boolean {
  if (a === 169 && b === 254) return true // link-local, AWS/GCP/Azure/OCI metadata
  if (a === 100 && b === 100 && c === 100 && d === 200) return true // Alibaba Cloud metadata
  if (a === 168 && b === 63 && c === 129 && d === 16) return true // Azure WireServer
  return false
}

function parseDottedIPv4 (text: string): number[] | undefined {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(text)
  if (m === null) return undefined
  const parts = m.slice(1).map(Number)
  return parts.every(p => p <= 255) ? parts : undefined
}

/** Eight 16-bit words, or undefined when not an IPv6 address (a dotted IPv4 tail is allowed). */
export function parseIPv6 (text: string): number[] | undefined {
  let body = text
  const tail: number[] = []
  const dotted = /^(.*:)(\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3})$/.exec(text)
  if (dotted !== null) {
    const v4 = parseDottedIPv4(dotted[2])
    if (v4 === undefined) return undefined
    tail.push((v4[0] << 8) | v4[1], (v4[2] << 8) | v4[3])
    body = dotted[1].endsWith('::') ? dotted[1] : dotted[1].slice(0, -1)
  }
  const halves = body.split('::')
  if (halves.length > 2) return undefined
  const words = (s: string): number[] | undefined => {
    if (s === '') return []
    const out: number[] = []
    for (const w of s.split(':')) {
      if (!/^[0-9a-f]{1,4}$/i.test(w)) return undefined
      out.push(parseInt(w, 16))
    }
    return out
  }
  const head = words(halves[0])
  const rest = halves.length === 2 ? words(halves[1]) : []
  if (head === undefined || rest === undefined) return undefined
  const given = head.length + rest.length + tail.length
  if (halves.length === 1 ? given !== 8 : given > 7) return undefined
  return [...head, ...new Array<number>(8 - given).fill(0), ...rest, ...tail]
}

function ipv6Refused (w: number[]): boolean {
  if ((w[0] & 0xffc0) === 0xfe80) return true // fe80::/10 link-local
  if (w[0] === 0xfd00 && w[1] === 0x0ec2 && w.slice(2, 7).every(x => x === 0) && w[7] === 0x254) return true // AWS IMDS IPv6
  const v4 = (hi: number, lo: number): boolean => ipv4Refused(hi >> 8, hi & 0xff, lo >> 8, lo & 0xff)
  const zero = (from: number, to: number): boolean => w.slice(from, to).every(x => x === 0)
  if (zero(0, 5) && (w[5] === 0 || w[5] === 0xffff)) return v4(w[6], w[7]) // compatible, mapped
  if (zero(0, 4) && w[4] === 0xffff && w[5] === 0) return v4(w[6], w[7]) // translated
  if (w[0] === 0x64 && w[1] === 0xff9b && zero(2, 6)) return v4(w[6], w[7]) // NAT64
  if (w[0] === 0x2002) return v4(w[1], w[2]) // 6to4
  return false
}

function normalizeWithWhatwg (host: string): string | undefined {
  try {
    return new URL(`http://${host}/`).hostname
  } catch {
    return undefined
  }
}

/** True when the host (a name, an IPv4 in any inet_aton form, or a bracketed IPv6) is refused. */
export function isMetadataHost (host: string): boolean {
  let h = host.toLowerCase()
  try {
    h = decodeURIComponent(h)
  } catch {}
  if (h.startsWith('[')) {
    const inner = h.slice(1, h.includes(']') ? h.indexOf(']') : undefined).split('%')[0]
    const words = parseIPv6(inner)
    return words === undefined ? false : ipv6Refused(words)
  }
  if (h.includes(':')) {
    const words = parseIPv6(h.split('%')[0])
    if (words !== undefined) return ipv6Refused(words)
  }
  const name = h.replace(/\.+$/, '')
  if (METADATA_NAMES.has(name) || name.endsWith('.metadata.google.internal')) return true
  const normalized = normalizeWithWhatwg(name)
  if (normalized === undefined) return false
  if (normalized.startsWith('[')) return isMetadataHost(normalized)
  const v4 = parseDottedIPv4(normalized)
  if (v4 !== undefined) return ipv4Refused(v4[0], v4[1], v4[2], v4[3])
  return METADATA_NAMES.has(normalized.replace(/\.+$/, ''))
}
