// Counts the commands a process sends to Redis (ioredis) and MySQL (mysql2), by name, for the
// benchmarks: unlike CPU time or latency, these counts do not depend on how busy the host is.
import { Connection } from 'mysql2';
import { Redis } from 'ioredis';
import { EslClient } from '../../src/esl/client';
import type { EslEvent } from '../../src/esl/event';

const counts = new Map<string, number>();
const count = (key: string): void => void counts.set(key, (counts.get(key) ?? 0) + 1);

let counting = false;

// Named once: looking through every defined script (BullMQ's forty-odd) on each EVALSHA was counted as the controller's own CPU.
const scriptNames = new Map<string, string>();

/** BENCH_COUNT_DETAIL: which of the connection's defined scripts (ioredis defineCommand, BullMQ's included) an EVALSHA runs. */
function scriptName(redis: Redis, command: { name: string; args?: unknown[] }): string {
  const sha = command.args?.[0];
  if (typeof sha !== 'string') return '?';
  const known = scriptNames.get(sha);
  if (known !== undefined) return known;
  const scripts = (redis as unknown as { scriptsSet?: Record<string, { sha?: string }> }).scriptsSet ?? {};
  for (const [name, script] of Object.entries(scripts)) {
    if (script.sha !== sha) continue;
    scriptNames.set(sha, name);
    return name;
  }
  return sha.slice(0, 8);
}
// BENCH_COUNT_DETAIL=1: MySQL commands keyed by the start of their SQL instead of its verb.
const detail = process.env.BENCH_COUNT_DETAIL === '1';

export function countCommands(): void {
  if (counting) return;
  counting = true;
  const proto = Redis.prototype as unknown as { sendCommand: (this: Redis, command: { name: string }, stream?: unknown) => unknown };
  const sendCommand = proto.sendCommand;
  proto.sendCommand = function (this: Redis, command, stream) {
    count(`redis ${command.name}${detail && command.name === 'evalsha' ? ` ${scriptName(this, command)}` : ''}`);
    return sendCommand.call(this, command, stream);
  };
  // Every protocol command (a query, a prepared statement's execute or prepare) goes through addCommand.
  const base = Object.getPrototypeOf(Connection.prototype) as { addCommand: (this: unknown, cmd: { constructor: { name: string }; sql?: string }) => unknown };
  const addCommand = base.addCommand;
  base.addCommand = function (this: unknown, cmd) {
    const verb = typeof cmd.sql === 'string' ? ` ${detail ? cmd.sql.replace(/\s+/g, ' ').slice(0, 90) : (/^\s*(\w+)/.exec(cmd.sql)?.[1]?.toUpperCase() ?? '')}` : '';
    count(`mysql ${cmd.constructor.name}${verb}`);
    return addCommand.call(this, cmd);
  };
}

/** The counts since the last take(). */
export function takeCounts(): Record<string, number> {
  const out = Object.fromEntries([...counts].sort(([, x], [, y]) => y - x));
  counts.clear();
  return out;
}

/** The events the switch sends, by name (CHANNEL_EXECUTE_COMPLETE with its application), and their bytes (`… bytes`). */
export function countEslEvents(): void {
  const proto = EslClient.prototype as unknown as { dispatch: (this: EslClient, e: EslEvent) => void };
  const dispatch = proto.dispatch;
  proto.dispatch = function (this: EslClient, e) {
    const key = `esl ${e.name}${e.name === 'CHANNEL_EXECUTE_COMPLETE' ? ` ${e.header('Application') ?? ''}` : ''}`;
    count(key);
    // plain events keep their text; the size of what the switch sent for it
    const text = (e as unknown as { text?: unknown }).text;
    counts.set(`${key} bytes`, (counts.get(`${key} bytes`) ?? 0) + (typeof text === 'string' ? text.length : 0));
    dispatch.call(this, e);
  };
}
