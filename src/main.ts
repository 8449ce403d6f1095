import type { AddressInfo } from 'node:net';
import { startApp } from './app';
import { ConfigError, loadConfig } from './config';
import { createLogger } from './logger';

async function main(): Promise<void> {
  let config;
  try {
    config = loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${err.message}\n`);
      process.exit(78); // EX_CONFIG
    }
    throw err;
  }
  const logger = createLogger(config.logLevel);
  const app = await startApp(config, logger);
  const http = app.http.server.address() as AddressInfo | null;
  logger.info(
    {
      http: http ? { host: http.address, port: http.port } : config.http,
      outboundSocket: app.outboundAddress,
      switches: config.fleet.switches.map((s) => `${s.name}@${s.host}:${String(s.port)}`),
      drainTimeoutSeconds: config.drainTimeoutSeconds,
    },
    'controller started',
  );

  // SIGTERM/SIGINT: drain (no new calls, live ones finish or are handed over at the deadline, CDRs
  // flushed), then close and exit 0. A second signal hands the live calls over now; a third exits at once.
  let signals = 0;
  const shutdown = (signal: string): void => {
    signals += 1;
    if (signals === 1) {
      logger.info({ signal, drainTimeoutSeconds: config.drainTimeoutSeconds }, 'shutting down: draining');
      app
        .drain(config.drainTimeoutSeconds * 1000)
        .then(() => app.stop())
        .then(
          () => {
            logger.info('stopped');
            process.exit(0);
          },
          (err: unknown) => {
            logger.error({ err }, 'shutdown failed');
            process.exit(1);
          },
        );
    } else if (signals === 2) {
      logger.warn({ signal }, 'second signal: handing the live calls over now');
      void app.drain(0);
    } else {
      logger.error({ signal }, 'third signal: exiting without a clean stop');
      process.exit(1);
    }
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
}

main().catch((err: unknown) => {
  process.stderr.write(`fatal: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
