/**
 * Background failures, reported once per episode: a failure is reported when
 * it starts, stays quiet while it lasts, and is reported again if it comes
 * back after it cleared (a second disk-full, a second held lock). Never throws.
 */

/** Where reports go: the monitor's `onError`, its `'error'` event, or one process warning. */
export type Deliver = (error: Error) => void;

export class Reporter {
  /** Kinds whose current episode has been reported. */
  private readonly open = new Set<string>();
  private readonly deliver: Deliver;

  constructor(deliver: Deliver) {
    this.deliver = deliver;
  }

  /** Reports `error` unless a failure of this kind is already being reported. */
  report(kind: string, error: unknown): void {
    if (this.open.has(kind)) return;
    this.open.add(kind);
    const failure = error instanceof Error ? error : new Error(String(error));
    try {
      this.deliver(failure);
    } catch {
      // A throwing onError must not take the app down either.
    }
  }

  /** The failures of these kinds (or kinds starting with a `prefix*`) have cleared: the next one is a new episode. */
  clear(...kinds: string[]): void {
    if (this.open.size === 0) return;
    for (const kind of kinds) {
      if (!kind.endsWith('*')) {
        this.open.delete(kind);
        continue;
      }
      const prefix = kind.slice(0, -1);
      for (const open of this.open) if (open.startsWith(prefix)) this.open.delete(open);
    }
  }
}
