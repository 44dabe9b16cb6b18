// What dlht needs of the machine it is imported on: a recent enough Node.js, and a prebuilt addon
// for the platform (or one built from source). Both failures become typed errors that say what to do.

import { CodedError, DlhtError } from './errors.js'

/** The oldest Node.js dlht runs on: libp2p 3 needs `Promise.withResolvers` and other Node 22 APIs. */
export const MIN_NODE_VERSION = '22.13.0'

/** Platforms whose addon is published as `dlht-<platform>` (what `npm install dlht` fetches). */
export const PREBUILT_PLATFORMS: readonly string[] = ['linux-x64-gnu', 'linux-arm64-gnu', 'linux-x64-musl']

/** Node.js is older than `MIN_NODE_VERSION`. */
export class UnsupportedNodeError extends DlhtError {
  constructor(message: string) {
    super('ERR_DLHT_UNSUPPORTED_NODE', message)
  }
}

/** The native addon could not be loaded: no prebuilt binary for this platform, or a broken install. */
export class NativeBindingError extends CodedError {
  static override readonly code = 'ERR_DLHT_NATIVE_BINDING'
}

function versionParts(version: string): number[] {
  return version
    .replace(/^v/, '')
    .split('.')
    .map((part) => Number.parseInt(part, 10) || 0)
}

/** True when `version` ("22.13.0" or "v22.13.0") is at least `MIN_NODE_VERSION`. */
export function isSupportedNode(version: string): boolean {
  const have = versionParts(version)
  const need = versionParts(MIN_NODE_VERSION)
  for (let i = 0; i < need.length; i++) {
    if ((have[i] ?? 0) !== need[i]) return (have[i] ?? 0) > need[i]
  }
  return true
}

/** @throws UnsupportedNodeError naming the required version when `version` is older */
export function assertSupportedNode(version: string = process.versions.node): void {
  if (isSupportedNode(version)) return
  throw new UnsupportedNodeError(
    `dlht needs Node.js >= ${MIN_NODE_VERSION}, this is Node.js ${version}: ` +
      'install Node.js 22.13 or later (e.g. `nvm install 22`)',
  )
}

/** This machine as napi-rs names platforms: "linux-x64-gnu", "linux-arm64-musl", "darwin-arm64", ... */
export function currentPlatform(): string {
  const { platform, arch } = process
  if (platform !== 'linux') return `${platform}-${arch}`
  const report = process.report?.getReport() as { header?: { glibcVersionRuntime?: string } } | undefined
  return `${platform}-${arch}-${report?.header?.glibcVersionRuntime === undefined ? 'musl' : 'gnu'}`
}

/** The error to throw when the addon's loader failed with `cause`. */
export function nativeBindingError(cause: unknown): NativeBindingError {
  const platform = currentPlatform()
  const advice = PREBUILT_PLATFORMS.includes(platform)
    ? `reinstall so that npm installs the optional dependency dlht-${platform} ` +
      '(it is skipped by `--omit=optional` and `--no-optional`)'
    : `dlht has prebuilt binaries for ${PREBUILT_PLATFORMS.join(', ')} only: build it from source ` +
      '(install Rust from https://rustup.rs, clone the repository, `npm install`, then `npm pack`)'
  return new NativeBindingError(
    `dlht could not load its native addon for ${platform}: ${advice}. ` +
      `Loader error: ${(cause as Error)?.message ?? String(cause)}`,
    { cause },
  )
}
