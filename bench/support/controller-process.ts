// The whole controller (startApp with loadConfig from this process's environment) in a process of
// its own, so its CPU is read from /proc apart from the load generator's. Reports its HTTP port over
// the fork() IPC channel and stops on { type: 'stop' }.
import { startApp } from '../../src/app';
import { loadConfig } from '../../src/config';
import { createLogger } from '../../src/logger';
import { countCommands, countEslEvents, takeCounts } from './command-counter';

// BENCH_COUNT_COMMANDS=1: the Redis and MySQL commands this controller sends, by name ({ type: 'counts' } takes them).
if (process.env.BENCH_COUNT_COMMANDS === '1') countCommands();
// BENCH_COUNT_DETAIL=1: also the events the switch sends it, by name, with their bytes.
if (process.env.BENCH_COUNT_DETAIL === '1') countEslEvents();

async function main(): Promise<void> {
  const config = loadConfig();
  const app = await startApp(config, createLogger(config.logLevel));
  const addr = app.http.server.address();
  process.send!({ type: 'ready', port: typeof addr === 'object' && addr ? addr.port : 0 });
  process.on('message', (msg: { type: string }) => {
    if (msg.type === 'counts') process.send!({ type: 'counts', counts: takeCounts() });
    if (msg.type !== 'stop') return;
    void app.stop().finally(() => process.exit(0));
  });
  // The bench went away without saying stop.
  process.on('disconnect', () => void app.stop().finally(() => process.exit(0)));
}

main().catch((err: unknown) => {
  process.stderr.write(`controller: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
