import pino, { Logger } from 'pino';
import { maskPhonesInText } from './domain/phone-number';

export type { Logger } from 'pino';

function maskDeep(value: unknown, depth = 0): unknown {
  if (typeof value === 'string') return maskPhonesInText(value);
  if (depth > 6 || value === null || typeof value !== 'object') return value;
  if (value instanceof Error) {
    return { type: value.name, message: maskPhonesInText(value.message), stack: value.stack && maskPhonesInText(value.stack) };
  }
  if (Array.isArray(value)) return value.map((v) => maskDeep(v, depth + 1));
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) out[k] = maskDeep(v, depth + 1);
  return out;
}

/**
 * The one place logs are made. Every string that reaches a log line (message and fields,
 * nested) has real phone numbers masked, so no call site can leak one by accident.
 */
export function createLogger(level: string, destination?: pino.DestinationStream): Logger {
  const root = pino(
    {
      level,
      base: undefined,
      formatters: {
        log: (obj) => maskDeep(obj) as Record<string, unknown>,
      },
      hooks: {
        logMethod(args, method) {
          const masked = args.map((a) => (typeof a === 'string' ? maskPhonesInText(a) : a));
          method.apply(this, masked as Parameters<typeof method>);
        },
      },
      serializers: { err: (e: Error) => maskDeep(e) },
    },
    destination,
  );
  // Child bindings (e.g. a call's numbers) skip the formatters; mask them on the way in.
  // Every descendant inherits this through pino's prototype chain.
  const pinoChild = (Object.getPrototypeOf(root) as Pick<Logger, 'child'>).child;
  root.child = function maskedChild(this: Logger, bindings, options) {
    return pinoChild.call(this, maskDeep(bindings) as pino.Bindings, options);
  } as Logger['child'];
  return root;
}
