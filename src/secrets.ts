import { createCipheriv, createDecipheriv, createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto'

// Secrets at rest: AES-256-GCM, a random 12-byte IV per record, the record's identity as
// additional data (a blob cannot be moved to another record), and the key id in the blob so
// keys can be rotated: the first key encrypts, every listed key decrypts.

export interface KeyEntry { id: string, key: Buffer }

export class SecretBox {
  readonly #keys: Map<string, Buffer>
  readonly #current: KeyEntry
  readonly #macKey: Buffer

  constructor (keys: KeyEntry[]) {
    if (keys.length === 0) throw new Error('at least one encryption key is needed')
    this.#keys = new Map(keys.map(k => [k.id, k.key]))
    this.#current = keys[0]
    this.#macKey = createHmac('sha256', keys[0].key).update('sandbox-mounts spec digest').digest()
  }

  get currentKeyId (): string { return this.#current.id }

  seal (plaintext: string, aad: string): string {
    const iv = randomBytes(12)
    const cipher = createCipheriv('aes-256-gcm', this.#current.key, iv)
    cipher.setAAD(Buffer.from(aad))
    const ct = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()])
    return ['v1', this.#current.id, iv.toString('base64url'), cipher.getAuthTag().toString('base64url'), ct.toString('base64url')].join('.')
  }

  open (blob: string, aad: string): string {
    const [version, keyId, iv, tag, ct] = blob.split('.')
    const key = this.#keys.get(keyId)
    if (version !== 'v1' || key === undefined) throw new Error(`secret sealed with unknown key id ${JSON.stringify(keyId)}`)
    const decipher = createDecipheriv('aes-256-gcm', key, Buffer.from(iv, 'base64url'))
    decipher.setAAD(Buffer.from(aad))
    decipher.setAuthTag(Buffer.from(tag, 'base64url'))
    return Buffer.concat([decipher.update(Buffer.from(ct, 'base64url')), decipher.final()]).toString('utf8')
  }

  /** Key id a blob was sealed with (for re-encryption after a key rotation). */
  static keyIdOf (blob: string): string { return blob.split('.')[1] }

  /** Keyed digest: lets equal secrets be compared without storing anything that can be brute-forced offline. */
  digest (text: string): string {
    return createHmac('sha256', this.#macKey).update(text).digest('hex')
  }
}

export function sha256 (text: string): string {
  return createHash('sha256').update(text).digest('hex')
}

export function safeEqual (a: string, b: string): boolean {
  const ha = createHash('sha256').update(a).digest()
  const hb = createHash('sha256').update(b).digest()
  return timingSafeEqual(ha, hb)
}
