/**
 * Reads by key, grouped: a read asked for while earlier groups are on their way to the database waits
 * and goes with the others in one query, so a burst of concurrent jobs costs a few round trips, not
 * one each. A read alone goes at once (no timer), and each caller gets its own answer or the error.
 */
export class GroupedReads<K, V> {
  private waiting = new Map<K, Array<{ resolve: (v: V | null) => void; reject: (err: unknown) => void }>>();
  private inFlight = 0;

  constructor(
    /** Reads a group of distinct keys; a key missing from the answer reads as null. */
    private readonly readMany: (keys: K[]) => Promise<Map<K, V>>,
    private readonly maxGroup: number,
    private readonly maxInFlight: number,
  ) {}

  get(key: K): Promise<V | null> {
    return new Promise((resolve, reject) => {
      const callers = this.waiting.get(key);
      if (callers) callers.push({ resolve, reject });
      else this.waiting.set(key, [{ resolve, reject }]);
      this.sendWhileRoom();
    });
  }

  private sendWhileRoom(): void {
    while (this.inFlight < this.maxInFlight && this.waiting.size > 0) {
      const group = new Map<K, Array<{ resolve: (v: V | null) => void; reject: (err: unknown) => void }>>();
      for (const [key, callers] of this.waiting) {
        if (group.size >= this.maxGroup) break;
        group.set(key, callers);
      }
      for (const key of group.keys()) this.waiting.delete(key);
      this.inFlight++;
      void this.send(group);
    }
  }

  private async send(group: Map<K, Array<{ resolve: (v: V | null) => void; reject: (err: unknown) => void }>>): Promise<void> {
    try {
      const found = await this.readMany([...group.keys()]);
      for (const [key, callers] of group) for (const c of callers) c.resolve(found.get(key) ?? null);
    } catch (err) {
      for (const callers of group.values()) for (const c of callers) c.reject(err);
    } finally {
      this.inFlight--;
      this.sendWhileRoom();
    }
  }
}
