// The `dlht` command as an operator runs it: `dlht start` processes forming a ring on 127.0.0.1, and the
// client commands as separate processes against them, checked by their output and exit codes.

import { type ChildProcess, execFile, spawn } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import test, { type ExecutionContext } from 'ava'

const execFileAsync = promisify(execFile)
const DLHT = ['--import', 'tsx', new URL('../ts/cli/dlht.ts', import.meta.url).pathname]

interface Result {
  code: number
  stdout: string
  stderr: string
}

/** Runs `dlht ...args` to its end. */
async function dlht(...args: string[]): Promise<Result> {
  try {
    const { stdout, stderr } = await execFileAsync(process.execPath, [...DLHT, ...args], { timeout: 60_000 })
    return { code: 0, stdout, stderr }
  } catch (err) {
    const failed = err as { code: unknown; stdout: string; stderr: string }
    if (typeof failed.code !== 'number') throw err
    return { code: failed.code, stdout: failed.stdout, stderr: failed.stderr }
  }
}

interface Started {
  process: ChildProcess
  /** "127.0.0.1:port" of the node. */
  peer: string
  output: () => string
  /** Sends `signal` and resolves with the exit code and everything printed. */
  stop(signal?: NodeJS.Signals): Promise<{ code: number | null; stdout: string }>
}

/** Spawns `dlht start --host 127.0.0.1 --port 0 ...args` and waits for its first "listening" line. */
function start(t: ExecutionContext, ...args: string[]): Promise<Started> {
  const child = spawn(process.execPath, [...DLHT, 'start', '--host', '127.0.0.1', '--port', '0', ...args])
  let stdout = ''
  let stderr = ''
  child.stderr.on('data', (chunk) => {
    stderr += chunk
  })
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve))
  t.teardown(() => {
    child.kill('SIGKILL')
  })
  const stop = async (signal: NodeJS.Signals = 'SIGTERM') => {
    child.kill(signal)
    return { code: await exited, stdout }
  }
  return new Promise((resolve, reject) => {
    child.stdout.on('data', (chunk) => {
      stdout += chunk
      const port = /^listening \/ip4\/127\.0\.0\.1\/tcp\/(\d+)\//m.exec(stdout)?.[1]
      if (port !== undefined && /^(started a new ring|joined the ring)/m.test(stdout)) {
        resolve({ process: child, peer: `127.0.0.1:${port}`, output: () => stdout, stop })
      }
    })
    exited.then((code) => reject(new Error(`dlht start exited with ${code}: ${stderr}`)))
  })
}

test('every command has --help, and bad usage exits 2', async (t) => {
  const top = await dlht('--help')
  t.is(top.code, 0)
  const names = [...top.stdout.matchAll(/^ {2}(\w+) /gm)].map((match) => match[1])
  t.deepEqual(names, ['start', 'put', 'get', 'delete', 'range', 'stats', 'retrain', 'keygen'])
  for (const name of names) {
    const help = await dlht(name, '--help')
    t.is(help.code, 0, name)
    t.true(help.stdout.startsWith(`Usage: dlht ${name}`), name)
  }
  t.is((await dlht()).code, 2)
  const unknown = await dlht('frobnicate')
  t.is(unknown.code, 2)
  t.regex(unknown.stderr, /unknown command "frobnicate"/)
  const noPeer = await dlht('get', 'k')
  t.is(noPeer.code, 2)
  t.regex(noPeer.stderr, /--peer <host:port> is required/)
  const badOption = await dlht('get', 'k', '--peer', '127.0.0.1:1', '--colour')
  t.is(badOption.code, 2)
  t.regex(badOption.stderr, /Unknown option '--colour'/)
  const badPort = await dlht('start', '--port', '70000')
  t.is(badPort.code, 2)
  t.regex(badPort.stderr, /--port must be an integer in \[0, 65535\]/)
})

test('dlht start --config refuses a bad configuration with exit code 2', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'dlht-cli-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const config = join(dir, 'config.json')
  writeFileSync(config, JSON.stringify({ numVirtualNodes: 2, branchingFactor: 'many' }))
  const refused = await dlht('start', '--port', '0', '--config', config)
  t.is(refused.code, 2)
  t.regex(refused.stderr, /config\.branchingFactor/)
  writeFileSync(config, '{ not json')
  const garbled = await dlht('start', '--port', '0', '--config', config)
  t.is(garbled.code, 2)
  t.regex(garbled.stderr, /--config .*config\.json/)
})

test('a client command against no node exits 3 with the error code', async (t) => {
  const { port } = await new Promise<{ port: number }>((resolve) => {
    // A port nothing listens on: bind one, note it, close it.
    import('node:net').then(({ createServer }) => {
      const server = createServer().listen(0, '127.0.0.1', () => {
        const address = server.address() as { port: number }
        server.close(() => resolve(address))
      })
    })
  })
  const result = await dlht('get', 'k', '--peer', `127.0.0.1:${port}`, '--timeout', '5000')
  t.is(result.code, 3)
  t.regex(result.stderr, /^dlht get: ERR_DLHT_PEER_UNAVAILABLE: /)
})

test.serial(
  'dlht start forms a ring; put, get, range, delete, stats and retrain from other processes',
  async (t) => {
    const first = await start(t, '--vnodes', '2', '--metrics-port', '0')
    t.regex(first.output(), /^peer 12D3Koo/m)
    t.regex(first.output(), /^started a new ring$/m)
    const second = await start(t, '--bootstrap', first.peer, '--vnodes', '2')
    t.regex(second.output(), new RegExp(`^joined the ring of ${first.peer}$`, 'm'))

    const put = await dlht(
      'put',
      'city:paris',
      '{"name":"Paris","population":2102650}',
      '--peer',
      second.peer,
    )
    t.deepEqual(put, { code: 0, stdout: '', stderr: '' })
    for (const name of ['berlin', 'lima', 'oslo', 'rome']) {
      t.is((await dlht('put', `city:${name}`, JSON.stringify({ name }), '-p', first.peer)).code, 0)
    }
    const got = await dlht('get', 'city:paris', '--peer', first.peer)
    t.is(got.code, 0)
    t.deepEqual(JSON.parse(got.stdout), { name: 'Paris', population: 2102650 })

    const missing = await dlht('get', 'city:atlantis', '--peer', first.peer)
    t.is(missing.code, 1)
    t.is(missing.stdout, '')
    t.is(missing.stderr, 'dlht: not found: city:atlantis\n')

    const range = await dlht('range', 'city:b', 'city:p', '--peer', second.peer)
    t.is(range.code, 0)
    const lines = range.stdout
      .trimEnd()
      .split('\n')
      .map((line) => JSON.parse(line))
    t.deepEqual(
      lines.map((entry) => entry.key),
      ['city:berlin', 'city:lima', 'city:oslo'],
    )
    const limited = await dlht('range', 'city:a', 'city:z', '--limit', '2', '--peer', second.peer)
    t.is(limited.stdout.trimEnd().split('\n').length, 2)
    t.regex(limited.stderr, /more than 2 entries/)

    t.is((await dlht('delete', 'city:rome', '--peer', first.peer)).code, 0)
    t.is((await dlht('delete', 'city:rome', '--peer', first.peer)).code, 1)

    const metricsUrl = /^metrics (http:\/\/127\.0\.0\.1:\d+\/metrics)$/m.exec(first.output())?.[1]
    const metrics = await (await fetch(metricsUrl as string)).text()
    t.regex(metrics, /^# HELP dlht_keys /m)
    t.regex(metrics, /^dlht_data_operations_total\{operation="put",kind="(local|remote)"\} \d+$/m)

    // SIGTERM: the first node leaves gracefully, handing its entries to the second.
    const stopped = await first.stop('SIGTERM')
    t.is(stopped.code, 0)
    t.regex(stopped.stdout, /SIGTERM: leaving the ring\nstopped\n$/)
    for (const name of ['paris', 'berlin', 'lima', 'oslo']) {
      const after = await dlht('get', `city:${name}`, '--peer', second.peer)
      t.is(after.code, 0, name)
    }
    const retrain = await dlht('retrain', '--force', '--peer', second.peer)
    t.is(retrain.code, 0)
    const result = JSON.parse(retrain.stdout)
    t.true(result.retrained)
    t.is(result.contributors, 1)

    const stats = await dlht('stats', '--peer', second.peer)
    t.is(stats.code, 0)
    const { keys, modelVersion, vnodes } = JSON.parse(stats.stdout)
    t.is(keys, 4)
    t.is(modelVersion, result.modelVersion)
    t.is(vnodes.length, 2)

    const last = await second.stop('SIGINT')
    t.is(last.code, 0)
    t.regex(last.stdout, /SIGINT: leaving the ring\nstopped\n$/)
  },
)

test.serial('dlht start --config --data-dir: a restarted node finds its entries and model', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'dlht-cli-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const config = join(dir, 'config.json')
  writeFileSync(config, JSON.stringify({ numVirtualNodes: 5, hashSpaceSize: String(2n ** 62n) }))
  const args = ['--config', config, '--data-dir', join(dir, 'data'), '--vnodes', '2']
  const before = await start(t, ...args)
  t.is((await dlht('put', 'lamp', '{"watts":40}', '--peer', before.peer)).code, 0)
  t.is((await dlht('retrain', '--force', '--peer', before.peer)).code, 0)
  const stats = JSON.parse((await dlht('stats', '--peer', before.peer)).stdout)
  t.is(stats.vnodes.length, 2) // --vnodes wins over the file's numVirtualNodes
  t.is(stats.storage, 'lmdb')
  t.is((await before.stop('SIGTERM')).code, 0)

  const after = await start(t, ...args)
  const got = await dlht('get', 'lamp', '--peer', after.peer)
  t.deepEqual(JSON.parse(got.stdout), { watts: 40 })
  t.is(JSON.parse((await dlht('stats', '--peer', after.peer)).stdout).modelVersion, stats.modelVersion)
  t.is((await after.stop('SIGINT')).code, 0)
})

test.serial(
  'a private ring from the command line: keygen, start --swarm-key-file --replication, clients with the key',
  async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'dlht-cli-'))
    t.teardown(() => rmSync(dir, { recursive: true, force: true }))
    const keyFile = join(dir, 'swarm.key')
    t.is((await dlht('keygen', '--out', keyFile)).code, 0)
    t.regex(readFileSync(keyFile, 'utf8'), /^\/key\/swarm\/psk\/1\.0\.0\/\n\/base16\/\n[0-9a-f]{64}\n$/)
    t.is(statSync(keyFile).mode & 0o777, 0o600, 'readable by its owner only')
    const again = await dlht('keygen', '--out', keyFile)
    t.is(again.code, 2, 'an existing key is not replaced')
    t.regex(again.stderr, /EEXIST/)
    t.regex((await dlht('keygen')).stdout, /^\/key\/swarm\/psk\/1\.0\.0\//)
    t.is((await dlht('start', '--replication', '17')).code, 2)
    const missingKey = await dlht('start', '--swarm-key-file', join(dir, 'nope'))
    t.is(missingKey.code, 2)
    t.regex(missingKey.stderr, /--swarm-key-file .*nope: ENOENT/)

    const ring = ['--swarm-key-file', keyFile, '--replication', '1', '--vnodes', '2']
    const first = await start(t, ...ring)
    const second = await start(t, ...ring, '--bootstrap', first.peer)
    const withKey = ['--swarm-key-file', keyFile]
    const cities = ['berlin', 'lima', 'oslo', 'paris']
    for (const name of cities) {
      t.is(
        (await dlht('put', `city:${name}`, JSON.stringify({ name }), '-p', second.peer, ...withKey)).code,
        0,
      )
    }
    const got = await dlht('get', 'city:oslo', '-p', first.peer, ...withKey)
    t.deepEqual(JSON.parse(got.stdout), { name: 'oslo' })
    const range = await dlht('range', 'city:a', 'city:z', '-p', first.peer, ...withKey)
    t.is(range.stdout.trimEnd().split('\n').length, cities.length)

    // One copy of each entry with --replication 1: the two peers' keys add up to the entries stored.
    const keysOf = async (peer: string) =>
      JSON.parse((await dlht('stats', '-p', peer, ...withKey)).stdout).keys as number
    t.is((await keysOf(first.peer)) + (await keysOf(second.peer)), cities.length)

    // Without the key, neither a client nor a node gets in, and both say why.
    const outsider = await dlht('get', 'city:oslo', '-p', first.peer, '--timeout', '5000')
    t.is(outsider.code, 3)
    t.regex(outsider.stderr, /^dlht get: ERR_DLHT_NOT_A_MEMBER: .*no swarm key and the ring is private/)
    const intruder = await dlht('start', '--host', '127.0.0.1', '--port', '0', '--bootstrap', first.peer)
    t.is(intruder.code, 3)
    t.regex(intruder.stderr, /ERR_DLHT_NOT_A_MEMBER/)

    t.is((await second.stop('SIGTERM')).code, 0)
    t.is((await first.stop('SIGTERM')).code, 0)
  },
)
