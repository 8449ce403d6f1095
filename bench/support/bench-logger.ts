import pino from 'pino';
import { createLogger, type Logger } from '../../src/logger';

/**
 * The controller's logger in a bench: as in production (LOG_LEVEL defaults to info), every line is
 * made, masked and written, here to /dev/null. BENCH_LOG_LEVEL sets another level (silent, error, …).
 */
export function benchLogger(): { logger: Logger; logLevel: string } {
  const logLevel = process.env.BENCH_LOG_LEVEL ?? 'info';
  return { logger: createLogger(logLevel, pino.destination({ dest: '/dev/null', sync: false })), logLevel };
}
