/**
 * Records, from a real FreeSWITCH, the warning before the maximum duration (issue #10 item 4) in a one-command
 * click-to-dial of src/flows/click-to-dial.ts (see one-command-call.ts), in the format of shared/fs-traces,
 * into test/simulator/recordings/:
 *
 *   npx tsx test/simulator/tools/record-end-warning.ts 19a-end-warning-both-legs [A port] [B port]
 *
 * As 17a (record-one-command.ts), with the cap at 4 s; once A's CHANNEL_BRIDGE arrives the controller sends
 * `api sched_broadcast +2 <uB> tone_stream://%(300,200,880);loops=2 both`, as the flow does: what the switch
 * answers, what each leg reports of the broadcast, and that B is still hung up with ALLOTTED_TIMEOUT at the cap.
 * Needs E2E_ESL_HOST/PORT/PASSWORD (default 127.0.0.1:8021, ClueCon) and sipp.
 */
import { recordOneCommandCall } from './one-command-call';
import { channelEvent } from './recording-session';

const TONE = 'tone_stream://%(300,200,880);loops=2';

async function main(): Promise<void> {
  const [name, aPortArg, bPortArg] = process.argv.slice(2);
  if (!name) throw new Error('usage: record-end-warning.ts <name> [A port] [B port]');
  await recordOneCommandCall({
    name,
    bBehaviour: 'answer',
    capSeconds: 4,
    aPort: Number(aPortArg ?? 5094),
    bPort: Number(bPortArg ?? 5095),
    during: async (rec, { uA, uB }) => {
      await rec.until(channelEvent('CHANNEL_BRIDGE', uA));
      rec.send(`api sched_broadcast +2 ${uB} ${TONE} both\n\n`);
    },
  });
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
