import t, { type Test } from 'tap'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { checkSection, canonicalType, isRefusedKey, endpointProblem, looksSecret, ALLOWED_TYPES, PASSWORD_KEYS } from '../../src/rclone/policy.ts'
import { rcloneSandbox, rcloneProviders } from '../helpers/rclone.ts'

const MARK = 'S3CR3T-MARKER'

function section (entries: Record<string, string>): Map<string, string> {
  return new Map(Object.entries(entries))
}

function refused (t: Test, values: Map<string, string>, message: RegExp, origin: 'creds' | 'rcloneConfig' = 'rcloneConfig'): void {
  const err = t.throws(() => checkSection('mine', values, origin), JSON.stringify([...values])) as Error & { code: string }
  t.equal(err.code, 'REFUSED_OPTION')
  t.match(err.message, message)
  t.notMatch(err.message, MARK, 'the message never carries a value')
}

t.test('only remote-storage types, in every spelling rclone accepts', async t => {
  t.equal(canonicalType('gcs'), 'google cloud storage')
  t.equal(canonicalType('googlecloudstorage'), 'google cloud storage')
  t.equal(canonicalType('gphotos'), 'google photos')
  t.equal(canonicalType('S3'), undefined, 'rclone matches types case-sensitively')
  for (const type of ['local', 'alias', 'union', 'combine', 'chunker', 'crypt', 'compress', 'hasher', 'cache', 'memory', 'http', 'hdfs', 'sia', 'nonsense']) {
    refused(t, section({ type }), new RegExp(`^rcloneConfig \\[mine\\] type: "${type}" is not an allowed storage type`))
  }
  refused(t, section({ type: `x\n${MARK}` }), /this type is not an allowed/)
  checkSection('mine', section({ type: 's3' }), 'rcloneConfig')
  checkSection('mine', section({ type: 'b2', account: 'a', key: 'k' }), 'rcloneConfig')
})

t.test('the type lists match the installed rclone (real rclone)', async t => {
  const providers = await rcloneProviders(t)
  const names = new Set(providers.map(p => p.Name))
  for (const type of ALLOWED_TYPES) t.ok(names.has(type), `${type} exists in rclone 1.60`)
  for (const p of providers) {
    if (canonicalType(p.Name) === undefined) continue
    t.equal(canonicalType(p.Prefix), p.Name, `prefix ${p.Prefix}`)
    const passwords = [...new Set(p.Options.filter(o => o.IsPassword).map(o => o.Name))].sort()
    t.same([...(PASSWORD_KEYS[p.Name] ?? [])].sort(), passwords.filter(k => !isRefusedKey(k)), `obscured keys of ${p.Name}`)
  }
})

t.test('refuses options that run commands, read files or use ambient credentials', async t => {
  const keys = [
    'env_auth', 'profile', 'shared_credentials_file', 'service_account_file', 'service_principal_file', 'use_msi',
    'msi_client_id', 'key_file', 'pubkey_file', 'known_hosts_file', 'key_use_agent', 'ask_password', 'ssh',
    'server_command', 'md5sum_command', 'sha1sum_command', 'set_env', 'bearer_token_command', 'box_config_file',
    'anything_command', 'other_file', 'db_path', 'env_auth_x', 'ENV_AUTH', 'global.foo', 'override.endpoint'
  ]
  for (const key of keys) {
    t.ok(isRefusedKey(key), key)
    refused(t, section({ type: 'sftp', pass: 'x', [key]: MARK }), new RegExp(`^rcloneConfig \\[mine\\] ${key.replace('.', '\\.')}: not allowed`))
  }
  refused(t, section({ type: 's3', env_auth: 'true' }), /^creds\.env_auth: not allowed/, 'creds')
  for (const key of ['key_file_pass', 'shared_files', 'access_key_id', 'endpoint', 'pass']) t.notOk(isRefusedKey(key), key)
})

t.test('the installed rclone has no other option that names a local file or command (real rclone)', async t => {
  const providers = await rcloneProviders(t)
  for (const p of providers) {
    if (canonicalType(p.Name) === undefined) continue
    for (const o of p.Options) {
      if (/file|command|agent|ask_|msi|env|path/.test(o.Name) && !isRefusedKey(o.Name)) {
        t.ok(['key_file_pass', 'file_password', 'shared_files', 'speedup_file_patterns', 'expose_onenote_files', 'path_override', 'force_path_style', 'user_agent'].includes(o.Name), `${p.Name} ${o.Name} reviewed`)
      }
    }
  }
})

t.test('endpoints must not point at metadata or link-local addresses', async t => {
  const bad = [
    'http://169.254.169.254/latest/meta-data', 'http://[fe80::1]/', 'metadata.google.internal', 'http://metadata/',
    'http://2852039166/', 'http://0xa9fea9fe', `https://${MARK}@169.254.169.254/`, 'http://169.254.169.254#@example.com',
    'http://example.com@169.254.169.254', 'sftp://[::ffff:169.254.169.254]:22', '169.254.169.254:80', 'fe80::1',
    'http://100.100.100.200/', 'http://[fd00:ec2::254]/', 'HTTP://METADATA.GOOGLE.INTERNAL./computeMetadata',
    'foo://169.254.169.%32%35%34/'
  ]
  for (const key of ['endpoint', 'url', 'sas_url', 'host', 'token_url', 'auth_url', 'download_url', 'front_endpoint', 'hostname', 'auth']) {
    for (const value of bad) refused(t, section({ type: 's3', [key]: value }), new RegExp(`^rcloneConfig \\[mine\\] ${key}: `))
  }
  refused(t, section({ type: 's3', endpoint: 'http://evil.example\\@169.254.169.254/' }), /without spaces or backslashes/)
  refused(t, section({ type: 's3', endpoint: 'http://exa mple.com' }), /without spaces/)
  refused(t, section({ type: 's3', endpoint: 'http://[::1' }), /not a valid URL/)
  const good = ['http://127.0.0.1:9000', 'https://s3.amazonaws.com', 'localhost:22', '::1', 'example.com', 'http://[::1]:80/', 'https://acct.blob.core.windows.net/c?sv=1&sig=x', '']
  for (const value of good) {
    t.equal(endpointProblem(value || 'x'), undefined, value)
    checkSection('mine', section({ type: 's3', endpoint: value }), 'rcloneConfig')
  }
})

t.test('URLs anywhere in a value are checked, also inside JSON', async t => {
  const creds = (tokenUri: string): string => JSON.stringify({ type: 'service_account', private_key: MARK, token_uri: tokenUri })
  refused(t, section({ type: 'gcs', service_account_credentials: creds('http://169.254.169.254/token') }), /service_account_credentials: contains a URL/)
  const escaped = creds('https://x').replace('https://x', 'http:\\/\\/169.254.169.254\\/token')
  refused(t, section({ type: 'gcs', service_account_credentials: escaped }), /contains a URL/, 'rcloneConfig')
  refused(t, section({ type: 'webdav', url: 'http://127.0.0.1/', headers: 'X-Foo,http://[fe80::1]/' }), /headers: contains a URL/)
  checkSection('mine', section({ type: 'gcs', service_account_credentials: creds('https://oauth2.googleapis.com/token') }), 'rcloneConfig')
})

t.test('values pasted into hosts cannot move the host', async t => {
  refused(t, section({ type: 's3', region: 'x@169.254.169.254#' }), /region: may only contain/)
  refused(t, section({ type: 'zoho', region: 'com/x' }), /region: may only contain/)
  refused(t, section({ type: 'azureblob', account: 'a/b', key: 'k' }), /account: may only contain/)
  refused(t, section({ type: 'azureblob', account: '169.254', endpoint: '169.254', key: 'k' }), /account: with endpoint, points at/)
  checkSection('mine', section({ type: 's3', region: 'eu-west-1', location_constraint: '' }), 'rcloneConfig')
  checkSection('mine', section({ type: 'azureblob', account: 'acct', key: 'k' }), 'rcloneConfig')
  checkSection('mine', section({ type: 'azureblob', use_emulator: 'true', endpoint: 'http://127.0.0.1:10000/devstoreaccount1' }), 'rcloneConfig')
})

t.test('no fallback to the machine\'s credentials or ssh-agent', async t => {
  refused(t, section({ type: 'google cloud storage' }), /^rcloneConfig \[mine\]: gcs needs service_account_credentials, token or anonymous = true/)
  refused(t, section({ type: 'gcs', anonymous: 'false' }), /gcs needs/)
  refused(t, section({ type: 'gcs', token: '' }), /gcs needs/)
  refused(t, section({ type: 'gcs', service_account_credentials: '' }), /gcs needs/)
  refused(t, section({ type: 'gcs', token: MARK }), /^rcloneConfig \[mine\] token: must be the JSON token/)
  refused(t, section({ type: 'gcs', token: '{"token_type":"bearer"}' }), /token: must be the JSON token/)
  refused(t, section({ type: 'gcs' }), /^creds: gcs needs/, 'creds')
  checkSection('mine', section({ type: 'gcs', anonymous: 'true' }), 'rcloneConfig')
  checkSection('mine', section({ type: 'gcs', anonymous: 'T' }), 'rcloneConfig')
  checkSection('mine', section({ type: 'gcs', token: '{"access_token":"x"}' }), 'rcloneConfig')
  checkSection('mine', section({ type: 'gcs', token: '{"refresh_token":"x","expiry":"0001-01-01T00:00:00Z"}' }), 'rcloneConfig')
  refused(t, section({ type: 'sftp', host: 'h' }), /^rcloneConfig \[mine\]: sftp needs pass or key_pem/)
  refused(t, section({ type: 'sftp', host: 'h', pass: '' }), /sftp needs pass or key_pem/)
  checkSection('mine', section({ type: 'sftp', host: 'h', key_pem: 'k' }), 'rcloneConfig')
})

t.test('raw secrets are recognized by name for log scrubbing', async t => {
  t.ok(looksSecret('s3', 'secret_access_key', 'abc'))
  t.ok(looksSecret('sftp', 'pass', 'x'), 'password options always')
  t.ok(looksSecret('drive', 'token', '{"access_token":"x"}'))
  t.notOk(looksSecret('s3', 'v2_auth', 'true'), 'not booleans')
  t.notOk(looksSecret('s3', 'region', 'us-east-1'))
})

t.test('rclone connects through IPv4-mapped IPv6 spellings, so their metadata forms are refused (real rclone, loopback only)', async t => {
  let hits = 0
  const server = createServer((req, res) => { hits++; res.statusCode = 500; res.end() })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => server.close())
  const port = (server.address() as AddressInfo).port
  const rc = rcloneSandbox(t)
  // Only spellings Go dials without a DNS lookup, so no traffic leaves loopback.
  const spellings: Array<(a: number[]) => string> = [
    a => a.join('.'),
    a => `[::ffff:${a.join('.')}]`,
    a => `[::ffff:${((a[0] << 8) + a[1]).toString(16)}:${((a[2] << 8) + a[3]).toString(16)}]`
  ]
  for (const spell of spellings) {
    const before = hits
    const file = rc.writeConfig(`[d]\ntype = webdav\nurl = http://${spell([127, 0, 0, 1])}:${port}/\n`)
    await rc.run(['--config', file, '--retries', '1', '--low-level-retries', '1', 'lsf', 'd:'])
    t.ok(hits > before, `rclone reached the loopback server via ${spell([127, 0, 0, 1])}`)
    t.match(endpointProblem(`http://${spell([169, 254, 169, 254])}/`), /link-local or cloud metadata/, spell([169, 254, 169, 254]))
  }
})
