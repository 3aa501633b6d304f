import { chmod, mkdir, readdir, readFile, rm } from 'node:fs/promises'
import path from 'node:path'
import { writePrivateFile } from './private-file.ts'

// What the agent keeps per mount. The record (no secrets) lives in the state dir so a restarted
// agent still knows its mounts; the rclone config and the values to scrub live on the config
// dir (a tmpfs in the VM), both root-only and 0600 from their first byte.

export interface MountRecord {
  mountId: string
  path: string
  readWrite: boolean
  configHash: string
  section: string
  root: string
  mountOptions: string[]
  /** Directories the agent created for the mount point, outermost first; removed with it. */
  createdDirs: string[]
  /** rclone's name of the backend (e.g. `:webdav{AbCd1}`): names its VFS cache directory. */
  fsName: string
  /** rclone's name of the mounted VFS (`<fsName>:<root>`), for vfs/stats. */
  vfsName: string
  createdAt: string
  updatedAt: string
}

export interface MountSecrets {
  config: string
  redact: string[]
}

const ID = /^[A-Za-z0-9_-]{1,64}$/

export class MountStore {
  readonly #recordsDir: string
  readonly #configDir: string

  constructor (opts: { stateDir: string, configDir: string }) {
    this.#recordsDir = path.join(opts.stateDir, 'mounts')
    this.#configDir = opts.configDir
  }

  configFile (mountId: string): string {
    return path.join(this.#configDir, `${checkId(mountId)}.conf`)
  }

  #redactFile (mountId: string): string {
    return path.join(this.#configDir, `${checkId(mountId)}.redact.json`)
  }

  #recordFile (mountId: string): string {
    return path.join(this.#recordsDir, `${checkId(mountId)}.json`)
  }

  async init (): Promise<void> {
    for (const dir of [path.dirname(this.#recordsDir), this.#recordsDir, this.#configDir]) {
      await mkdir(dir, { recursive: true, mode: 0o700 })
      await chmod(dir, 0o700)
    }
  }

  async loadRecords (): Promise<MountRecord[]> {
    const out: MountRecord[] = []
    let names: string[]
    try {
      names = await readdir(this.#recordsDir)
    } catch {
      return out
    }
    for (const name of names) {
      if (!name.endsWith('.json') || !ID.test(name.slice(0, -5))) continue
      try {
        const rec = JSON.parse(await readFile(path.join(this.#recordsDir, name), 'utf8')) as MountRecord
        if (rec.mountId === name.slice(0, -5) && typeof rec.path === 'string') out.push(rec)
      } catch {}
    }
    return out
  }

  async writeRecord (rec: MountRecord): Promise<void> {
    await writePrivateFile(this.#recordFile(rec.mountId), JSON.stringify(rec, null, 2) + '\n')
  }

  async deleteRecord (mountId: string): Promise<void> {
    await rm(this.#recordFile(mountId), { force: true })
  }

  async writeSecrets (mountId: string, secrets: MountSecrets): Promise<void> {
    await writePrivateFile(this.configFile(mountId), secrets.config)
    await writePrivateFile(this.#redactFile(mountId), JSON.stringify(secrets.redact))
  }

  async readSecrets (mountId: string): Promise<MountSecrets | undefined> {
    try {
      const config = await readFile(this.configFile(mountId), 'utf8')
      const redact = JSON.parse(await readFile(this.#redactFile(mountId), 'utf8').catch(() => '[]')) as unknown
      return { config, redact: Array.isArray(redact) ? redact.filter((v): v is string => typeof v === 'string') : [] }
    } catch {
      return undefined
    }
  }

  async deleteSecrets (mountId: string): Promise<void> {
    await rm(this.configFile(mountId), { force: true })
    await rm(this.#redactFile(mountId), { force: true })
  }
}

function checkId (mountId: string): string {
  if (!ID.test(mountId)) throw new Error('invalid mount id')
  return mountId
}
