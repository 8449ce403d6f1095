/** What the package exports for business backends written in Node. */
export { enqueueClickToDial, type CallbackQueueAddress, type ClickToDialPayload, type JobSigningKey } from './calls/enqueue-click-to-dial';
export {
  CLICK_TO_DIAL_JOB_NAME,
  CLICK_TO_DIAL_JOB_VERSION,
  ClickToDialJobSchema,
  InvalidJobError,
  canonicalJob,
  signClickToDialJob,
  validateClickToDialJob,
  type ClickToDialJobData,
} from './calls/click-to-dial-job';
export { callbackQueueName } from './calls/callback-queue';
export { CapacityRefusedError } from './queues/switch-capacity';
export { callIdFor } from './calls/click-to-dial-request';
export {
  EVENT_ID_HEADER,
  SIGNATURE_HEADER,
  TIMESTAMP_HEADER,
  signWebhook,
  verifyWebhook,
  type WebhookVerification,
} from './webhooks/signing';
export type { WebhookEventType, WebhookPayload } from './webhooks/payload';
