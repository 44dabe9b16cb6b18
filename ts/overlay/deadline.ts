// The bound of an operation served here, as an abort signal made only when something waits on it:
// most local operations neither wait for a hand-over nor forward, and a timer each would cost more than they do.

/** A signal, or how to make it once it is needed. */
export type Deadline = AbortSignal | (() => AbortSignal)

/** The signal of a deadline, made now if it was not yet. */
export function signalOf(deadline: Deadline): AbortSignal {
  return typeof deadline === 'function' ? deadline() : deadline
}

/** A deadline `ms` from now whose signal is made on first use (and then reused). */
export function deadlineIn(ms: number): Deadline {
  const end = performance.now() + ms
  let signal: AbortSignal | undefined
  return () => {
    // AbortSignal.timeout takes whole milliseconds.
    signal ??= AbortSignal.timeout(Math.max(0, Math.ceil(end - performance.now())))
    return signal
  }
}
