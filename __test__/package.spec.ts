// The package as a user gets it: `npm pack` of dlht and of its linux-x64-gnu platform package, installed
// from the tarballs into an empty project whose PATH has no Rust, then imported and used over libp2p.

import { execFile, execFileSync } from 'node:child_process'
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { promisify } from 'node:util'
import test from 'ava'
import { isSupportedNode, MIN_NODE_VERSION, PREBUILT_PLATFORMS, UnsupportedNodeError } from '../ts/index.js'
import { assertSupportedNode } from '../ts/platform.js'

const run = promisify(execFile)
const root = new URL('..', import.meta.url).pathname
/** Node 22 (the dev dependency) and the system's tools, but not ~/.cargo/bin. */
const PATH_WITHOUT_RUST = `${dirname(process.execPath)}:/usr/bin:/bin`

/** The packed tarball's file name, from `npm pack --json`. */
async function pack(dir: string, destination: string): Promise<string> {
  const { stdout } = await run('npm', ['pack', dir, '--json', '--pack-destination', destination], {
    cwd: root,
    timeout: 5 * 60_000,
    maxBuffer: 16 * 1024 * 1024,
  })
  // Lifecycle scripts (prepack) print before the JSON on stdout.
  const [{ filename }] = JSON.parse(stdout.slice(stdout.indexOf('\n[') + 1)) as Array<{ filename: string }>
  return join(destination, filename)
}

/** Node.js binaries on the PATH older than dlht supports (e.g. the system's Node 20). */
function oldNodes(): string[] {
  const found = execFileSync('which', ['-a', 'node'], { encoding: 'utf8' }).split('\n').filter(Boolean)
  return found.filter((node) => !isSupportedNode(execFileSync(node, ['--version'], { encoding: 'utf8' })))
}

const USER_SCRIPT = `
import { LeadNode } from 'dlht'
const node = new LeadNode({ ip: '127.0.0.1', basePort: 0 })
await node.start()
await node.put('city', { name: 'Paris', population: 2102650 })
console.log(JSON.stringify(await node.get('city')))
await node.stop()
`

interface PlatformPackage {
  name: string
  version: string
  main: string
  os: string[]
  cpu: string[]
  libc?: string[]
}

function readJson<T>(path: string): T {
  return JSON.parse(readFileSync(join(root, path), 'utf8')) as T
}

/** ELF e_machine of each npm cpu, and the C library a binary of each npm libc links. */
const ELF_MACHINE: Record<string, number> = { x64: 62, arm64: 183 }
const LIBC_NEEDED: Record<string, RegExp> = {
  glibc: /\[libc\.so\.6\]/,
  musl: /\[libc(\.musl-[\w-]+)?\.so(\.1)?\]/,
}

test('every napi target has a platform package, an optional dependency and a PREBUILT_PLATFORMS entry', (t) => {
  const main = readJson<{
    version: string
    napi: { targets: string[] }
    optionalDependencies: Record<string, string>
  }>('package.json')
  const platforms = readdirSync(join(root, 'npm')).sort()
  t.is(platforms.length, main.napi.targets.length)
  t.deepEqual([...PREBUILT_PLATFORMS].sort(), platforms)
  for (const platform of platforms) {
    const manifest = readJson<PlatformPackage>(`npm/${platform}/package.json`)
    t.is(manifest.name, `dlht-${platform}`)
    t.is(manifest.main, `dlht.${platform}.node`)
    t.is(
      main.optionalDependencies[manifest.name],
      main.version,
      `${manifest.name} at the main package's version`,
    )
    const [os, cpu, libc] = platform.split('-')
    t.deepEqual([manifest.os, manifest.cpu, manifest.libc], [[os], [cpu], [libc === 'gnu' ? 'glibc' : libc]])
  }
})

test('each staged binary is built for its package: ELF machine and C library', (t) => {
  let staged = 0
  for (const platform of readdirSync(join(root, 'npm'))) {
    const manifest = readJson<PlatformPackage>(`npm/${platform}/package.json`)
    const binary = join(root, 'npm', platform, manifest.main)
    // A target not built on this machine (`npm run build:cross`) has nothing staged.
    if (!existsSync(binary)) continue
    staged++
    const header = readFileSync(binary).subarray(0, 20)
    t.is(header.toString('latin1', 0, 4), '\x7fELF', platform)
    t.is(header.readUInt16LE(18), ELF_MACHINE[manifest.cpu[0]], `${platform}: ELF machine`)
    const dynamic = execFileSync('readelf', ['-d', binary], { encoding: 'utf8' })
    t.regex(dynamic, LIBC_NEEDED[manifest.libc?.[0] ?? ''], `${platform}: C library`)
  }
  t.log(`${staged} staged binaries checked`)
  t.true(staged >= 1, 'npm run build:native stages this machine’s binary')
})

test('assertSupportedNode names the version dlht needs', (t) => {
  t.true(isSupportedNode('22.13.0'))
  t.true(isSupportedNode('v24.1.0'))
  t.false(isSupportedNode('22.12.9'))
  const err = t.throws(() => assertSupportedNode('20.20.2'), { instanceOf: UnsupportedNodeError })
  t.is(err?.code, 'ERR_DLHT_UNSUPPORTED_NODE')
  t.true(err?.message.includes(`Node.js >= ${MIN_NODE_VERSION}, this is Node.js 20.20.2`))
})

test.serial('packed tarballs install into an empty project without Rust, import, put and get', async (t) => {
  const work = mkdtempSync(join(tmpdir(), 'dlht-pack-'))
  try {
    const main = await pack('.', work)
    const platform = await pack('./npm/linux-x64-gnu', work)
    const project = join(work, 'app')
    const env = { ...process.env, PATH: PATH_WITHOUT_RUST }
    t.throws(() => execFileSync('cargo', ['--version'], { env, stdio: 'ignore' }), undefined, 'cargo on PATH')
    execFileSync('mkdir', [project])
    writeFileSync(
      join(project, 'package.json'),
      JSON.stringify({ name: 'app', private: true, type: 'module' }),
    )
    writeFileSync(join(project, 'app.js'), USER_SCRIPT)
    await run('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', main, platform], {
      cwd: project,
      env,
      timeout: 5 * 60_000,
    })
    const { stdout } = await run(process.execPath, ['app.js'], { cwd: project, env, timeout: 60_000 })
    t.deepEqual(JSON.parse(stdout), { name: 'Paris', population: 2102650 })
    // Shipped source maps carry their sources, which are not shipped.
    const map = JSON.parse(
      readFileSync(join(project, 'node_modules', 'dlht', 'dist', 'index.js.map'), 'utf8'),
    )
    t.is(map.sourcesContent?.length, map.sources.length)
    t.true((map.sourcesContent as string[]).every((source) => source.length > 0))
    const help = await run(join(project, 'node_modules', '.bin', 'dlht'), ['--help'], { cwd: project, env })
    t.regex(help.stdout, /^Usage: dlht <command>/)

    // The main package alone: the loader's error names the platform and the missing package.
    rmSync(join(project, 'node_modules', 'dlht-linux-x64-gnu'), { recursive: true })
    const missing = await run(process.execPath, ['app.js'], { cwd: project, env }).catch((err) => err)
    t.regex(missing.stderr, /NativeBindingError: dlht could not load its native addon for linux-x64-gnu/)
    t.regex(missing.stderr, /optional dependency dlht-linux-x64-gnu/)

    // On an older Node.js the import itself says which version is needed.
    const old = oldNodes()
    t.log(`Node.js older than ${MIN_NODE_VERSION} on this machine: ${old.join(', ') || 'none'}`)
    for (const node of old) {
      const refused = await run(node, ['app.js'], { cwd: project, env }).catch((err) => err)
      t.regex(refused.stderr, new RegExp(`UnsupportedNodeError: dlht needs Node.js >= ${MIN_NODE_VERSION}`))
    }
  } finally {
    rmSync(work, { recursive: true, force: true })
  }
})
