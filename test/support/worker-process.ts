// A controller in its own process, so a test can kill it with SIGKILL mid-call.
import { startApp } from '../../src/app';
import { loadConfig } from '../../src/config';
import { createLogger } from '../../src/logger';

startApp(loadConfig(), createLogger('warn'), { lockDurationMs: 1000, stalledIntervalMs: 500 }).then(
  () => process.stdout.write('ready\n'),
  (err: unknown) => {
    process.stderr.write(`worker failed to start: ${String(err)}\n`);
    process.exit(1);
  },
);
