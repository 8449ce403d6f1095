/** Debug helper: npx tsx test/simulator/tools/run-scenario.ts 03 [scale] — prints differences. */
import { FreeSwitchSimulator } from '../FreeSwitchSimulator';
import { behaviourFromText, loadTrace, manifest, replay } from '../trace-replay';
import { compareStreams } from '../compare';

async function main(): Promise<void> {
  const key = process.argv[2] ?? '03';
  const scale = Number(process.argv[3] ?? 0.02);
  const sc = manifest().find((s) => s.transcripts.some((t) => t.file.startsWith(key + '-')))!;
  const t = sc.transcripts.find((x) => x.file.startsWith(key + '-'))!;
  const sim = new FreeSwitchSimulator({ timeScale: scale });
  for (const p of sc.phones) sim.setPhone(p.number, behaviourFromText(p.behaviour));
  const { port } = await sim.start();
  const trace = loadTrace(t.file);
  const res = await replay(sim, port, trace, scale);
  const uuids: Record<string, string> = {};
  if (sc.ids.uA) uuids[sc.ids.uA] = 'A';
  if (sc.ids.uB) uuids[sc.ids.uB] = 'B';
  const ev = new Set<string>(Object.values(sc.ids));
  const diffs = compareStreams(trace, res.recv, { uuids, eventUuids: ev });
  console.log(key, 'elapsed', res.elapsedMs, 'closedByServer', res.closedByServer, 'diffs', diffs.length);
  for (const d of diffs) console.log(' -', d);
  await sim.stop();
}
void main();
