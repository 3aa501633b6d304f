import { AsyncLocalStorage } from 'node:async_hooks'

// One promise chain per key: callers for the same key run one at a time, in arrival order;
// other keys never wait. The map holds only keys with a holder or waiters. Re-entrant: a
// call made from inside a holder's fn for the same key runs at once instead of deadlocking.

export class KeyedMutex {
  readonly #tails = new Map<string, Promise<void>>()
  readonly #held = new AsyncLocalStorage<ReadonlySet<string>>()

  async run<T> (key: string, fn: () => Promise<T>): Promise<T> {
    const held = this.#held.getStore()
    if (held?.has(key) === true) return await fn()
    const previous = this.#tails.get(key) ?? Promise.resolve()
    let release!: () => void
    const mine = new Promise<void>(resolve => { release = resolve })
    const tail = previous.then(() => mine)
    this.#tails.set(key, tail)
    await previous
    try {
      return await this.#held.run(new Set([...(held ?? []), key]), fn)
    } finally {
      release()
      // The last one out removes the entry, so released keys do not accumulate.
      if (this.#tails.get(key) === tail) this.#tails.delete(key)
    }
  }

  /** True when the calling async context already holds key. */
  holds (key: string): boolean {
    return this.#held.getStore()?.has(key) === true
  }

  /** Number of keys currently held or awaited. */
  get size (): number {
    return this.#tails.size
  }
}
