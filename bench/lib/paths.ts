import path from 'node:path'
import { fileURLToPath } from 'node:url'

// The bench runs compiled (dist/bench, `npm run bench`) or from source (the smoke test under
// tap). Child processes must run the same way: built JavaScript, or TypeScript through tsx.

const HERE = path.dirname(fileURLToPath(import.meta.url))
export const COMPILED = HERE.split(path.sep).includes('dist')
export const PACKAGE_ROOT = path.resolve(HERE, COMPILED ? '../../..' : '../..')

/** argv for `node` running a project module given by its source path, e.g. 'src/server.ts'. */
export function nodeArgs (sourcePath: string): string[] {
  if (COMPILED) return [path.join(PACKAGE_ROOT, 'dist', sourcePath.replace(/\.ts$/, '.js'))]
  return ['--import', 'tsx', path.join(PACKAGE_ROOT, sourcePath)]
}

/** Where results.json goes: always the source tree's bench/, so docs can quote it. */
export const RESULTS_FILE = path.join(PACKAGE_ROOT, 'bench', 'results.json')
