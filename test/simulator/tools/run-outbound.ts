/** Debug helper: npx tsx test/simulator/tools/run-outbound.ts 13a [scale] — replays an outbound-socket recording and its observer, prints differences. */
import { FreeSwitchSimulator } from '../FreeSwitchSimulator';
import { compareStreams } from '../compare';
import { behaviourFromText, loadTrace, manifest, outboundCall, outboundCompareOptions, replayOutbound } from '../trace-replay';

async function main(): Promise<void> {
  const key = process.argv[2] ?? '13a';
  const scale = Number(process.argv[3] ?? 0.02);
  const sc = manifest().find((s) => s.transcripts.some((t) => t.file.startsWith(key + '-')))!;
  const main = sc.transcripts.find((x) => x.file.startsWith(key + '-') && !x.file.includes('-observer.'))!;
  const obs = sc.transcripts.find((x) => x.file.startsWith(key + '-') && x.file.includes('-observer.'));
  const sim = new FreeSwitchSimulator({ timeScale: scale });
  const { port } = await sim.start();
  const trace = loadTrace(main.file);
  const call = outboundCall(trace);
  const callerPhone = sc.phones.find((p) => p.number === call.callerNumber);
  for (const p of sc.phones) if (p !== callerPhone) sim.setPhone(p.number, behaviourFromText(p.behaviour));
  const observerTrace = obs ? loadTrace(obs.file) : undefined;
  const res = await replayOutbound(sim, trace, { ...call, callerAddress: callerPhone?.address, caller: callerPhone && behaviourFromText(callerPhone.behaviour) }, scale,
    { observer: observerTrace && { port, trace: observerTrace } });
  const opts = outboundCompareOptions(sim, sc, res.controllerPort!);
  for (const [name, t, r] of [[main.file, trace, res], [obs?.file, observerTrace, res.observer]] as const) {
    if (!t || !r) continue;
    const diffs = compareStreams(t, r.recv, opts);
    console.log(name, 'elapsed', r.elapsedMs, 'closedByServer', r.closedByServer, 'messages', r.recv.length, 'recorded', t.filter((m) => m.dir === 'recv').length, 'diffs', diffs.length);
    for (const d of diffs) console.log(' -', d);
  }
  await sim.stop();
}
void main();
