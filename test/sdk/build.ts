import type { Test } from 'tap'
import { execFile } from 'node:child_process'
import { mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'

// Compiles the SDK and the CLI with the project's build settings into a private directory,
// so tests run the JavaScript a user gets without racing other tests over dist/.

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..')
const run = promisify(execFile)

export interface Built {
  dir: string
  /** <dir>/dist/src/sdk/index.js */
  sdk: string
  /** <dir>/dist/src/cli/main.js */
  cli: string
}

export async function buildSdkAndCli (t: Test): Promise<Built> {
  const dir = await mkdtemp(path.join(tmpdir(), 'sm-build-'))
  t.teardown(async () => { await rm(dir, { recursive: true, force: true }) })
  const tsconfig = {
    extends: path.join(ROOT, 'tsconfig.build.json'),
    compilerOptions: { outDir: path.join(dir, 'dist'), rootDir: ROOT, sourceMap: false, noCheck: true },
    files: [path.join(ROOT, 'src/sdk/index.ts'), path.join(ROOT, 'src/cli/main.ts')],
    include: []
  }
  await writeFile(path.join(dir, 'tsconfig.json'), JSON.stringify(tsconfig))
  const pkg = JSON.parse(await readFile(path.join(ROOT, 'package.json'), 'utf8')) as { version: string }
  // The package's own type and version, and its dependencies for the emitted declarations.
  await writeFile(path.join(dir, 'package.json'), JSON.stringify({ name: 'sandbox-mounts', version: pkg.version, type: 'module' }))
  await symlink(path.join(ROOT, 'node_modules'), path.join(dir, 'node_modules'))
  await run(process.execPath, [path.join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', path.join(dir, 'tsconfig.json')], { cwd: dir })
  return { dir, sdk: path.join(dir, 'dist/src/sdk/index.js'), cli: path.join(dir, 'dist/src/cli/main.js') }
}
