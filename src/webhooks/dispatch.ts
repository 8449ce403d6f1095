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
 * Turns this instance's platform events into webhook jobs for tenants whose enabled endpoint
 * subscribes to the event's type. Flows never wait on this: the bus does not await listeners.
 * Returns the function that stops it.
 */
export function startWebhookDispatch(deps: WebhookDispatchDeps): () => void {
  const log = deps.logger.child({ component: 'webhook-dispatch' });
  const dispatch = async (event: PlatformEvent): Promise<void> => {
    try {
      const endpoint = await deps.store.get(event.tenantId);
      if (!endpoint || !endpoint.enabled) return;
      if (endpoint.events !== null && !endpoint.events.includes(event.type)) return;
      await deps.queue.enqueue(toWebhookPayload(event));
    } catch (err) {
      log.warn({ err, tenantId: event.tenantId, eventId: event.id, type: event.type }, 'webhook not queued');
    }
  };
  return deps.events.onLocal((event) => {
    void dispatch(event);
  });
}
