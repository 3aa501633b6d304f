import t from 'tap'
import fc from 'fast-check'
import { renderRaw, renderTyped, type Rendered } from '../../src/rclone/render.ts'
import { canonicalType } from '../../src/rclone/policy.ts'
import { obscure, reveal } from '../../src/rclone/obscure.ts'
import type { BackendTemplate, TemplateKey } from '../../src/schemas/template.ts'
import { TEMPLATES } from '../helpers/app.ts'
import { rcloneSandbox, type Dump } from '../helpers/rclone.ts'

// Whatever the raw-config parser or the typed renderer accepts, real rclone reads back exactly
// the validated map: one section, the same keys, the same values. Whatever they refuse, they
// refuse with a 400-class code from src/errors.ts. Many cases share one `rclone config dump`.

const REFUSAL_CODES = new Set(['INVALID_RCLONE_CONFIG', 'REFUSED_OPTION', 'INVALID_CREDENTIALS', 'INVALID_REMOTE'])
const BATCHES = 4
const TYPED_BATCHES = 3

type Outcome = { ok: true, rendered: Rendered } | { ok: false }

/** Runs a renderer; a refusal must be one of ours, anything else is a bug. */
function attempt (fn: () => Rendered): Outcome {
  try {
    return { ok: true, rendered: fn() }
  } catch (err) {
    const e = err as { code?: string, statusCode?: number, message?: string }
    if (e.statusCode !== 400 || e.code === undefined || !REFUSAL_CODES.has(e.code)) {
      throw new Error(`refused with something that is not a coded 400: ${String(e.code)} ${String(e.statusCode)} ${e.message ?? ''}`)
    }
    return { ok: false }
  }
}

function sectionsOf (config: string): string[] {
  return config.split('\n').filter(line => line.startsWith('[')).map(line => line.slice(1, -1))
}

function show (value: unknown): string {
  return (JSON.stringify(value) ?? '').replace(/[^\x20-\x7e]/g, ch => `\\u${ch.charCodeAt(0).toString(16).padStart(4, '0')}`).slice(0, 1500)
}

// ---- raw configs ---------------------------------------------------------------------------

// Values rclone's reader treats specially: edges with Go spaces, quotes, backticks, comment
// characters inside, separators, substitution look-alikes, non-ASCII.
const VALUE_PIECES = [
  ' ', '  ', '\t', '\u00a0', '\u0085', '\u2003', '\u3000', '\ufeff', '`', '``', '"', '"""', '\'', '#', ';', '=', ':', '[', ']',
  // eslint-disable-next-line no-template-curly-in-string -- literal expansions, which rclone must read as text
  '%', '%(', ')s', '%(x)s', '\\', '\\n', 'é', '😀', '\u202e', '\u200b', 'a', 'b c', 'http://127.0.0.1:1/x', '$HOME', '${X}', '-'
]
const value = fc.oneof(
  fc.array(fc.constantFrom(...VALUE_PIECES), { maxLength: 5 }).map(parts => parts.join('')),
  fc.string({ maxLength: 12 }),
  fc.string({ unit: 'binary', maxLength: 8 })
)
const KEYS = ['user', 'vendor', 'bearer_token', 'pass', 'url', 'type', 'x_y', 'Mixed', 'k1', 'headers', 'pacer_min_sleep', 'encoding']
const key = fc.oneof({ weight: 4, arbitrary: fc.constantFrom(...KEYS) }, { weight: 1, arbitrary: fc.stringMatching(/^[A-Za-z0-9_]{1,10}$/) })
const separator = fc.constantFrom(' = ', '=', ' =', '= ', ':', ' : ', '\t=\t', '  =   ', ' :=')

/** One case: a config written around section S (placeholders S and O are renamed per case). */
const rawCase = fc.record({
  lines: fc.array(fc.oneof(
    { weight: 6, arbitrary: fc.tuple(key, separator, value).map(([k, s, v]) => `${k}${s}${v}`) },
    { weight: 1, arbitrary: fc.constantFrom('# comment = x', '; type = local', '', '   ', '\t', '[O]', '[S]', '[ S ]', 'type = local', 'url = http://169.254.169.254/', 'env_auth = true') },
    { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 2 }).map(c => `pass = ${obscure(`p${c}`)}`) },
    { weight: 1, arbitrary: fc.tuple(key, fc.constantFrom('`', '"""'), value, fc.constantFrom('`', '"""', ''), value).map(([k, q1, v, q2, after]) => `${k} = ${q1}${v}${q2}${after}`) }
  ), { maxLength: 8 }),
  type: fc.constantFrom('webdav', 'webdav', 'webdav', ' webdav ', 'WebDAV', 'gcs', 'local', 'alias'),
  eol: fc.constantFrom('\n', '\r\n'),
  first: fc.boolean()
}).map(({ lines, type, eol, first }) => {
  const head = ['[S]', `type = ${type}`, 'url = http://127.0.0.1:1/dav']
  const all = first ? [...head, ...lines] : ['[O]', 'type = local', ...head, ...lines]
  return { text: all.join(eol) + eol }
})

t.test('raw configs: what is accepted, rclone reads back exactly (same as from the caller\'s own text)', async t => {
  const rc = rcloneSandbox(t)
  let accepted = 0
  let refused = 0
  await fc.assert(fc.asyncProperty(fc.array(rawCase, { minLength: 60, maxLength: 60 }), async cases => {
    const originals: string[] = []
    const rendered: Array<{ section: string, out: Rendered }> = []
    cases.forEach((c, i) => {
      const section = `c${i}`
      const text = c.text.replaceAll('[S]', `[${section}]`).replaceAll('[ S ]', `[ ${section} ]`).replaceAll('[O]', `[o${i}]`)
      const outcome = attempt(() => renderRaw(text, section))
      if (!outcome.ok) { refused++; return }
      accepted++
      if (show(sectionsOf(outcome.rendered.config)) !== show([section])) throw new Error(`rendered more than one section: ${show(outcome.rendered.config)}`)
      // Canonical output is a fixed point of the renderer.
      const again = renderRaw(outcome.rendered.config, section)
      if (again.config !== outcome.rendered.config) throw new Error(`not a fixed point: ${show(outcome.rendered.config)} -> ${show(again.config)}`)
      originals.push(text)
      rendered.push({ section, out: outcome.rendered })
    })
    if (rendered.length === 0) return
    const fromCaller = await rc.dump(originals.join('\n'))
    const fromUs = await rc.dump(rendered.map(r => r.out.config).join('\n'))
    const expectedSections = rendered.map(r => r.section).sort()
    if (show(Object.keys(fromUs).sort()) !== show(expectedSections)) throw new Error(`rclone read sections ${show(Object.keys(fromUs))}, expected ${show(expectedSections)}`)
    for (const { section, out } of rendered) {
      const theirs: Record<string, string> = { ...fromCaller[section] }
      theirs.type = canonicalType(theirs.type) ?? `refused type ${theirs.type}`
      const ours = fromUs[section]
      if (show(sortKeys(ours)) !== show(sortKeys(theirs))) {
        throw new Error(`[${section}] rclone read ${show(ours)} from our config but ${show(theirs)} from the caller's ${show(originals[rendered.findIndex(r => r.section === section)])}`)
      }
      if (show(Object.keys(ours).filter(k => k !== 'type').sort()) !== show([...out.keys].sort())) throw new Error(`[${section}] keys differ from Rendered.keys`)
      if (ours.type !== out.type) throw new Error(`[${section}] type ${show(ours.type)} vs ${show(out.type)}`)
    }
  }), { numRuns: BATCHES, endOnFailure: true })
  t.comment(`raw: ${accepted} accepted, ${refused} refused`)
  t.ok(accepted > 30, 'a good share is accepted')
  t.ok(refused > 50, 'a good share is refused')
})

function sortKeys (o: Record<string, string> | undefined): Array<[string, string]> {
  return Object.entries(o ?? {}).sort(([a], [b]) => a < b ? -1 : a > b ? 1 : 0)
}

// ---- typed creds ---------------------------------------------------------------------------

const text = fc.oneof(
  { weight: 3, arbitrary: fc.array(fc.constantFrom(...VALUE_PIECES, 'abc', 'XYZ', '0', '/'), { maxLength: 6 }).map(parts => parts.join('')) },
  { weight: 2, arbitrary: fc.string({ maxLength: 16 }) },
  { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 8 }) },
  { weight: 1, arbitrary: fc.constantFrom('a\nb', 'a\r\nb', '\u0000', 'x\u0007', '%(home)s', '') }
)

// Printable text with the reader's special characters but nothing that must be refused.
const cleanText = fc.array(fc.constantFrom(' ', '`', '"', '"""', '#', ';', '=', ':', '[', ']', '%', 'é', '😀', '\u00a0', 'abc', 'XYZ', '0', '/', '-'), { maxLength: 6 }).map(parts => parts.join(''))

function keyValue (spec: TemplateKey, name: string, clean: boolean): fc.Arbitrary<string | boolean | number> {
  if (clean) {
    if (spec.type === 'boolean') return fc.boolean()
    if (spec.type === 'integer') return fc.integer({ min: 0, max: 100000 })
    if (spec.enum !== undefined) return fc.constantFrom(...spec.enum)
    if (spec.format === 'json') return fc.record({ access_token: cleanText, refresh_token: fc.constant('r') }).map(o => JSON.stringify(o, null, 2))
    if (spec.format === 'pem') return fc.array(fc.base64String({ minLength: 4, maxLength: 40 }), { minLength: 1, maxLength: 4 }).map(lines => lines.join('\n'))
    if (/url|endpoint|host/.test(name)) return fc.constantFrom('http://127.0.0.1:9/x', '127.0.0.1', 'localhost:8080')
    if (name === 'region' || name === 'location_constraint' || name === 'account') return fc.stringMatching(/^[a-z0-9-]{1,12}$/)
    return cleanText
  }
  if (spec.type === 'boolean') return fc.oneof({ weight: 5, arbitrary: fc.boolean() }, { weight: 1, arbitrary: fc.constantFrom('true', 1) as fc.Arbitrary<never> })
  if (spec.type === 'integer') return fc.oneof({ weight: 5, arbitrary: fc.integer({ min: 0, max: 100000 }) }, { weight: 1, arbitrary: fc.constantFrom(1.5, '3') as fc.Arbitrary<never> })
  if (spec.enum !== undefined) return fc.oneof({ weight: 5, arbitrary: fc.constantFrom(...spec.enum) }, { weight: 1, arbitrary: text })
  if (spec.format === 'json') {
    return fc.oneof(
      { weight: 4, arbitrary: fc.record({ access_token: text, refresh_token: text, type: fc.constant('service_account'), token_uri: fc.constantFrom('https://oauth2.googleapis.com/token', 'http://127.0.0.1:1/t', 'http://169.254.169.254/t') }, { requiredKeys: [] }).map(o => JSON.stringify(o, null, Math.random() < 0.5 ? 2 : 0)) },
      { weight: 1, arbitrary: text }
    )
  }
  if (spec.format === 'pem') return fc.array(fc.oneof(fc.constantFrom('-----BEGIN OPENSSH PRIVATE KEY-----', '-----END OPENSSH PRIVATE KEY-----'), fc.base64String({ maxLength: 40 })), { minLength: 1, maxLength: 4 }).map(lines => lines.join(Math.random() < 0.5 ? '\n' : '\r\n'))
  if (/url|endpoint|host/.test(name)) {
    return fc.oneof(
      { weight: 4, arbitrary: fc.constantFrom('http://127.0.0.1:9/x', '127.0.0.1', 'https://example.com/a b', 'localhost:8080', '[::1]:22') },
      { weight: 1, arbitrary: fc.constantFrom('http://169.254.169.254/', '169.254.169.254', 'http://[fe80::1]/', 'http://0xa9fea9fe/', 'metadata.google.internal') },
      { weight: 1, arbitrary: text }
    )
  }
  if (name === 'region' || name === 'location_constraint' || name === 'account') return fc.oneof(fc.stringMatching(/^[a-z0-9-]{1,12}$/), text)
  return text
}

function credsFor (template: BackendTemplate): fc.Arbitrary<Record<string, string | boolean | number>> {
  const entries = Object.entries(template.keys)
  // Half the cases stay clean so that templates with many keys are accepted often enough.
  return fc.boolean().chain(clean => fc.tuple(...entries.map(([name, spec]) => fc.option(keyValue(spec, name, clean), { freq: 2, nil: undefined }))))
    .map(values => Object.fromEntries(entries.flatMap(([name], i) => values[i] === undefined ? [] : [[name, values[i]]])) as Record<string, string | boolean | number>)
}

/** What rclone should read for typed creds, computed without the renderer. */
function expectedSection (template: BackendTemplate, creds: Record<string, string | boolean | number>): Record<string, string> {
  const out: Record<string, string> = { type: template.type }
  for (const [name, spec] of Object.entries(template.keys)) {
    const given = creds[name]
    let v: string | undefined
    if (given !== undefined) {
      v = String(given)
      if (spec.format === 'json' && v !== '') v = JSON.stringify(JSON.parse(v))
      if (spec.format === 'pem') v = v.replace(/\r\n|\r|\n/g, '\\n')
    }
    if (v === undefined || v === '') v = spec.default === undefined ? undefined : String(spec.default)
    if (v !== undefined) out[name] = v
  }
  return out
}

t.test('typed creds: what is accepted, rclone reads back exactly as given (obscured keys reveal to the plaintext)', async t => {
  const rc = rcloneSandbox(t)
  const tally: Record<string, { accepted: number, refused: number }> = {}
  for (const template of TEMPLATES.values()) {
    const counts = tally[template.backend] = { accepted: 0, refused: 0 }
    await fc.assert(fc.asyncProperty(fc.array(credsFor(template), { minLength: 40, maxLength: 40 }), async batch => {
      const rendered: Array<{ section: string, creds: Record<string, string | boolean | number>, out: Rendered }> = []
      batch.forEach((creds, i) => {
        const section = `${template.backend}${i}`
        const outcome = attempt(() => renderTyped(template, section, creds))
        if (!outcome.ok) { counts.refused++; return }
        counts.accepted++
        if (show(sectionsOf(outcome.rendered.config)) !== show([section])) throw new Error(`rendered more than one section: ${show(outcome.rendered.config)}`)
        rendered.push({ section, creds, out: outcome.rendered })
      })
      if (rendered.length === 0) return
      const dump: Dump = await rc.dump(rendered.map(r => r.out.config).join('\n'))
      if (Object.keys(dump).length !== rendered.length) throw new Error(`rclone read ${Object.keys(dump).length} sections from ${rendered.length} configs`)
      for (const { section, creds, out } of rendered) {
        const expected = expectedSection(template, creds)
        const read = { ...dump[section] }
        for (const [name, spec] of Object.entries(template.keys)) {
          if (spec.obscured && read[name] !== undefined) {
            const plain = reveal(read[name])
            if (read[name] === expected[name]) throw new Error(`[${section}] ${name} was written in plaintext`)
            read[name] = plain
          }
        }
        if (show(sortKeys(read)) !== show(sortKeys(expected))) throw new Error(`[${section}] rclone read ${show(read)}, expected ${show(expected)} from ${show(creds)}`)
        // Every secret value, as given and as written, is in the redact list.
        for (const [name, spec] of Object.entries(template.keys)) {
          const given = creds[name]
          if (spec.secret && typeof given === 'string' && given !== '' && !out.redact.includes(given)) throw new Error(`[${section}] ${name} missing from redact`)
          if (spec.secret && dump[section][name] !== undefined && !out.redact.includes(dump[section][name])) throw new Error(`[${section}] written ${name} missing from redact`)
        }
      }
    }), { numRuns: TYPED_BATCHES, endOnFailure: true })
  }
  t.comment(`typed: ${JSON.stringify(tally)}`)
  for (const [backend, c] of Object.entries(tally)) t.ok(c.accepted > 10 && c.refused > 5, `${backend}: ${c.accepted} accepted, ${c.refused} refused`)
})

t.test('typed creds: a value made of only injection attempts never adds a section or key', async t => {
  const rc = rcloneSandbox(t)
  const injections = ['x\n[evil]\ntype = local', 'x\r\ntype = local', 'x\rtype = local', 'x\u2028[evil]', 'x\u0085type = local', '`\n[evil]`', '"""\n[evil]\n"""']
  const webdav = TEMPLATES.get('webdav') as BackendTemplate
  const configs: string[] = []
  for (const [i, inj] of injections.entries()) {
    for (const name of ['user', 'pass', 'bearer_token']) {
      const outcome = attempt(() => renderTyped(webdav, `w${i}${name}`, { url: 'http://127.0.0.1:1', [name]: inj }))
      if (outcome.ok) configs.push(outcome.rendered.config)
    }
  }
  const dump = configs.length === 0 ? {} : await rc.dump(configs.join('\n'))
  t.notOk(Object.keys(dump).some(s => s.includes('evil')), 'no injected section')
  for (const values of Object.values(dump)) t.equal(values.type, 'webdav')
})
