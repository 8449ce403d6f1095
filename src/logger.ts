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

/**
 * A request's logger (Fastify's childLoggerFactory): the pino child, with its bindings masked and
 * serialized, is made only when a line is written at an enabled level. Most requests write none,
 * and making the child cost more controller CPU per request than any other part of the logging.
 */
class LazyChildLogger {
  private made: Logger | undefined;

  constructor(
    private readonly parent: Logger,
    private readonly childBindings: pino.Bindings,
    private readonly options: pino.ChildLoggerOptions,
  ) {}

  private real(): Logger {
    return (this.made ??= this.parent.child(this.childBindings, this.options));
  }

  private write(level: pino.Level, args: unknown[]): void {
    if (this.made === undefined && !this.parent.isLevelEnabled(level)) return;
    this.real()[level](...(args as Parameters<pino.LogFn>));
  }

  get level(): string {
    return (this.made ?? this.parent).level;
  }

  set level(level: string) {
    this.real().level = level;
  }

  fatal(...args: unknown[]): void {
    this.write('fatal', args);
  }

  error(...args: unknown[]): void {
    this.write('error', args);
  }

  warn(...args: unknown[]): void {
    this.write('warn', args);
  }

  info(...args: unknown[]): void {
    this.write('info', args);
  }

  debug(...args: unknown[]): void {
    this.write('debug', args);
  }

  trace(...args: unknown[]): void {
    this.write('trace', args);
  }

  silent(): void {}

  child(bindings: pino.Bindings, options?: pino.ChildLoggerOptions): Logger {
    return this.real().child(bindings, options);
  }

  isLevelEnabled(level: string): boolean {
    return (this.made ?? this.parent).isLevelEnabled(level);
  }

  bindings(): pino.Bindings {
    return this.real().bindings();
  }
}

export function lazyChildLogger(parent: Logger, bindings: pino.Bindings, options: pino.ChildLoggerOptions): Logger {
  if (options.level !== undefined) return parent.child(bindings, options);
  return new LazyChildLogger(parent, bindings, options) as unknown as Logger;
}
