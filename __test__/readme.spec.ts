// The README's examples are real programs in examples/: each must appear in the README verbatim
// and run to completion against the built package, printing what the README says it prints.

import { execFile } from 'node:child_process'
import { readdirSync, readFileSync } from 'node:fs'
import { promisify } from 'node:util'
import test from 'ava'

const run = promisify(execFile)
const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8')
const examplesDir = new URL('../examples/', import.meta.url)

for (const file of readdirSync(examplesDir).filter((name) => name.endsWith('.ts'))) {
  // Serial: the examples listen on the seed's fixed ports.
  test.serial(`README example ${file} is shown verbatim and runs`, async (t) => {
    const source = readFileSync(new URL(file, examplesDir), 'utf8').trimEnd()
    t.true(readme.includes(`\`\`\`ts\n${source}\n\`\`\``), `README must show examples/${file} as is`)
    const { stdout } = await run(process.execPath, ['--import', 'tsx', new URL(file, examplesDir).pathname], {
      timeout: 60_000,
    })
    for (const line of stdout.split('\n').filter((text) => /\/\/ (true|false)$/.test(text))) t.log(line)
    const expected = [...source.matchAll(/console\.log\(.*\) \/\/ (true|false)$/gm)].map((match) => match[1])
    const printed = stdout.split('\n').filter((line) => line === 'true' || line === 'false')
    t.deepEqual(printed, expected)
  })
}
