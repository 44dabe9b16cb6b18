// Application-style string keys with long shared prefixes, seeded: the shapes the learned key code
// is measured on (`user:%08d`, `tenant-xxx/orders/<ISO time>/<n>`, `https://<name>.example.org/items/<n>`).

import { englishWords, seededRandom } from './datasets.js'

/** `user:00012345`: ids drawn from 10^8. */
export function userKeys(n: number, seed = 11): string[] {
  const random = seededRandom(seed)
  return Array.from({ length: n }, () => `user:${String(Math.floor(random() * 1e8)).padStart(8, '0')}`)
}

/** `tenant-3fa/orders/2026-03-14T10:11:12.345Z/17`: 64 tenants, times over a year, 100 orders a time. */
export function orderKeys(n: number, seed = 12): string[] {
  const random = seededRandom(seed)
  const tenants = Array.from({ length: 64 }, () =>
    Math.floor(random() * 4096)
      .toString(16)
      .padStart(3, '0'),
  )
  const start = Date.UTC(2026, 0, 1)
  const year = 365 * 86_400_000
  return Array.from({ length: n }, () => {
    const tenant = tenants[Math.floor(random() * tenants.length)]
    const time = new Date(start + Math.floor(random() * year)).toISOString()
    return `tenant-${tenant}/orders/${time}/${Math.floor(random() * 100)}`
  })
}

/** `https://brick.example.org/items/123456789`: 200 host names (English words), items below 10^9. */
export function urlKeys(n: number, seed = 13): string[] {
  const random = seededRandom(seed)
  const words = englishWords()
  const hosts = Array.from({ length: 200 }, () => words[Math.floor(random() * words.length)])
  return Array.from(
    { length: n },
    () =>
      `https://${hosts[Math.floor(random() * hosts.length)]}.example.org/items/${Math.floor(random() * 1e9)}`,
  )
}

/** The three shapes of 100,000 keys each, by name. */
export function keyShapes(n = 100_000): Array<[string, string[]]> {
  return [
    ['user:%08d', userKeys(n)],
    ['tenant-xxx/orders/<ISO time>/<n>', orderKeys(n)],
    ['https://<name>.example.org/items/<n>', urlKeys(n)],
  ]
}
