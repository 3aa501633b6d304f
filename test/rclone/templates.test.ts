import t from 'tap'
import { mkdtempSync, rmSync, readFileSync, writeFileSync, readdirSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { Value } from '@sinclair/typebox/value'
import { loadTemplates, describeBackends, BackendDescription } from '../../src/rclone/templates.ts'
import { rcloneProviders } from '../helpers/rclone.ts'

const DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../templates')

t.test('loads one template per typed backend', async t => {
  const templates = loadTemplates(DIR)
  t.same([...templates.keys()].sort(), ['azureblob', 'dropbox', 'gcs', 's3', 'sftp', 'webdav'])
  t.equal(templates.get('gcs')?.type, 'google cloud storage')
  t.equal(templates.get('s3')?.keys.provider.default, 'AWS')
  t.same(templates.get('azureblob')?.requiredOneOf, [['account', 'key'], ['sas_url'], ['use_emulator']])
  t.same(templates.get('sftp')?.requiredOneOf, [['pass'], ['key_pem']])
  t.same(templates.get('gcs')?.requiredOneOf, [['service_account_credentials'], ['token'], ['anonymous']])
})

t.test('template keys are real rclone 1.60 options with matching types and obscuring (real rclone)', async t => {
  const providers = await rcloneProviders(t)
  for (const template of loadTemplates(DIR).values()) {
    const provider = providers.find(p => p.Name === template.type)
    if (provider === undefined) {
      t.fail(`rclone has no type ${template.type}`)
      continue
    }
    for (const [name, spec] of Object.entries(template.keys)) {
      const option = provider.Options.find(o => o.Name === name)
      if (option === undefined) {
        t.fail(`${template.backend}.${name} is not an rclone option`)
        continue
      }
      t.equal(spec.obscured, option.IsPassword, `${template.backend}.${name} obscured matches IsPassword`)
      const expected = option.Type === 'bool' ? 'boolean' : option.Type === 'int' ? 'integer' : 'string'
      t.equal(spec.type, expected, `${template.backend}.${name} type`)
      if (option.IsPassword) t.ok(spec.secret, `${template.backend}.${name} is secret`)
    }
  }
})

t.test('describeBackends lists keys, requirements and secret keys', async t => {
  const described = describeBackends(loadTemplates(DIR))
  for (const d of described) t.ok(Value.Check(BackendDescription, d), `${d.backend} matches BackendDescription`)
  const sftp = described.find(d => d.backend === 'sftp')
  t.ok(sftp)
  t.same(sftp?.required, ['host'])
  t.same(sftp?.secretKeys.sort(), ['key_file_pass', 'key_pem', 'pass'])
  t.equal(sftp?.keys.find(k => k.name === 'host')?.required, true)
  t.equal(sftp?.keys.find(k => k.name === 'pass')?.required, false)
  t.same(described.find(d => d.backend === 'webdav')?.keys.find(k => k.name === 'vendor')?.enum, ['nextcloud', 'owncloud', 'sharepoint', 'sharepoint-ntlm', 'other'])
  t.notMatch(JSON.stringify(described), /"obscured"|"format"/, 'internal template fields stay internal')
})

t.test('fails fast on a broken template directory', async t => {
  const dir = mkdtempSync(path.join(tmpdir(), 'templates-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const copy = (): void => { for (const f of readdirSync(DIR)) writeFileSync(path.join(dir, f), readFileSync(path.join(DIR, f))) }
  const edit = (backend: string, change: (t: Record<string, any>) => void): void => {
    copy()
    const file = path.join(dir, `${backend}.json`)
    const data = JSON.parse(readFileSync(file, 'utf8'))
    change(data)
    writeFileSync(file, JSON.stringify(data))
  }
  copy()
  t.equal(loadTemplates(dir).size, 6, 'the copy loads')
  const broken: Array<[string, (d: Record<string, any>) => void, RegExp]> = [
    ['s3', d => { d.keys.env_auth = { type: 'boolean', secret: false, obscured: false, description: 'x' } }, /env_auth is refused/],
    ['s3', d => { d.backend = 'gcs' }, /expected "s3"/],
    ['s3', d => { d.type = 'local' }, /not an allowed rclone storage type/],
    ['sftp', d => { d.required.push('nope') }, /required key nope/],
    ['sftp', d => { d.keys.pass.secret = false }, /obscured but not secret/],
    ['s3', d => { d.keys.provider.default = 'Nope' }, /not in its enum/],
    ['s3', d => { d.keys.force_path_style.default = 'yes' }, /not a boolean/],
    ['s3', d => { d.extra = 1 }, /does not match the template schema/],
    ['s3', d => { d.keys['Bad-Key'] = d.keys.region }, /does not match the template schema/]
  ]
  for (const [backend, change, message] of broken) {
    edit(backend, change)
    t.throws(() => loadTemplates(dir), message, message.source)
  }
  copy()
  rmSync(path.join(dir, 'dropbox.json'))
  t.throws(() => loadTemplates(dir), /dropbox\.json: cannot be read/)
})
