// Cross-compiles the addon for every napi target in package.json other than this machine's, with
// cargo-zigbuild (`napi build -x`), into native/dlht.<platform>.node, then stages every binary into
// its platform package. Needs `pip install ziglang cargo-zigbuild` and `rustup target add <triple>`.

import { execFileSync } from 'node:child_process'
import { copyFileSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

const root = join(import.meta.dirname, '..')
const { napi } = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'))
const host = execFileSync('rustc', ['-vV'], { encoding: 'utf8' }).match(/^host: (.+)$/m)?.[1]

try {
  execFileSync('cargo', ['zigbuild', '--help'], { stdio: 'ignore' })
} catch {
  console.error('build-cross: cargo-zigbuild is missing: `pip install ziglang cargo-zigbuild`')
  process.exit(1)
}

const napiCli = join(root, 'node_modules', '.bin', 'napi')
for (const target of napi.targets.filter((triple) => triple !== host)) {
  const out = mkdtempSync(join(tmpdir(), 'dlht-cross-'))
  try {
    execFileSync(
      napiCli,
      [
        'build',
        '--platform',
        '--release',
        '--cross-compile',
        '--target',
        target,
        '--manifest-path',
        'crates/dlht-napi/Cargo.toml',
        '--package-json-path',
        'package.json',
        '--output-dir',
        out,
        '--no-js',
      ],
      { cwd: root, stdio: 'inherit' },
    )
    const binary = readdirSync(out).find((name) => /^dlht\..+\.node$/.test(name))
    if (binary === undefined) throw new Error(`napi build for ${target} wrote no dlht.<platform>.node`)
    copyFileSync(join(out, binary), join(root, 'native', binary))
    console.log(`build-cross: ${target} -> native/${binary}`)
  } finally {
    rmSync(out, { recursive: true, force: true })
  }
}
execFileSync(process.execPath, [join(root, 'scripts', 'stage-binaries.mjs')], { cwd: root, stdio: 'inherit' })
