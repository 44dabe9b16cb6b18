// The default value store: values stay on the entries in memory and vanish with the process.
// Writes complete at once; metadata lives in a Map.

import type { RestoredEntry, StoredEntry, ValueStore } from './value-store.js'

/** Keeps every value in memory. */
export class MemoryValueStore implements ValueStore {
  readonly kind = 'memory'
  readonly #meta = new Map<string, Uint8Array>()

  async open(): Promise<void> {}

  async close(): Promise<void> {}

  restore(): RestoredEntry[] {
    return []
  }

  read(entry: StoredEntry): Uint8Array | undefined {
    return entry.value
  }

  async write(updates: ReadonlyArray<readonly [StoredEntry, Uint8Array]>): Promise<void> {
    for (const [entry, value] of updates) entry.value = value
  }

  async remove(entries: readonly StoredEntry[]): Promise<void> {
    for (const entry of entries) entry.value = undefined
  }

  readMeta(name: string): Uint8Array | undefined {
    return this.#meta.get(name)
  }

  async writeMeta(name: string, value: Uint8Array): Promise<void> {
    this.#meta.set(name, value)
  }
}
