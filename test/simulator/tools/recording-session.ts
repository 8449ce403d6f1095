import * as net from 'node:net';
import { Framer } from '../trace-replay';

/** One ESL message as the traces hold it. */
export interface RecordedMessage {
  readonly dir: 'send' | 'recv';
  readonly t_ms: number;
  readonly raw: string;
}

/** An inbound ESL connection to a real switch that logs every message both ways, for the recording tools. */
export interface EslRecording {
  readonly socket: net.Socket;
  readonly log: RecordedMessage[];
  readonly send: (raw: string) => void;
  /** Waits until a received message satisfies `pred`. */
  readonly until: (pred: (raw: string) => boolean, ms?: number) => Promise<void>;
  /** Waits for the next received message. */
  readonly next: () => Promise<void>;
  readonly closedByFreeswitch: () => boolean;
}

export function recordEsl(host: string, port: number): EslRecording {
  const started = Date.now();
  const log: RecordedMessage[] = [];
  const socket = net.connect(port, host);
  socket.setEncoding('utf8');
  let closedByFreeswitch = false;
  let wake: (() => void) | undefined;
  const framer = new Framer((raw) => {
    log.push({ dir: 'recv', t_ms: Date.now() - started, raw });
    wake?.();
  });
  socket.on('data', (d: string) => framer.push(d));
  socket.on('end', () => (closedByFreeswitch = true));
  const until = async (pred: (raw: string) => boolean, ms = 20_000): Promise<void> => {
    const deadline = Date.now() + ms;
    while (!log.some((m) => m.dir === 'recv' && pred(m.raw))) {
      if (Date.now() > deadline) throw new Error('timed out waiting for the switch');
      await new Promise<void>((r) => {
        wake = r;
        setTimeout(r, 20);
      });
    }
  };
  const received = (): number => log.filter((m) => m.dir === 'recv').length;
  return {
    socket,
    log,
    send: (raw) => {
      log.push({ dir: 'send', t_ms: Date.now() - started, raw });
      socket.write(raw);
    },
    until,
    next: async () => {
      const n = received();
      await until(() => received() > n);
    },
    closedByFreeswitch: () => closedByFreeswitch,
  };
}
