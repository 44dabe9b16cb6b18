// A peer's identity (its libp2p private key, hence its PeerId): new, from bytes, or kept in a file,
// so that a node restarted with the same key file comes back as the same peer.

import { generateKeyPairSync } from 'node:crypto'
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { dirname } from 'node:path'
import { privateKeyFromProtobuf, privateKeyFromRaw, privateKeyToProtobuf } from '@libp2p/crypto/keys'
import type { PrivateKey } from '@libp2p/interface'
import { InvalidArgumentError } from '../errors.js'

/** A new Ed25519 identity, made synchronously so that the peer id is known before start. */
export function generatePrivateKey(): PrivateKey {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519')
  const seed = privateKey.export({ format: 'der', type: 'pkcs8' }).subarray(-32)
  const pub = publicKey.export({ format: 'der', type: 'spki' }).subarray(-32)
  return privateKeyFromRaw(Buffer.concat([seed, pub]))
}

/**
 * Reads a private key in libp2p's protobuf encoding (what `privateKeyToProtobuf` and
 * `exportPrivateKey` write, and go-libp2p/IPFS keep in their key files).
 * @throws InvalidArgumentError when the bytes are not such a key
 */
export function readPrivateKey(bytes: Uint8Array): PrivateKey {
  try {
    return privateKeyFromProtobuf(bytes)
  } catch (err) {
    throw new InvalidArgumentError(
      `is not a libp2p private key in protobuf encoding: ${(err as Error).message}`,
      'ERR_DLHT_INVALID_PRIVATE_KEY',
      { cause: err },
    )
  }
}

/** A private key's bytes in libp2p's protobuf encoding, for `LeadConfig.privateKey` or a key file. */
export function exportPrivateKey(key: PrivateKey): Uint8Array {
  return privateKeyToProtobuf(key)
}

/**
 * The identity kept in `path`: read when the file exists, else a new Ed25519 key written there
 * (readable by its owner only) for the next start.
 * @throws InvalidArgumentError when the file holds no private key, or cannot be read or written
 */
export function privateKeyFromFile(path: string): PrivateKey {
  let bytes: Uint8Array | undefined
  try {
    bytes = readFileSync(path)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
      throw new InvalidArgumentError(`cannot read the key file ${path}: ${(err as Error).message}`)
    }
  }
  if (bytes !== undefined) return readPrivateKey(bytes)
  const key = generatePrivateKey()
  try {
    mkdirSync(dirname(path), { recursive: true })
    writeFileSync(path, exportPrivateKey(key), { mode: 0o600, flag: 'wx' })
  } catch (err) {
    throw new InvalidArgumentError(`cannot write the key file ${path}: ${(err as Error).message}`)
  }
  return key
}

/** The identity `config` names (`privateKey`, else `peerKeyFile`), or a new one. */
export function configuredPrivateKey(config: {
  privateKey: Uint8Array | null
  peerKeyFile: string | null
}): PrivateKey {
  if (config.privateKey !== null) return readPrivateKey(config.privateKey)
  if (config.peerKeyFile !== null) return privateKeyFromFile(config.peerKeyFile)
  return generatePrivateKey()
}
