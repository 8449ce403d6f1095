/**
 * `npm run bench`: every benchmark in turn, one JSON document on stdout.
 * Needs Redis and MariaDB on 127.0.0.1 (as the tests do). `npm run bench -- esl-ingest` runs one.
 */
import os from 'node:os';
import { run as cdrPersist } from './cdr-persist';
import { run as clickToDialDispatch } from './click-to-dial-dispatch';
import { run as clickToDialCpu } from './click-to-dial-cpu';
import { run as bindings } from './bindings';
import { run as callToXRouting } from './call-to-x-routing';
import { run as eslIngest } from './esl-ingest';

const BENCHES: Record<string, () => Promise<Record<string, unknown>>> = {
  'esl-ingest': eslIngest,
  'click-to-dial-dispatch': clickToDialDispatch,
  'click-to-dial-cpu': clickToDialCpu,
  'cdr-persist': cdrPersist,
  bindings,
  'call-to-x-routing': callToXRouting,
};

async function main(): Promise<void> {
  const only = process.argv.slice(2);
  const unknown = only.filter((n) => !(n in BENCHES));
  if (unknown.length) throw new Error(`unknown benchmark(s): ${unknown.join(', ')}; known: ${Object.keys(BENCHES).join(', ')}`);
  const results: Record<string, unknown> = {};
  for (const [name, run] of Object.entries(BENCHES)) {
    if (only.length && !only.includes(name)) continue;
    process.stderr.write(`bench: ${name}…\n`);
    results[name] = await run();
  }
  process.stdout.write(`${JSON.stringify({ machine: { cpus: os.cpus().length, node: process.version }, results }, null, 2)}\n`);
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`${err instanceof Error ? err.stack : String(err)}\n`);
    process.exit(1);
  },
);
