import { fork, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import type { PhoneBehaviour } from '../../test/simulator';
import type { SimulatorRequest } from './simulator-process';

type Pending = (reply: Record<string, unknown>) => void;
type WithoutId<T> = T extends unknown ? Omit<T, 'id'> : never;

/** Starts the simulator in a child process and talks to it over IPC. */
export class RemoteSimulator {
  private nextId = 1;
  /** The simulator's process (its CPU is the switch's side of the bench). */
  readonly pid: number | null;
  private readonly pending = new Map<number, Pending>();

  private constructor(
    private readonly child: ChildProcess,
    readonly address: { host: string; port: number },
  ) {
    this.pid = child.pid ?? null;
    child.on('message', (msg: { id?: number }) => {
      if (msg.id === undefined) return;
      this.pending.get(msg.id)?.(msg);
      this.pending.delete(msg.id);
    });
  }

  static start(timeScale = 0): Promise<RemoteSimulator> {
    const child = fork(path.join(__dirname, 'simulator-process.ts'), [], {
      // BENCH_SIM_CPU_PROF=<dir>: a CPU profile of each simulator, to see the switch's side of a bench.
      execArgv: ['--import', 'tsx', ...(process.env.BENCH_SIM_CPU_PROF ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_SIM_CPU_PROF}`] : [])],
      env: { ...process.env, SIM_TIME_SCALE: String(timeScale) },
      // The child's lines go to stderr: stdout carries the bench's JSON.
      stdio: ['ignore', 2, 'inherit', 'ipc'],
    });
    return new Promise((resolve, reject) => {
      child.once('message', (msg: { type: string; host: string; port: number }) => {
        if (msg.type === 'ready') resolve(new RemoteSimulator(child, { host: msg.host, port: msg.port }));
      });
      child.once('exit', (code) => reject(new Error(`simulator process exited with ${code}`)));
    });
  }

  private request(req: WithoutId<SimulatorRequest>): Promise<Record<string, unknown>> {
    const id = this.nextId++;
    return new Promise((resolve) => {
      this.pending.set(id, resolve);
      this.child.send({ ...req, id });
    });
  }

  async setPhones(numbers: string[], behaviour: PhoneBehaviour): Promise<void> {
    await this.request({ type: 'setPhones', numbers, behaviour });
  }

  async originateCounts(uuids: string[]): Promise<{ counts: number[]; total: number }> {
    const reply = await this.request({ type: 'originateCounts', uuids });
    return { counts: reply.counts as number[], total: reply.total as number };
  }

  async stop(): Promise<void> {
    await this.request({ type: 'stop' });
  }
}
