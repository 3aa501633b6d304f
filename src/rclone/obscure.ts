import { createCipheriv, randomBytes } from 'node:crypto'

// rclone's "obscure" (fs/config/obscure): AES-256-CTR under a fixed, public key, a random
// 16-byte IV as the first counter block, output base64url without padding of IV || ciphertext.
// It only keeps passwords from being read at a glance; done in-process so plaintext never
// reaches a command line.

const KEY = Buffer.from('9c935b48730a554d6bfd7c63c886a92bd390198eb8128afbf4de162b8b95f638', 'hex')
const IV_LENGTH = 16
const BASE64URL = /^[A-Za-z0-9_-]*$/

function crypt (data: Buffer, iv: Buffer): Buffer {
  const cipher = createCipheriv('aes-256-ctr', KEY, iv)
  return Buffer.concat([cipher.update(data), cipher.final()])
}

export function obscure (plain: string): string {
  const iv = randomBytes(IV_LENGTH)
  return Buffer.concat([iv, crypt(Buffer.from(plain, 'utf8'), iv)]).toString('base64url')
}

/**
 * Reverses obscure(). Throws (without echoing the input) when the value is not obscured text:
 * not strict unpadded base64url, shorter than the IV, or not revealing to valid UTF-8 (what a
 * plaintext password that happens to look like base64 reveals to).
 */
export function reveal (obscured: string): string {
  if (!BASE64URL.test(obscured) || obscured.length % 4 === 1) throw new Error('not an obscured value (base64url expected)')
  const raw = Buffer.from(obscured, 'base64url')
  if (raw.length < IV_LENGTH) throw new Error('not an obscured value (too short)')
  const plain = crypt(raw.subarray(IV_LENGTH), raw.subarray(0, IV_LENGTH))
  try {
    return new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(plain)
  } catch {
    throw new Error('not an obscured value (does not reveal to text)')
  }
}
