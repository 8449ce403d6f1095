import type { Worker } from 'bullmq';
import type { RedisClient } from '../stores/redis';
import { BlacklistLookup } from '../abuse/blacklist-lookup';
import { RedisAbuseCounters } from '../abuse/redis-counters';
import { ConfigError, type AppConfig } from '../config';
import type { NumberHasher } from '../domain/number-hash';
import type { MessageTransport } from '../domain/message';
import type { PlatformEvent } from '../events/platform-events';
import type { Logger } from '../logger';
import type { Pool } from '../stores/mysql';
import type { RouteIndex } from '../stores/route-index';
import type { CarrierSink, MessageCarrier } from './carrier';
import { InboundSpool } from './inbound-spool';
import { MessageQueue, startMessageWorker } from './message-queue';
import { MessageRelay } from './message-relay';
import { MessageStore } from './message-store';
import { PartAssembly } from './part-assembly';
import { SipCarrier, type SipSwitch } from './sip-carrier';
import { SmppCarrier } from './smpp-carrier';

export interface MessagingDeps {
  readonly config: AppConfig['messages'];
  /** Bounded waits: the relay's counters and part assembly. */
  readonly redis: RedisClient;
  /** The queue's own connection, which waits for Redis to come back (BullMQ requires it for workers). */
  readonly queueRedis: RedisClient;
  readonly prefix: string;
  readonly pool: Pool;
  readonly routes: Pick<RouteIndex, 'lookup'>;
  readonly hash: NumberHasher;
  readonly esl: SipSwitch;
  readonly queueWebhook: (event: PlatformEvent) => Promise<void>;
  readonly logger: Logger;
  /** Run the relay worker in this process. */
  readonly workers: boolean;
}

export interface Messaging {
  readonly store: MessageStore;
  readonly queue: MessageQueue;
  readonly worker: Worker | null;
  readonly smpp: SmppCarrier | null;
  /** SIP texts kept on disk until the queue takes them. */
  readonly spool: InboundSpool;
  /** Clears message bodies past their tenant's retention. */
  pruneBodies(): Promise<number>;
  stop(): Promise<void>;
}

/**
 * The text-message room, wired: both carrier paths feed one queue; the relay worker decides,
 * records and forwards through the tenant's path. The SMPP link is bound only when SMPP_HOST is
 * set; the SIP path needs only the switch connection every controller has.
 */
export async function startMessaging(deps: MessagingDeps): Promise<Messaging> {
  const { config } = deps;
  const store = new MessageStore(deps.pool);
  const queue = new MessageQueue({ connection: deps.queueRedis, prefix: deps.prefix, hash: deps.hash, dedupWindowSeconds: config.dedupWindowSeconds });
  // The carriers hand reports to the relay (declared below), and the relay sends through the carriers.
  const sink: CarrierSink = {
    inbound: async (m) => {
      await queue.enqueue(m);
    },
    report: async (r) => {
      await relay.deliveryReport(r);
    },
  };
  const parts = new PartAssembly(deps.redis, deps.prefix, deps.hash, config.partsWaitSeconds * 1000);
  // sofia has answered a SIP MESSAGE 202 before the controller sees it: what the queue does not take is kept on disk.
  const spool = new InboundSpool(config.spool, (m) => sink.inbound(m), deps.logger);
  try {
    await spool.start();
  } catch (err) {
    throw new ConfigError('MESSAGE_SPOOL_DIR', `${config.spool.dir} is not a writable directory: ${(err as Error).message}`);
  }
  const sip = new SipCarrier(deps.esl, config.sip, {
    ...sink,
    inbound: async (m) => {
      await spool.accept(m);
    },
  }, deps.logger);
  const smpp = config.smpp ? new SmppCarrier(config.smpp, sink, parts, deps.logger) : null;
  const carriers: Partial<Record<MessageTransport, MessageCarrier>> = { sip, ...(smpp ? { smpp } : {}) };
  const relay = new MessageRelay({
    routes: deps.routes,
    store,
    carriers,
    defaultTransport: config.transport,
    blacklist: new BlacklistLookup(deps.pool, 5_000),
    counters: new RedisAbuseCounters(deps.redis),
    prefix: deps.prefix,
    hash: deps.hash,
    limits: { perSenderPerMinute: config.perSenderPerMinute, perXPerMinute: config.perXPerMinute },
    queueWebhook: deps.queueWebhook,
    logger: deps.logger,
  });
  const worker = deps.workers
    ? startMessageWorker({
        connection: deps.queueRedis,
        prefix: deps.prefix,
        relay,
        concurrency: 20,
        sendAttempts: config.sendAttempts,
        retryDelayMs: config.retryDelayMs,
        logger: deps.logger,
      })
    : null;
  // Not awaited: a controller starts whether or not the SMS centre is reachable; the link binds when it can.
  void smpp?.start();
  return {
    store,
    queue,
    worker,
    smpp,
    spool,
    pruneBodies: () => store.pruneBodies(),
    async stop() {
      sip.stop();
      await spool.stop();
      await worker?.close();
      await smpp?.stop();
      await queue.close();
    },
  };
}
