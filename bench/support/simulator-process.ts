// The switch simulator in its own process, as a real FreeSWITCH would be: benchmarks measure
// the controller's CPU, not the simulator's. Driven over the fork() IPC channel.
import { FreeSwitchSimulator, type PhoneBehaviour } from '../../test/simulator';

export type SimulatorRequest =
  | { readonly id: number; readonly type: 'setPhones'; readonly numbers: string[]; readonly behaviour: PhoneBehaviour }
  | { readonly id: number; readonly type: 'originateCounts'; readonly uuids: string[] }
  | { readonly id: number; readonly type: 'stop' };

const sim = new FreeSwitchSimulator({ timeScale: Number(process.env.SIM_TIME_SCALE ?? 0) });

void sim.start().then((addr) => process.send!({ type: 'ready', ...addr }));

process.on('message', (msg: SimulatorRequest) => {
  switch (msg.type) {
    case 'setPhones':
      for (const n of msg.numbers) sim.setPhone(n, msg.behaviour);
      process.send!({ id: msg.id, ok: true });
      break;
    case 'originateCounts':
      process.send!({ id: msg.id, counts: msg.uuids.map((u) => sim.originateCount(u)), total: sim.originateCount() });
      break;
    case 'stop':
      void sim.stop().then(() => {
        process.send!({ id: msg.id, ok: true });
        process.exit(0);
      });
      break;
  }
});
