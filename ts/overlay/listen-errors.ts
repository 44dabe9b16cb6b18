// Turns libp2p's failure to listen (one error for every cause, the cause only in its message) into
// a StartFailedError that names the config field to change: the port in use, or the address.

import { StartFailedError } from '../shared/errors.js'

/** A cause found in libp2p's message, the field it concerns and what to change. */
const CAUSES: Array<{ pattern: RegExp; code: string; field: 'basePort' | 'ip'; advice: string }> = [
  {
    pattern: /EADDRINUSE/,
    code: 'ERR_DLHT_ADDRESS_IN_USE',
    field: 'basePort',
    advice: 'is already in use on this host: choose a free port, or 0 for any free port',
  },
  {
    pattern: /ENOTFOUND|EAI_AGAIN|EAI_NONAME/,
    code: 'ERR_DLHT_ADDRESS_UNAVAILABLE',
    field: 'ip',
    advice: 'does not resolve to an address: give an IP address of this host or a name that resolves',
  },
  {
    pattern: /EADDRNOTAVAIL|EAFNOSUPPORT/,
    code: 'ERR_DLHT_ADDRESS_UNAVAILABLE',
    field: 'ip',
    advice: 'is not an address of this host: give one of its addresses, 127.0.0.1 or 0.0.0.0',
  },
  {
    pattern: /EACCES|EPERM/,
    code: 'ERR_DLHT_ADDRESS_IN_USE',
    field: 'basePort',
    advice: 'may not be used by this process (ports below 1024 need privileges): choose another',
  },
]

/**
 * The typed error of a failure to listen on `ip:port`; `err` itself when its cause is unknown.
 */
export function listenFailure(err: unknown, ip: string, port: number): unknown {
  const message = (err as Error)?.message ?? ''
  const cause = CAUSES.find(({ pattern }) => pattern.test(message))
  if (cause === undefined) return err
  const value = cause.field === 'ip' ? JSON.stringify(ip) : String(port)
  return new StartFailedError(
    cause.code,
    cause.field,
    `${value} ${cause.advice} (listening on ${ip}:${port})`,
    {
      cause: err,
    },
  )
}
