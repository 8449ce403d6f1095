import type { PlatformEvent, PlatformEventBus } from '../events/platform-events';
import type { Logger } from '../logger';
import { toWebhookPayload } from './payload';
import type { WebhookQueue } from './webhook-queue';
import type { EndpointLookup } from './webhook-store';

export interface WebhookDispatchDeps {
  readonly events: Pick<PlatformEventBus, 'onLocal'>;
  /** Cached: a busy system must not read MySQL per event. */
  readonly store: EndpointLookup;
  readonly queue: Pick<WebhookQueue, 'enqueue'>;
  readonly logger: Logger;
}

/**
 * Queues a webhook job for `event` when the tenant's enabled endpoint subscribes to its type.
 * Throws when it cannot tell or cannot queue; queueing the same event again is a no-op (the job id is the event id).
 */
export function webhookQueuer(deps: Pick<WebhookDispatchDeps, 'store' | 'queue'>): (event: PlatformEvent) => Promise<void> {
  return async (event) => {
    if (await subscribed(deps.store, event)) await deps.queue.enqueue(toWebhookPayload(event));
  };
}

/** webhookQueuer for many events at once: the subscribed ones are queued in one round trip. */
export function webhookBulkQueuer(
  deps: { readonly store: EndpointLookup; readonly queue: Pick<WebhookQueue, 'enqueueMany'> },
): (events: readonly PlatformEvent[]) => Promise<void> {
  return async (events) => {
    const wanted = await Promise.all(events.map((event) => subscribed(deps.store, event)));
    await deps.queue.enqueueMany(events.filter((_, i) => wanted[i]).map(toWebhookPayload));
  };
}

async function subscribed(store: EndpointLookup, event: PlatformEvent): Promise<boolean> {
  const endpoint = await store.get(event.tenantId);
  return !!endpoint && endpoint.enabled && (endpoint.events === null || endpoint.events.includes(event.type));
}

/**
 * Turns this instance's platform events into webhook jobs for tenants whose enabled endpoint
 * subscribes to the event's type. Flows never wait on this: the bus does not await listeners.
 * Returns the function that stops it.
 */
export function startWebhookDispatch(deps: WebhookDispatchDeps): () => void {
  const log = deps.logger.child({ component: 'webhook-dispatch' });
  const queueWebhook = webhookQueuer(deps);
  return deps.events.onLocal((event) => {
    queueWebhook(event).catch((err: unknown) => {
      log.warn({ err, tenantId: event.tenantId, eventId: event.id, type: event.type }, 'webhook not queued');
    });
  });
}
