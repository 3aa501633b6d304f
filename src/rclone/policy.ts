import { RefusedOption } from '../errors.ts'
import { isMetadataHost } from './hosts.ts'

// What a config section may contain, whoever wrote it (a typed template or a caller's raw
// config): only remote-storage types, no option that runs a local command, reads a local file
// or picks up ambient credentials (the VM's environment, ssh-agent, cloud metadata), and no
// endpoint that points at a link-local or cloud metadata address. Loopback stays allowed.

export type Origin = 'creds' | 'rcloneConfig'

// rclone 1.60 types that store files remotely, as [name, prefix]. rclone's fs.Find accepts the
// name, the prefix or the name without spaces. Left out: types wrapping paths or other remotes
// (local, alias, union, combine, chunker, crypt, compress, hasher, cache), memory, http (a
// URL fetcher), hdfs (Kerberos ticket cache from the environment), sia (a local daemon's API)
// and amazon cloud drive (closed service).
const REMOTE_TYPES: ReadonlyArray<readonly [string, string]> = [
  ['s3', 's3'], ['google cloud storage', 'gcs'], ['azureblob', 'azureblob'], ['sftp', 'sftp'],
  ['webdav', 'webdav'], ['dropbox', 'dropbox'], ['b2', 'b2'], ['swift', 'swift'], ['box', 'box'],
  ['drive', 'drive'], ['onedrive', 'onedrive'], ['ftp', 'ftp'], ['smb', 'smb'], ['pcloud', 'pcloud'],
  ['yandex', 'yandex'], ['zoho', 'zoho'], ['koofr', 'koofr'], ['jottacloud', 'jottacloud'],
  ['mailru', 'mailru'], ['opendrive', 'opendrive'], ['putio', 'putio'], ['premiumizeme', 'premiumizeme'],
  ['seafile', 'seafile'], ['sharefile', 'sharefile'], ['sugarsync', 'sugarsync'], ['uptobox', 'uptobox'],
  ['fichier', 'fichier'], ['filefabric', 'filefabric'], ['hidrive', 'hidrive'],
  ['internetarchive', 'internetarchive'], ['netstorage', 'netstorage'], ['google photos', 'gphotos']
]

const TYPE_ALIASES: ReadonlyMap<string, string> = new Map(REMOTE_TYPES.flatMap(([name, prefix]) => [
  [name, name], [prefix, name], [name.replaceAll(' ', ''), name]
]))

/** The canonical rclone type name for an allowed type spelling, or undefined if refused. */
export function canonicalType (type: string): string | undefined {
  return TYPE_ALIASES.get(type)
}

export const ALLOWED_TYPES: readonly string[] = REMOTE_TYPES.map(([name]) => name)

/** Options rclone 1.60 stores obscured (IsPassword), per allowed type. */
export const PASSWORD_KEYS: Readonly<Record<string, readonly string[]>> = {
  sftp: ['pass', 'key_file_pass'],
  webdav: ['pass'],
  ftp: ['pass'],
  smb: ['pass'],
  pcloud: ['password'],
  koofr: ['password'],
  mailru: ['pass'],
  opendrive: ['password'],
  seafile: ['pass', 'library_key'],
  fichier: ['file_password', 'folder_password'],
  netstorage: ['secret']
}

const REFUSED_KEYS = new Set([
  'env_auth', 'profile', 'shared_credentials_file', 'service_account_file', 'service_principal_file',
  'use_msi', 'msi_object_id', 'msi_client_id', 'msi_mi_res_id', 'use_az', 'key_file', 'pubkey_file',
  'known_hosts_file', 'key_use_agent', 'ask_password', 'ssh', 'server_command', 'md5sum_command',
  'sha1sum_command', 'set_env', 'bearer_token_command', 'box_config_file', 'password_command'
])

/** Keys that run commands, read local paths or use ambient credentials, for every type. */
export function isRefusedKey (key: string): boolean {
  const k = key.toLowerCase()
  return REFUSED_KEYS.has(k) || k.startsWith('env_auth') || k.includes('.') ||
    k.endsWith('_command') || k.endsWith('_file') || k.endsWith('_path')
}

const ENDPOINT_KEYS = new Set(['endpoint', 'url', 'sas_url', 'host', 'hostname', 'server', 'auth', 'storage_url'])

function isEndpointKey (key: string): boolean {
  const k = key.toLowerCase()
  return ENDPOINT_KEYS.has(k) || k.endsWith('_url') || k.endsWith('_endpoint') || k.endsWith('_host') || k.endsWith('_hostname')
}

// Values some backends paste into a URL's host (s3 region, zoho region, azureblob account):
// anything beyond a DNS label could move the host (`@`, `/`, `#`).
function isHostFragmentKey (type: string, key: string): boolean {
  return key === 'region' || key === 'location_constraint' || (type === 'azureblob' && key === 'account')
}

const GO_TRUE = new Set(['1', 't', 'T', 'TRUE', 'true', 'True'])

/** strconv.ParseBool's true, which is how rclone reads a bool option. */
export function isGoTrue (value: string | undefined): boolean {
  return value !== undefined && GO_TRUE.has(value)
}

function fieldName (origin: Origin, section: string, key?: string): string {
  if (origin === 'creds') return key === undefined ? 'creds' : `creds.${key}`
  return key === undefined ? `rcloneConfig [${section}]` : `rcloneConfig [${section}] ${key}`
}

function printableType (type: string): string {
  return /^[A-Za-z0-9 _-]{1,40}$/.test(type) ? `"${type}"` : 'this type'
}

const SCHEME_URL = /^[A-Za-z][A-Za-z0-9+.-]*:\/\//
const EMBEDDED_URL = /[A-Za-z][A-Za-z0-9+.-]*:\/\/[^\s"'<>`]*/g

// The host as Go's net/url takes it: after `//`, up to `/` (query and fragment cut first),
// after the last `@`, without the port. Checked beside the WHATWG reading so that a value the
// two parsers read differently is caught by one of them.
function goStyleHost (url: string): string {
  let rest = url.replace(SCHEME_URL, '')
  rest = rest.split('#')[0].split('?')[0].split('/')[0]
  rest = rest.slice(rest.lastIndexOf('@') + 1)
  if (rest.startsWith('[')) return rest.slice(0, rest.indexOf(']') + 1)
  const colon = rest.lastIndexOf(':')
  return colon === -1 ? rest : rest.slice(0, colon)
}

function whatwgHost (url: string): string | undefined {
  try {
    return new URL(url).hostname
  } catch {
    return undefined
  }
}

/** Whether a URL (with scheme) reaches a refused host under either parser. */
function urlIsRefused (url: string): boolean {
  if (url.includes('\\')) return true
  const hosts = [goStyleHost(url), whatwgHost(url)].filter((h): h is string => h !== undefined && h !== '')
  return hosts.some(isMetadataHost)
}

/** An endpoint value: a URL, a host, host:port or a bare IPv6 address. */
export function endpointProblem (value: string): string | undefined {
  if (/[\s\\]/.test(value)) return 'must be a URL or host name without spaces or backslashes'
  let url: string
  if (SCHEME_URL.test(value)) url = value
  else if (/^[0-9A-Fa-f:.]+$/.test(value) && value.split(':').length > 2) url = `http://[${value}]`
  else url = `http://${value}`
  if (whatwgHost(url) === undefined) return 'is not a valid URL or host name'
  if (urlIsRefused(url)) return 'points at a link-local or cloud metadata address'
  return undefined
}

function stringLeaves (value: unknown, out: string[]): void {
  if (typeof value === 'string') out.push(value)
  else if (Array.isArray(value)) for (const v of value) stringLeaves(v, out)
  else if (value !== null && typeof value === 'object') for (const v of Object.values(value)) stringLeaves(v, out)
}

/** URLs anywhere in a value, including inside JSON (e.g. a service account's token_uri). */
function embeddedUrlRefused (value: string): boolean {
  const texts = [value]
  if (/^\s*[[{]/.test(value)) {
    try {
      stringLeaves(JSON.parse(value), texts)
    } catch {}
  }
  return texts.some(text => [...text.matchAll(EMBEDDED_URL)].some(m => urlIsRefused(m[0])))
}

function oauthTokenUsable (token: string | undefined): boolean {
  if (token === undefined) return false
  try {
    const parsed: unknown = JSON.parse(token)
    if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) return false
    const { access_token: access, refresh_token: refresh } = parsed as Record<string, unknown>
    return (typeof access === 'string' && access !== '') || (typeof refresh === 'string' && refresh !== '')
  } catch {
    return false
  }
}

/**
 * Refuses a section (values include `type`) that could escape the sandbox's intent. Throws
 * RefusedOption naming `creds.<key>` or `rcloneConfig [section] <key>`; never a value.
 */
export function checkSection (section: string, values: ReadonlyMap<string, string>, origin: Origin): void {
  // rclone reads an empty value as unset (the option's default, usually empty).
  const given = (key: string): boolean => (values.get(key) ?? '') !== ''
  const rawType = values.get('type')
  const type = rawType === undefined ? undefined : canonicalType(rawType)
  if (rawType !== undefined && type === undefined) {
    throw new RefusedOption(`${fieldName(origin, section, 'type')}: ${printableType(rawType)} is not an allowed storage type (allowed: ${ALLOWED_TYPES.join(', ')})`)
  }
  for (const [key, value] of values) {
    const field = fieldName(origin, section, key)
    if (isRefusedKey(key)) throw new RefusedOption(`${field}: not allowed (runs a local command, reads a local file or uses ambient credentials)`)
    if (isEndpointKey(key) && value !== '') {
      const problem = endpointProblem(value)
      if (problem !== undefined) throw new RefusedOption(`${field}: ${problem}`)
    }
    if (type !== undefined && isHostFragmentKey(type, key) && !/^[A-Za-z0-9._-]*$/.test(value)) {
      throw new RefusedOption(`${field}: may only contain letters, digits, '.', '_' and '-'`)
    }
    if (embeddedUrlRefused(value)) throw new RefusedOption(`${field}: contains a URL that points at a link-local or cloud metadata address`)
  }
  if (type === 'azureblob' && !isGoTrue(values.get('use_emulator')) && given('account')) {
    // rclone builds https://<account>.<endpoint>: check the host the two make together.
    const host = `${values.get('account') ?? ''}.${given('endpoint') ? values.get('endpoint') ?? '' : 'blob.core.windows.net'}`
    if (urlIsRefused(`https://${host}`)) throw new RefusedOption(`${fieldName(origin, section, 'account')}: with endpoint, points at a link-local or cloud metadata address`)
  }
  if (type === 'google cloud storage') {
    // Without working credentials rclone falls back to the machine's default credentials.
    const token = given('token') ? values.get('token') : undefined
    if (token !== undefined && !oauthTokenUsable(token)) {
      throw new RefusedOption(`${fieldName(origin, section, 'token')}: must be the JSON token rclone writes, with an access_token or refresh_token (rclone would fall back to the machine's default credentials)`)
    }
    if (!given('service_account_credentials') && token === undefined && !isGoTrue(values.get('anonymous'))) {
      throw new RefusedOption(`${fieldName(origin, section)}: gcs needs service_account_credentials, token or anonymous = true (rclone would fall back to the machine's default credentials)`)
    }
  }
  if (type === 'sftp' && !given('pass') && !given('key_pem')) {
    throw new RefusedOption(`${fieldName(origin, section)}: sftp needs pass or key_pem (rclone would use the ssh-agent)`)
  }
}

const SECRET_NAME = /pass|secret|token|key|credential|sas_url|auth|session|cookie|signature|private/i
const NOT_SECRET_VALUE = /^(?:true|false|True|False|TRUE|FALSE|t|f|T|F|\d{1,3})$/

/** Whether a raw config value should be scrubbed from logs (name-based, errs on the safe side). */
export function looksSecret (type: string, key: string, value: string): boolean {
  if (PASSWORD_KEYS[type]?.includes(key) === true) return true
  return SECRET_NAME.test(key) && !NOT_SECRET_VALUE.test(value)
}
