// The default value store: values stay in memory and vanish with the process (the LocalStore packs
// them in its ValueArena; this store keeps them on entry objects when used alone). Metadata lives in a Map.

import type { PlacedEntry, RestoredEntry, StoredEntry, Tombstone, ValueStore } from './value-store.js'

/** Keeps every value in memory. */
export class MemoryValueStore implements ValueStore {
  readonly kind = 'memory'
  readonly volatile = true
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

  async writeTombstones(_tombstones: readonly Tombstone[]): Promise<void> {}

  async remove(_entries: readonly PlacedEntry[]): Promise<void> {}

  readMeta(name: string): Uint8Array | undefined {
    return this.#meta.get(name)
  }

  async writeMeta(name: string, value: Uint8Array): Promise<void> {
    this.#meta.set(name, value)
  }
}
