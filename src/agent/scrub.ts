// Replaces every secret value with *** before text leaves the agent (responses, logs,
// lastError). Longer values first, so a secret that contains another is removed whole; the
// URL-encoded and JSON-escaped forms go too, since rclone quotes URLs and JSON in its errors.

function variants (value: string): string[] {
  return [value, encodeURIComponent(value), JSON.stringify(value).slice(1, -1)]
}

export function scrub (text: string, redact: Iterable<string>): string {
  const values = [...new Set([...redact].flatMap(variants))].filter(v => v.length > 0).sort((a, b) => b.length - a.length)
  let out = text
  for (const value of values) out = out.split(value).join('***')
  return out
}

/** Keeps the end of a text within `max` characters, cut at a line start when possible. */
export function tail (text: string, max = 2000): string {
  if (text.length <= max) return text
  const cut = text.slice(-max)
  const nl = cut.indexOf('\n')
  return nl === -1 || nl > max / 2 ? cut : cut.slice(nl + 1)
}
