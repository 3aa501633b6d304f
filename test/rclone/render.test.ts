import t, { type Test } from 'tap'
import fc from 'fast-check'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { loadTemplates } from '../../src/rclone/templates.ts'
import { renderTyped, renderRaw, serializeConfig, type Rendered } from '../../src/rclone/render.ts'
import { reveal } from '../../src/rclone/obscure.ts'
import { rcloneSandbox, type RcloneSandbox } from '../helpers/rclone.ts'

const TEMPLATES = loadTemplates(path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../templates'))
const tpl = (backend: 's3' | 'gcs' | 'azureblob' | 'sftp' | 'webdav' | 'dropbox') => TEMPLATES.get(backend) as NonNullable<ReturnType<typeof TEMPLATES.get>>
// A fake secret that must never show up in an error message.
const MARK = 'F4KE-S3CR3T'

const FAKE_PEM = '-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmU=\nZmFrZQ==\n-----END OPENSSH PRIVATE KEY-----\n'
const FAKE_SA = JSON.stringify({
  type: 'service_account',
  project_id: 'fake',
  private_key_id: 'abc',
  private_key: '-----BEGIN PRIVATE KEY-----\nZmFrZQ==\n-----END PRIVATE KEY-----\n',
  client_email: 'fake@fake.iam.gserviceaccount.com',
  token_uri: 'https://oauth2.googleapis.com/token'
}, null, 2)
const FAKE_TOKEN = JSON.stringify({ access_token: 'sl.fake-token', token_type: 'bearer', refresh_token: 'fake-refresh', expiry: '2099-01-01T00:00:00Z' })

interface Case {
  backend: 's3' | 'gcs' | 'azureblob' | 'sftp' | 'webdav' | 'dropbox'
  section: string
  creds: Record<string, string | boolean | number>
  /** What rclone must read back, obscured keys as plaintext. */
  expected: Record<string, string>
  /** Whether `rclone backend features` can build it without network. */
  features: boolean
}

const CASES: Case[] = [
  {
    backend: 's3',
    section: 's3 data',
    creds: { provider: 'Other', access_key_id: 'AKIAFAKE', secret_access_key: 'fake/Secret+Key==', endpoint: 'http://127.0.0.1:9', region: 'us-east-1', force_path_style: true, upload_concurrency: 8 },
    expected: { type: 's3', provider: 'Other', access_key_id: 'AKIAFAKE', secret_access_key: 'fake/Secret+Key==', endpoint: 'http://127.0.0.1:9', region: 'us-east-1', force_path_style: 'true', upload_concurrency: '8' },
    features: true
  },
  {
    backend: 's3',
    section: 'aws',
    creds: { access_key_id: 'AKIAFAKE', secret_access_key: '`quoted`=;#', session_token: ' spaced token ' },
    expected: { type: 's3', provider: 'AWS', access_key_id: 'AKIAFAKE', secret_access_key: '`quoted`=;#', session_token: ' spaced token ' },
    features: true
  },
  {
    backend: 'azureblob',
    section: 'az',
    creds: { account: 'fakeaccount', key: Buffer.from('fake azure storage key material').toString('base64') },
    expected: { type: 'azureblob', account: 'fakeaccount', key: Buffer.from('fake azure storage key material').toString('base64') },
    features: true
  },
  {
    backend: 'azureblob',
    section: 'azurite',
    creds: { use_emulator: true, endpoint: 'http://127.0.0.1:9/devstoreaccount1' },
    expected: { type: 'azureblob', use_emulator: 'true', endpoint: 'http://127.0.0.1:9/devstoreaccount1' },
    features: true
  },
  {
    backend: 'gcs',
    section: 'gcs',
    creds: { anonymous: true, endpoint: 'http://127.0.0.1:9/storage/v1/', bucket_policy_only: true },
    expected: { type: 'google cloud storage', anonymous: 'true', endpoint: 'http://127.0.0.1:9/storage/v1/', bucket_policy_only: 'true' },
    features: true
  },
  {
    backend: 'gcs',
    section: 'gcs-sa',
    creds: { service_account_credentials: FAKE_SA, project_number: '12345' },
    expected: { type: 'google cloud storage', service_account_credentials: JSON.stringify(JSON.parse(FAKE_SA)), project_number: '12345' },
    features: false
  },
  {
    backend: 'dropbox',
    section: 'dbx',
    creds: { token: FAKE_TOKEN, client_id: 'fake-id', client_secret: 'fake-secret' },
    expected: { type: 'dropbox', token: FAKE_TOKEN, client_id: 'fake-id', client_secret: 'fake-secret' },
    features: true
  },
  {
    backend: 'webdav',
    section: 'dav',
    creds: { url: 'http://127.0.0.1:9/remote.php/dav', vendor: 'nextcloud', user: 'alice', pass: ' p@ss = w:rd;#"`' },
    expected: { type: 'webdav', url: 'http://127.0.0.1:9/remote.php/dav', vendor: 'nextcloud', user: 'alice', pass: ' p@ss = w:rd;#"`' },
    features: true
  },
  {
    backend: 'sftp',
    section: 'box.1',
    creds: { host: '127.0.0.1', port: 2222, user: 'sandbox', key_pem: FAKE_PEM, key_file_pass: 'pem-passphrase ✓' },
    expected: { type: 'sftp', host: '127.0.0.1', port: '2222', user: 'sandbox', key_pem: FAKE_PEM.replaceAll('\n', '\\n'), key_file_pass: 'pem-passphrase ✓' },
    features: false
  },
  {
    backend: 'sftp',
    section: 'sftp-pass',
    creds: { host: 'localhost', user: 'u', pass: 'hunter2' },
    expected: { type: 'sftp', host: 'localhost', user: 'u', pass: 'hunter2' },
    features: false
  }
]

async function checkAgainstRclone (t: Test, rc: RcloneSandbox, c: Case, rendered: Rendered): Promise<void> {
  const dump = await rc.dump(rendered.config)
  t.same(Object.keys(dump), [c.section], 'exactly one section')
  const read = dump[c.section]
  t.same(Object.keys(read).sort(), Object.keys(c.expected).sort(), 'exactly the intended keys')
  for (const [key, want] of Object.entries(c.expected)) {
    if (tpl(c.backend).keys[key]?.obscured === true) {
      t.not(read[key], want, `${key} is stored obscured`)
      t.equal(await rc.reveal(read[key]), want, `rclone reveal ${key}`)
    } else {
      t.equal(read[key], want, key)
    }
  }
}

t.test('typed configs read back exactly by rclone, and build where possible (real rclone)', async t => {
  const rc = rcloneSandbox(t)
  for (const c of CASES) {
    await t.test(`${c.backend} [${c.section}]`, async t => {
      const rendered = renderTyped(tpl(c.backend), c.section, c.creds)
      t.equal(rendered.section, c.section)
      t.equal(rendered.type, tpl(c.backend).type)
      t.same(rendered.keys, Object.keys(c.expected).filter(k => k !== 'type').sort())
      await checkAgainstRclone(t, rc, c, rendered)
      if (c.features) {
        const res = await rc.features(rendered.config, c.section)
        t.equal(res.code, 0, `rclone backend features: ${res.stderr.trim()}`)
        t.equal(JSON.parse(res.stdout).Name, c.section)
      }
    })
  }
})

t.test('redact lists every secret as given and as written', async t => {
  const webdav = renderTyped(tpl('webdav'), 'dav', { url: 'http://127.0.0.1:1/', user: 'alice', pass: 'plain-pass', bearer_token: 'tok' })
  const written = /^pass = (.*)$/m.exec(webdav.config)?.[1] ?? ''
  t.equal(reveal(written), 'plain-pass')
  t.same([...webdav.redact].sort(), ['plain-pass', written, 'tok'].sort())
  t.notOk(webdav.redact.includes('alice'), 'non-secret values are not listed')
  const sftp = renderTyped(tpl('sftp'), 's', { host: 'h', key_pem: FAKE_PEM })
  t.ok(sftp.redact.includes(FAKE_PEM) && sftp.redact.includes(FAKE_PEM.replaceAll('\n', '\\n')), 'both forms of a reformatted secret')
  const gcs = renderTyped(tpl('gcs'), 'g', { service_account_credentials: FAKE_SA })
  t.ok(gcs.redact.includes(FAKE_SA) && gcs.redact.includes(JSON.stringify(JSON.parse(FAKE_SA))))
})

t.test('typed creds are validated, naming the key and never the value', async t => {
  const refused = (backend: Case['backend'], creds: Record<string, any>, message: RegExp, code = 'INVALID_CREDENTIALS'): void => {
    const err = t.throws(() => renderTyped(tpl(backend), 'sec', creds), message.source) as Error & { code: string, statusCode: number }
    t.match(err.message, message)
    t.equal(err.code, code)
    t.equal(err.statusCode, 400)
    t.notMatch(err.message, MARK, 'no value in the message')
  }
  refused('s3', { endpoint_url: MARK }, /^creds\.endpoint_url: not a key of backend s3/)
  refused('s3', { env_auth: true }, /^creds\.env_auth: not a key/)
  refused('s3', { type: 'local' }, /^creds\.type: not a key/)
  refused('s3', JSON.parse(`{"__proto__": "${MARK}"}`), /^creds\.__proto__: not a key/)
  refused('s3', { 'bad\nkey': MARK }, /^creds key "bad\\nkey": not a key/)
  refused('s3', { force_path_style: 'true' }, /^creds\.force_path_style: must be a boolean/)
  refused('s3', { upload_concurrency: 1.5 }, /^creds\.upload_concurrency: must be an integer/)
  refused('s3', { secret_access_key: 42 }, /^creds\.secret_access_key: must be a string/)
  refused('s3', { provider: MARK }, /^creds\.provider: must be one of AWS, /)
  refused('s3', { secret_access_key: `${MARK}\nother = x` }, /^creds\.secret_access_key: must not contain line breaks/)
  refused('s3', { secret_access_key: `${MARK}\r` }, /^creds\.secret_access_key: must not contain line breaks/)
  refused('s3', { secret_access_key: `a\u0000${MARK}` }, /control characters/)
  refused('s3', { secret_access_key: `${MARK}%(type)s` }, /^creds\.secret_access_key: must not contain %\(name\)s/)
  refused('s3', { secret_access_key: `${MARK}\ud800` }, /not valid Unicode/)
  refused('s3', { endpoint: `http://${MARK}@169.254.169.254/` }, /^creds\.endpoint: points at a link-local/, 'REFUSED_OPTION')
  refused('sftp', { user: 'u', pass: 'x' }, /^creds\.host: required for backend sftp/)
  refused('sftp', { host: 'h', user: MARK }, /^creds: backend sftp needs one of: pass; key_pem/)
  refused('sftp', { host: 'h', pass: '' }, /needs one of: pass; key_pem/)
  refused('azureblob', { account: 'a' }, /^creds: backend azureblob needs one of: account \+ key; sas_url; use_emulator = true/)
  refused('gcs', { anonymous: false }, /needs one of: service_account_credentials; token; anonymous = true/)
  refused('gcs', { token: `{"${MARK}": 1}` }, /^creds\.token: must be the JSON token rclone writes/, 'REFUSED_OPTION')
  refused('gcs', { service_account_credentials: MARK }, /^creds\.service_account_credentials: must be a JSON object/)
  refused('dropbox', { token: '[1, 2]' }, /^creds\.token: must be a JSON object/)
  refused('dropbox', { client_id: 'x' }, /^creds\.token: required/)
  t.throws(() => renderTyped(tpl('s3'), 'bad:section', {}), /remote section name/)
})

t.test('typed defaults apply and empty strings count as not given', async t => {
  const r = renderTyped(tpl('s3'), 's', { region: '', endpoint: '' })
  t.same(r.keys, ['provider'])
  t.match(r.config, /^provider = AWS$/m)
  t.match(renderTyped(tpl('s3'), 's', { provider: 'Minio' }).config, /^provider = Minio$/m)
})

// Values built from the characters that could break out of a value, a line or a section.
const NASTY = fc.oneof(
  fc.array(fc.constantFrom('\n', '\r', '\r\n', ']', '[', '[x]', '=', ':', ';', '#', '"', '"""', "'", '`', '``', ' ', '\t', '\u00a0',
    '\u2028', '\u3000', '\ufeff', '%(', ')s', '%(type)s', 'type = local', '\\', '\\n', 'é', '🎉', 'a', 'zZ9'), { maxLength: 12 }).map(parts => parts.join('')),
  fc.string({ unit: 'grapheme', maxLength: 40 }),
  fc.string({ unit: 'binary', maxLength: 20 })
)

t.test('injection: any value is refused with a 400 or read back exactly, in exactly one section (property, real rclone)', async t => {
  const rc = rcloneSandbox(t)
  const values = fc.sample(NASTY, { numRuns: 220, seed: 1337 })
  let accepted = 0
  let refusedCount = 0
  for (let start = 0; start < values.length; start += 55) {
    const expected: Record<string, Record<string, string>> = {}
    let text = ''
    values.slice(start, start + 55).forEach((value, j) => {
      const section = `case${start + j}`
      // An obscured key and a plain one: both go through the same writer.
      const creds = { url: 'http://127.0.0.1:1/', user: value, pass: value }
      let rendered: Rendered
      try {
        rendered = renderTyped(tpl('webdav'), section, creds)
      } catch (err) {
        t.equal((err as { statusCode?: number }).statusCode, 400, `${section} refused with a 400`)
        refusedCount++
        return
      }
      accepted++
      text += rendered.config
      expected[section] = { type: 'webdav', url: 'http://127.0.0.1:1/', ...(value === '' ? {} : { user: value, pass: value }) }
    })
    const dump = await rc.dump(text)
    t.same(Object.keys(dump).sort(), Object.keys(expected).sort(), 'one section per rendered config, no more')
    for (const [section, want] of Object.entries(expected)) {
      const got = { ...dump[section] }
      if (got.pass !== undefined) got.pass = reveal(got.pass)
      t.same(got, want, `${section} read back exactly`)
    }
  }
  t.ok(accepted > 100 && refusedCount > 10, `accepted ${accepted}, refused ${refusedCount}`)
})

t.test('serializeConfig writes every representable value so rclone reads it back (property, real rclone)', async t => {
  const rc = rcloneSandbox(t)
  const maps = fc.sample(fc.dictionary(fc.stringMatching(/^[A-Za-z0-9_]{1,12}$/), NASTY, { maxKeys: 8 }), { numRuns: 60, seed: 99 })
  const config = new Map<string, Map<string, string>>()
  const expected: Record<string, Record<string, string>> = {}
  maps.forEach((values, i) => {
    const section = `s${i}`
    const single = new Map([[section, new Map(Object.entries(values))]])
    try {
      serializeConfig(single)
    } catch (err) {
      t.equal((err as { code?: string }).code, 'INVALID_RCLONE_CONFIG')
      return
    }
    config.set(section, new Map(Object.entries(values)))
    expected[section] = { ...values }
  })
  t.ok(config.size > 20, `${config.size} sections written`)
  t.same(await rc.dump(serializeConfig(config)), expected)
})

t.test('rclone substitutes %(name)s even inside backticks, which is why such values are refused (real rclone)', async t => {
  const rc = rcloneSandbox(t)
  const dump = await rc.dump('[a]\ntype = memory\nx = pre%(type)spost\nz = `%(type)s`\n')
  t.equal(dump.a.x, 'prememorypost')
  t.equal(dump.a.z, 'memory')
  t.throws(() => serializeConfig(new Map([['a', new Map([['x', 'pre%(type)spost']])]])), /rcloneConfig \[a\] x: must not contain %\(name\)s/)
})

// ---- raw configs -------------------------------------------------------------------------

const OBSCURED_PASS = 'ujioCreznNuQuYrVnxPP6atQktkE7unCXyFPqrg' // `rclone obscure` of "fake-password" (checked below)

t.test('raw: colon syntax, merged duplicates and comments read as rclone does; only the mounted section is rendered (real rclone)', async t => {
  const rc = rcloneSandbox(t)
  const text = [
    '# my config',
    '[other]',
    'type = local',
    '[store]',
    'type: s3',
    'provider: Other',
    '; a comment',
    'access_key_id : AKIAFAKE',
    'secret_access_key = `abc==:;#`',
    'region = eu-1',
    '[unrelated]',
    'type = memory',
    '[store]',
    'region = us-east-1',
    'endpoint = http://127.0.0.1:9',
    'location_constraint =',
    ''
  ].join('\n')
  const rendered = renderRaw(text, 'store')
  t.equal(rendered.type, 's3')
  t.same(rendered.keys, ['access_key_id', 'endpoint', 'location_constraint', 'provider', 'region', 'secret_access_key'])
  t.ok(rendered.redact.includes('abc==:;#') && rendered.redact.includes('AKIAFAKE'))
  const original = await rc.dump(text)
  const dump = await rc.dump(rendered.config)
  t.same(Object.keys(dump), ['store'], 'other sections dropped')
  t.same(dump.store, original.store, 'the section means to rclone what the caller\'s file meant')
  t.notMatch(rendered.config, /^[#;]|local|memory/m, 'no comments or other sections carried over')
  const features = await rc.features(rendered.config, 'store')
  t.equal(features.code, 0, features.stderr)
})

t.test('raw: password options must be obscured as rclone writes them (real rclone)', async t => {
  const rc = rcloneSandbox(t)
  t.equal(await rc.reveal(OBSCURED_PASS), 'fake-password', 'the fixture is real rclone obscure output')
  const obscuredByRclone = await rc.obscure('another fake')
  const ok = renderRaw(`[dav]\ntype = webdav\nurl = http://127.0.0.1:1/\nuser = u\npass = ${obscuredByRclone}\n`, 'dav')
  t.ok(ok.redact.includes(obscuredByRclone) && ok.redact.includes('another fake'), 'redacts the obscured and the revealed form')
  t.equal(await rc.reveal((await rc.dump(ok.config)).dav.pass), 'another fake')
  for (const plain of ['hunter2', 'correct horse battery staple', MARK]) {
    const err = t.throws(() => renderRaw(`[s]\ntype = sftp\nhost = h\npass = ${plain}\n`, 's')) as Error & { code: string }
    t.equal(err.code, 'INVALID_RCLONE_CONFIG')
    t.match(err.message, /^rcloneConfig \[s\] pass: must be obscured/)
    t.notMatch(err.message, plain)
  }
  t.match(renderRaw('[f]\ntype = ftp\nhost = h\npass =\n', 'f').config, /^pass =$/m, 'an empty password stays empty')
})

t.test('raw: refused types and options are named', async t => {
  const refused = (text: string, section: string, message: RegExp, code: string): void => {
    const err = t.throws(() => renderRaw(text, section), message.source) as Error & { code: string }
    t.equal(err.code, code)
    t.match(err.message, message)
    t.notMatch(err.message, MARK)
  }
  for (const type of ['local', 'alias', 'crypt', 'union', 'http', 'memory']) {
    refused(`[x]\ntype = ${type}\nremote = ${MARK}\n`, 'x', new RegExp(`^rcloneConfig \\[x\\] type: "${type}" is not an allowed`), 'REFUSED_OPTION')
  }
  refused(`[x]\ntype = s3\nenv_auth = true\nsecret_access_key = ${MARK}\n`, 'x', /^rcloneConfig \[x\] env_auth: not allowed/, 'REFUSED_OPTION')
  refused(`[x]\ntype = webdav\nurl = http://127.0.0.1/\nbearer_token_command = cat ${MARK}\n`, 'x', /^rcloneConfig \[x\] bearer_token_command: not allowed/, 'REFUSED_OPTION')
  refused(`[x]\ntype = sftp\nhost = h\npass = ${OBSCURED_PASS}\nknown_hosts_file = ~/.ssh/known_hosts\n`, 'x', /^rcloneConfig \[x\] known_hosts_file: not allowed/, 'REFUSED_OPTION')
  refused('[x]\ntype = s3\noverride.endpoint = http://127.0.0.1/\n', 'x', /^rcloneConfig \[x\] override\.endpoint: not allowed/, 'REFUSED_OPTION')
  refused(`[x]\ntype = s3\nendpoint = http://169.254.169.254/${MARK}\n`, 'x', /^rcloneConfig \[x\] endpoint: points at a link-local/, 'REFUSED_OPTION')
  refused('[x]\ntype = gcs\n', 'x', /^rcloneConfig \[x\]: gcs needs/, 'REFUSED_OPTION')
  refused('[x]\ntype = sftp\nhost = h\n', 'x', /^rcloneConfig \[x\]: sftp needs pass or key_pem/, 'REFUSED_OPTION')
  refused('[x]\ntype = s3\n', 'y', /^rcloneConfig: has no \[y\] section/, 'INVALID_RCLONE_CONFIG')
  refused('[x]\nprovider = AWS\n', 'x', /^rcloneConfig \[x\] type: missing/, 'INVALID_RCLONE_CONFIG')
  refused(`[x]\ntype = s3\nsecret_access_key = \`${MARK}\n`, 'x', /^rcloneConfig line 3: unterminated/, 'INVALID_RCLONE_CONFIG')
  refused(`[x]\ntype = s3\nsecret_access_key = ${MARK}%(type)s\n`, 'x', /^rcloneConfig \[x\] secret_access_key: must not contain %\(name\)s/, 'INVALID_RCLONE_CONFIG')
  refused(`[x]\ntype = s3\nsecret_access_key = a\t${MARK}\n`, 'x', /^rcloneConfig \[x\] secret_access_key: must not contain line breaks or other control/, 'INVALID_RCLONE_CONFIG')
  refused('[x]\ntype = s3\nbad-key = 1\n', 'x', /^rcloneConfig \[x\] key "bad-key": key names may only contain/, 'INVALID_RCLONE_CONFIG')
  refused(`RCLONE_ENCRYPT_V0:\n${MARK}`, 'x', /encrypted configs are not accepted/, 'INVALID_RCLONE_CONFIG')
})

t.test('raw: a dotted section inherits missing keys from its parent, as rclone does (real rclone)', async t => {
  const rc = rcloneSandbox(t)
  const text = '[base]\ntype = s3\nprovider = Other\nendpoint = http://127.0.0.1:9\nregion = eu\n[base.child]\nregion = us-east-1\n'
  const res = await rc.features(text, 'base.child')
  t.equal(res.code, 0, 'rclone builds base.child with the type it inherits')
  const rendered = renderRaw(text, 'base.child')
  t.equal(rendered.type, 's3')
  const dump = await rc.dump(rendered.config)
  t.same(dump['base.child'], { type: 's3', provider: 'Other', endpoint: 'http://127.0.0.1:9', region: 'us-east-1' })
  t.throws(() => renderRaw('[base]\ntype = local\n[base.child]\nx = 1\n', 'base.child'), /type: "local" is not an allowed/, 'inherited values are checked too')
})

t.test('raw: type spellings are rendered as the canonical rclone name', async t => {
  t.match(renderRaw('[g]\ntype = gcs\nanonymous = true\n', 'g').config, /^type = google cloud storage$/m)
  t.equal(renderRaw('[g]\ntype = googlecloudstorage\nanonymous = true\n', 'g').type, 'google cloud storage')
})
