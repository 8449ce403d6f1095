export { EslClient, type EslClientOptions, type EslState } from './client';
export { EslOutboundServer, type EslOutboundServerOptions, type OutboundSession } from './outbound-server';
export { parseJsonEvent, parsePlainEvent, type EslEvent } from './event';
export { EslAuthError, EslCommandError, EslDisconnectedError, EslError, EslTimeoutError } from './errors';
