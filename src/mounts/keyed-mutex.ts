// One promise chain per key: callers for the same key run one at a time, in arrival order;
// other keys never wait. The map holds only keys with a holder or waiters.

export class KeyedMutex {
  readonly #tails = new Map<string, Promise<void>>()

  async run<T> (key: string, fn: () => Promise<T>): Promise<T> {
    const previous = this.#tails.get(key) ?? Promise.resolve()
    let release!: () => void
    const mine = new Promise<void>(resolve => { release = resolve })
    const tail = previous.then(() => mine)
    this.#tails.set(key, tail)
    await previous
    try {
      return await fn()
    } finally {
      release()
      // The last one out removes the entry, so released keys do not accumulate.
      if (this.#tails.get(key) === tail) this.#tails.delete(key)
    }
  }

  /** Number of keys currently held or awaited. */
  get size (): number {
    return this.#tails.size
  }
}
