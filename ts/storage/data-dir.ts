// Makes sure a node's data directory can be used before LMDB opens it, and turns what goes wrong
// (a file in the way, no permission, a read-only disk) into a StartFailedError naming dataDir.

import { mkdirSync, statSync } from 'node:fs'
import { StartFailedError } from '../shared/errors.js'

const CODE = 'ERR_DLHT_DATA_DIR_UNUSABLE'

/** What to change, by the errno of the failure. */
const ADVICE: Record<string, string> = {
  ENOTDIR: 'a part of the path is a file: choose a path whose parents are directories',
  EEXIST: 'a part of the path is a file: choose a path whose parents are directories',
  EACCES: 'this process may not write there: choose a directory it can write to',
  EPERM: 'this process may not write there: choose a directory it can write to',
  EROFS: 'the file system is read-only: choose a directory on a writable one',
  ENOSPC: 'the disk is full: free space or choose another disk',
}

/** A StartFailedError for `path`, saying what to change when the errno tells. */
export function dataDirFailure(path: string, err: unknown): StartFailedError {
  const errno = (err as { code?: unknown })?.code
  const advice = (typeof errno === 'string' && ADVICE[errno]) || 'choose a writable directory'
  return new StartFailedError(
    CODE,
    'dataDir',
    `${JSON.stringify(path)} cannot be used (${(err as Error)?.message ?? String(err)}): ${advice}`,
    { cause: err },
  )
}

/**
 * Creates `path` (and its parents) when missing.
 * @throws StartFailedError when it is a file or cannot be created
 */
export function prepareDataDir(path: string): void {
  let isDirectory: boolean | undefined
  try {
    isDirectory = statSync(path, { throwIfNoEntry: false })?.isDirectory()
  } catch (err) {
    throw dataDirFailure(path, err)
  }
  if (isDirectory === false) {
    throw new StartFailedError(
      CODE,
      'dataDir',
      `${JSON.stringify(path)} is a file, not a directory: give the path of a directory (created when missing)`,
    )
  }
  if (isDirectory) return
  try {
    mkdirSync(path, { recursive: true })
  } catch (err) {
    throw dataDirFailure(path, err)
  }
}
