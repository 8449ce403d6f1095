// The counting ESL proxy (esl-tap.ts) in a process of its own, so neither the load generator's
// event loop nor the controller's CPU figure carries it. Driven over the fork() IPC channel:
// { type: 'take', id } → { id, traffic }.
import { EslTap } from './esl-tap';

const tap = new EslTap({ host: process.env.TAP_TARGET_HOST ?? '127.0.0.1', port: Number(process.env.TAP_TARGET_PORT ?? 8021) });

void tap.start().then((addr) => process.send!({ type: 'ready', ...addr }));

process.on('message', (msg: { type: string; id: number }) => {
  if (msg.type === 'take') process.send!({ id: msg.id, traffic: tap.take() });
  if (msg.type === 'stop') void tap.stop().finally(() => process.exit(0));
});
process.on('disconnect', () => void tap.stop().finally(() => process.exit(0)));
