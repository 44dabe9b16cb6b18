// Copies each addon napi built into native/ (dlht.<platform>.node) into its platform package npm/<platform>/,
// so that `npm pack ./npm/<platform>` ships the binary the main package's loader asks for.

import { copyFileSync, existsSync, readdirSync } from 'node:fs'
import { join } from 'node:path'

const root = join(import.meta.dirname, '..')
const binaries = readdirSync(join(root, 'native')).filter((name) => /^dlht\..+\.node$/.test(name))
if (binaries.length === 0) {
  console.error('stage-binaries: native/ holds no dlht.<platform>.node; run `npm run build:native` first')
  process.exit(1)
}
for (const binary of binaries) {
  const platform = binary.slice('dlht.'.length, -'.node'.length)
  const packageDir = join(root, 'npm', platform)
  if (!existsSync(packageDir)) {
    console.error(`stage-binaries: no platform package npm/${platform} for ${binary}`)
    process.exit(1)
  }
  copyFileSync(join(root, 'native', binary), join(packageDir, binary))
  console.log(`stage-binaries: native/${binary} -> npm/${platform}/${binary}`)
}
