import type { RedisClient } from '../stores/redis';
import type { MessageTransport } from '../domain/message';
import type { NumberHasher } from '../domain/number-hash';
import { redisKeys } from '../stores/keys';
import { reassemble, type ReceivedPart } from './text-segments';

/**
 * The parts of a concatenated message received so far, kept in Redis (any controller may receive
 * the next part, and a part is acknowledged to the carrier only once it is stored here), until
 * every part is there or the wait is over. Two controllers completing the same message at once
 * both hand it on; the relay's dedup key makes that one message.
 */
export class PartAssembly {
  constructor(
    private readonly redis: RedisClient,
    private readonly prefix: string,
    private readonly hash: NumberHasher,
    private readonly waitMs: number,
  ) {}

  /** Stores a part; resolves with the whole text when this part completed it, else null. */
  async add(transport: MessageTransport, x: string, sender: string, part: ReceivedPart): Promise<string | null> {
    const key = redisKeys(this.prefix).messageParts(transport, this.hash(sender), x, part.reference);
    const replies = await this.redis.multi().hset(key, String(part.sequence), part.text).pexpire(key, this.waitMs).hgetall(key).exec();
    const stored = (replies?.[2]?.[1] ?? {}) as Record<string, string>;
    const parts = Object.entries(stored).map(([sequence, text]) => ({ ...part, sequence: Number(sequence), text }));
    const whole = reassemble(parts);
    if (whole !== null) await this.redis.del(key);
    return whole;
  }
}
