/**
 * Records, from a real FreeSWITCH, the one-command click-to-dial of src/flows/click-to-dial.ts (see
 * one-command-call.ts) in the format of shared/fs-traces, into test/simulator/recordings/:
 *
 *   npx tsx test/simulator/tools/record-one-command.ts 17a-one-command-connected-max-duration answer [A port] [B port]
 *   npx tsx test/simulator/tools/record-one-command.ts 17b-one-command-b-busy busy [A port] [B port]
 *
 * `answer`: the switch hangs B up 2 s after its answer. `busy`: B answers 486; the controller then plays the
 * prompt to A and hangs it up with USER_BUSY (sendmsg with Event-UUID, as the flow does). Needs
 * E2E_ESL_HOST/PORT/PASSWORD (default 127.0.0.1:8021, ClueCon) and sipp. Sanitized as the shared traces.
 */
import { randomUUID } from 'node:crypto';
import { recordOneCommandCall } from './one-command-call';
import { channelEvent } from './recording-session';

async function main(): Promise<void> {
  const [name, bBehaviour, aPortArg, bPortArg] = process.argv.slice(2);
  if (!name || (bBehaviour !== 'answer' && bBehaviour !== 'busy')) throw new Error('usage: record-one-command.ts <name> answer|busy [A port] [B port]');
  const playbackEvent = randomUUID();
  await recordOneCommandCall({
    name,
    bBehaviour,
    capSeconds: 2,
    aPort: Number(aPortArg ?? 6210),
    bPort: Number(bPortArg ?? 6211),
    ...(bBehaviour === 'busy'
      ? {
          moreIds: { playback_event_uuid: playbackEvent },
          during: async (rec, { uA }) => {
            await rec.until((raw) => channelEvent('CHANNEL_EXECUTE_COMPLETE', uA)(raw) && raw.includes('Application: bridge\n'));
            rec.send(`sendmsg ${uA}\ncall-command: execute\nexecute-app-name: playback\nexecute-app-arg: tone_stream://%(500,500,480,620);loops=1\nEvent-UUID: ${playbackEvent}\n\n`);
            await rec.until((raw) => raw.includes('Event-Name: CHANNEL_EXECUTE_COMPLETE') && raw.includes(`Application-UUID: ${playbackEvent}`));
            rec.send(`sendmsg ${uA}\ncall-command: execute\nexecute-app-name: hangup\nexecute-app-arg: USER_BUSY\n\n`);
          },
        }
      : {}),
  });
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
