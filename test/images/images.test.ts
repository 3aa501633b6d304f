import t, { type Test } from 'tap'
import { execFile } from 'node:child_process'
import { existsSync, readFileSync, statSync } from 'node:fs'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { promisify } from 'node:util'
import { buildSdkAndCli, ROOT } from '../sdk/build.ts'
import { copiesOf, ignoredBy, last, parseDockerfile, type Stage } from './dockerfile.ts'

// The images, checked without a docker daemon: everything they COPY exists in the build
// context or is made by their build stage, the control plane runs as a non-root user under
// tini, the sandbox image starts the agent the way the docs say, and package.json's bin and
// exports name files the build really produces.

const run = promisify(execFile)
const read = (file: string): string => readFileSync(path.join(ROOT, file), 'utf8')
const dockerignore = read('.dockerignore')
const pkg = JSON.parse(read('package.json')) as {
  bin: Record<string, string>
  exports: Record<string, { types: string, default: string } | string>
  main: string
  types: string
  files: string[]
  scripts: Record<string, string>
}
const tsconfig = JSON.parse(read('tsconfig.json')) as { compilerOptions: { rootDir: string, outDir: string } }
const buildConfig = JSON.parse(read('tsconfig.build.json')) as { compilerOptions: { declaration?: boolean }, include: string[] }

/** dist/src/x.js -> src/x.ts, by the tsconfig's rootDir/outDir mapping. */
function sourceOf (distFile: string): string {
  const outDir = path.normalize(tsconfig.compilerOptions.outDir)
  const rel = path.relative(outDir, path.normalize(distFile))
  if (rel.startsWith('..')) throw new Error(`${distFile} is not under ${outDir}`)
  return path.join(tsconfig.compilerOptions.rootDir, rel).replace(/\.d\.ts$|\.js$/, '.ts')
}

const includeRoots = buildConfig.include.map(p => p.split('/')[0])

function checkStages (t: Test, file: string, stages: Stage[]): void {
  const names = new Map(stages.map(s => [s.name, s]))
  for (const stage of stages) {
    const runs = stage.instructions.filter(i => i.op === 'RUN').map(i => i.args).join('\n')
    for (const copy of copiesOf(stage)) {
      for (const src of copy.sources) {
        const where = `${file}:${copy.line} COPY ${copy.from === undefined ? '' : `--from=${copy.from} `}${src}`
        if (copy.from === undefined) {
          t.ok(existsSync(path.join(ROOT, src)), `${where}: exists in the repository`)
          t.notOk(ignoredBy(dockerignore, src.replace(/\/$/, '')), `${where}: not excluded by .dockerignore`)
          continue
        }
        const from = names.get(copy.from)
        t.ok(from, `${where}: stage ${copy.from} is defined`)
        if (from === undefined) continue
        const fromCopies = copiesOf(from)
        if (fromCopies.length === 0 && from.instructions.every(i => i.op !== 'RUN')) {
          t.match(from.image, /^\$\{NODE_IMAGE\}$|^node:20-bookworm/, `${where}: taken from the official node image`)
          continue
        }
        const wd = fromCopies.at(-1)?.workdir ?? '/'
        const rel = path.posix.relative(wd, src)
        const fromRuns = from.instructions.filter(i => i.op === 'RUN').map(i => i.args).join('\n')
        if (rel === 'dist') {
          t.match(fromRuns, /npm run build/, `${where}: the stage builds`)
          t.equal(path.normalize(tsconfig.compilerOptions.outDir), 'dist', `${where}: the build writes dist/`)
          for (const root of includeRoots) {
            t.ok(fromCopies.some(c => c.from === undefined && c.sources.includes(root)), `${where}: the stage has ${root}/, which the build compiles`)
          }
        } else if (rel === 'node_modules') {
          t.match(fromRuns, /npm ci/, `${where}: the stage installs dependencies`)
          t.match(fromRuns, /npm prune --omit=dev/, `${where}: without dev dependencies`)
        } else {
          t.ok(fromCopies.some(c => c.from === undefined && c.sources.includes(rel)), `${where}: the stage has ${rel}`)
        }
      }
    }
    t.notMatch(runs, /AWS_CA_BUNDLE=/, `${file}: no CA bundle variable baked in`)
  }
}

t.test('control plane image: multi-stage, non-root, tini, production settings', async t => {
  const stages = parseDockerfile(read('Dockerfile'))
  t.ok(stages.length >= 2, 'multi-stage')
  checkStages(t, 'Dockerfile', stages)
  const runtime = stages.at(-1)!
  const user = last(runtime, 'USER')
  t.ok(user !== undefined && !/^(root|0)(:|$)/.test(user), `runs as ${user ?? 'root'}, not root`)
  t.match(last(runtime, 'ENTRYPOINT'), /tini/, 'tini is PID 1')
  t.match(runtime.instructions.filter(i => i.op === 'RUN').map(i => i.args).join('\n'), /install[^\n]*\btini\b/, 'tini is installed')
  const cmd = JSON.parse(last(runtime, 'CMD') ?? '[]') as string[]
  t.same(cmd.slice(0, 1), ['node'])
  t.ok(existsSync(path.join(ROOT, sourceOf(cmd[1]))), `${cmd[1]} is built from ${sourceOf(cmd[1])}`)
  t.equal(cmd[1], 'dist/src/server.js', 'the same entry point as npm start')
  t.match(pkg.scripts.start, /node dist\/src\/server\.js$/)
  const env = runtime.instructions.filter(i => i.op === 'ENV').map(i => i.args).join(' ')
  t.match(env, /(^|\s)LOCAL_SANDBOX=(\s|$)/, 'no local agent in production')
  t.match(env, /(^|\s)HOST=0\.0\.0\.0(\s|$)/)
  t.equal(last(runtime, 'EXPOSE'), '8080')
  for (const needed of ['templates', 'openapi.yaml']) {
    t.ok(copiesOf(runtime).some(c => c.sources.includes(needed)), `runtime ships ${needed}`)
  }
})

t.test('sandbox image: Debian bookworm, rclone, fuse3, the sandbox user, the agent as a service', async t => {
  const file = 'images/sandbox/Dockerfile'
  const stages = parseDockerfile(read(file))
  checkStages(t, file, stages)
  const final = stages.at(-1)!
  t.match(final.image, /^debian:bookworm/)
  const runs = final.instructions.filter(i => i.op === 'RUN').map(i => i.args).join('\n')
  for (const pkgName of ['rclone', 'fuse3', 'ca-certificates', 'systemd']) t.match(runs, new RegExp(`apt-get install[^\\n]*\\b${pkgName}\\b`), `installs ${pkgName}`)
  t.match(runs, /user_allow_other[^\n]*\/etc\/fuse\.conf/, 'user_allow_other in /etc/fuse.conf')
  t.match(runs, /useradd[^\n]*\bsandbox\b/, 'creates the sandbox user')

  const unitCopy = copiesOf(final).find(c => c.sources.some(s => s.endsWith('.service')))
  t.ok(unitCopy, 'the unit is copied into the image')
  const unitName = path.posix.basename(unitCopy!.dest)
  t.match(runs, new RegExp(`multi-user\\.target\\.wants/${unitName.replace('.', '\\.')}`), 'and enabled')
  const unit = read(unitCopy!.sources[0])
  const execStart = /^ExecStart=(.*)$/m.exec(unit)?.[1] ?? ''
  const workdir = /^WorkingDirectory=(.*)$/m.exec(unit)?.[1] ?? ''
  const [nodeBin, entry, ...extra] = execStart.split(/\s+/)
  t.equal(path.posix.basename(nodeBin), 'node')
  t.ok(copiesOf(final).some(c => c.dest === nodeBin), `${nodeBin} is in the image`)
  t.same(extra, [])
  const command = `node ${entry}`
  t.equal(command, 'node dist/src/agent/main.js', 'the unit runs the built agent')
  t.ok(copiesOf(final).some(c => c.sources.some(s => s.endsWith('/dist')) && c.workdir === workdir && c.dest === './dist'), `dist/ is under ${workdir}`)
  t.ok(existsSync(path.join(ROOT, sourceOf(entry))), `${entry} is built from ${sourceOf(entry)}`)
  t.ok(pkg.scripts.agent.endsWith(command), 'npm run agent runs the same command')
  t.ok(read('README.md').includes(command), 'the README names the command')
  t.match(unit, /^RuntimeDirectory=sandbox-mounts$/m, '/run/sandbox-mounts, a tmpfs, holds the rclone configs')
  t.match(unit, /^KillMode=process$/m, 'an agent restart leaves rclone and the mounts running')
  t.match(unit, /^EnvironmentFile=/m, 'the token comes from a file, not the command line')
  t.notMatch(execStart, /TOKEN/)
})

t.test('package.json bin and exports name files the build produces', async t => {
  t.equal(buildConfig.compilerOptions.declaration, true, 'the build emits declarations')
  const targets = [
    ...Object.values(pkg.bin),
    pkg.main,
    pkg.types,
    ...Object.entries(pkg.exports).filter(([k]) => k !== './package.json').flatMap(([, v]) => typeof v === 'string' ? [v] : [v.types, v.default])
  ]
  for (const target of targets) {
    const src = sourceOf(target)
    t.ok(existsSync(path.join(ROOT, src)), `${target} <- ${src}`)
    t.ok(includeRoots.includes(src.split('/')[0]), `${src} is compiled by tsconfig.build.json`)
    t.ok(pkg.files.some(f => target.replace(/^\.\//, '').startsWith(f.replace(/\/$/, ''))), `${target} is published`)
  }
  t.same(pkg.exports['.'], { types: './dist/src/sdk/index.d.ts', default: './dist/src/sdk/index.js' })
  t.same(pkg.bin, { 'sandbox-mounts': 'dist/src/cli/main.js' })

  // Compile with the project's build settings and look at what came out.
  const built = await buildSdkAndCli(t)
  for (const target of targets) {
    t.ok(statSync(path.join(built.dir, target)).isFile(), `the build produced ${target}`)
  }
  const cli = await readFile(path.join(built.dir, pkg.bin['sandbox-mounts']), 'utf8')
  t.equal(cli.split('\n')[0], '#!/usr/bin/env node', 'the bin has a node shebang')
  const version = await run(process.execPath, [path.join(built.dir, pkg.bin['sandbox-mounts']), '--version'])
  t.equal(version.stdout.trim(), JSON.parse(read('package.json')).version)

  // A TypeScript consumer gets the schema types through the emitted declarations.
  const dir = await mkdtemp(path.join(tmpdir(), 'sm-consumer-'))
  t.teardown(async () => { await rm(dir, { recursive: true, force: true }) })
  await writeFile(path.join(dir, 'package.json'), '{"type":"module"}')
  await writeFile(path.join(dir, 'use.ts'), [
    `import { createClient, SandboxMountsError, type Mount } from ${JSON.stringify(path.join(built.dir, pkg.types.replace(/\.d\.ts$/, '.js')))}`,
    'const client = createClient({ baseUrl: "http://127.0.0.1:1", apiKey: "k" })',
    'const mount: Mount = await client.sandbox("a").mounts.get("b")',
    'export const fine: string = mount.status',
    'export const code: string = new SandboxMountsError({ status: 400, code: "X", message: "m" }).code',
    'export const wrong: number = mount.path'
  ].join('\n'))
  await writeFile(path.join(dir, 'tsconfig.json'), JSON.stringify({
    compilerOptions: { module: 'NodeNext', moduleResolution: 'NodeNext', target: 'ES2023', strict: true, noEmit: true, skipLibCheck: true, types: [] },
    files: ['use.ts']
  }))
  const tsc = await run(process.execPath, [path.join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', dir]).then(() => ({ stdout: '' }), (err: { stdout: string }) => err)
  const errors = tsc.stdout.split('\n').filter(l => l.includes('error TS'))
  t.equal(errors.length, 1, tsc.stdout)
  t.match(errors[0], /use\.ts\(6,.*Type 'string' is not assignable to type 'number'/, 'Mount.path is typed as a string')
})
