import { toModeslEvent } from '../../src/esl/connection';
import { parseJsonEvent, parsePlainEvent, type EslEvent } from '../../src/esl/event';
import { FrameReader } from '../../src/esl/framing';
import { bodyOf, jsonEvents, plainEvents, recv, recvWhere } from './support/traces';

const UUID = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/g;
/** Values that legitimately differ between two runs of the same scenario: uuids, times, counters. */
const norm = (v: string | undefined): string | undefined => v?.replace(UUID, '<uuid>').replace(/\d+/g, '<n>');
/** Random per-run SIP tokens (tags, Via branches): compared only for shape. */
const RANDOM_SIP = new Set(['variable_sip_full_via', 'variable_sip_recover_via', 'variable_sip_full_from', 'variable_sip_from_tag']);

describe('EslEvent parsing of recorded events', () => {
  const plain = plainEvents('04').map((r) => parsePlainEvent(bodyOf(r)));
  const json = jsonEvents('04b').map((r) => parseJsonEvent(bodyOf(r)));

  it('plain (04) and json (04b) recordings of the same scenario give the same EslEvents', () => {
    expect(plain.length).toBe(17);
    expect(plain.map((e) => e.name)).toEqual(json.map((e) => e.name));
    plain.forEach((p, i) => {
      const j = json[i] as EslEvent;
      expect(Object.keys(p.headers)).toEqual(Object.keys(j.headers)); // same names, same order
      for (const k of Object.keys(p.headers)) {
        if (RANDOM_SIP.has(k)) continue;
        expect([k, norm(p.headers[k])]).toEqual([k, norm(j.headers[k])]);
      }
      expect(norm(p.body)).toEqual(norm(j.body));
    });
  });

  it('decodes url-encoded plain values like json carries them', () => {
    const create = plain[0] as EslEvent;
    expect(create.header('FreeSWITCH-IPv6')).toBe('::1');
    expect(json[0]?.header('FreeSWITCH-IPv6')).toBe('::1');
    expect(create.header('Event-Date-GMT')).toMatch(/^\w{3}, \d{2} \w{3} \d{4} \d{2}:\d{2}:\d{2} GMT$/);
    expect(create.variable('sofia_profile_url')).toBe('sip:mod_sofia@127.0.0.1:5060');
    expect(create.uuid).toBe(create.header('Unique-ID'));
    expect(create.header('No-Such-Header')).toBeUndefined();
    expect(create.body).toBeUndefined();
  });

  it('single-header lookups agree with the full decode for every header of every recorded event', () => {
    for (const raw of [...plainEvents('04'), ...plainEvents('09b'), ...plainEvents('14')]) {
      const lazy = parsePlainEvent(bodyOf(raw));
      const full = parsePlainEvent(bodyOf(raw)).headers;
      for (const k of Object.keys(full)) expect([k, lazy.header(k)]).toEqual([k, full[k]]);
    }
  });

  it('keeps the last value of a repeated header (Hangup-Cause in CHANNEL_HANGUP_COMPLETE)', () => {
    const raw = recvWhere('03', (r) => r.includes('Event-Name: CHANNEL_HANGUP_COMPLETE'));
    expect(raw.match(/\nHangup-Cause: /g)?.length).toBe(2);
    const e = parsePlainEvent(bodyOf(raw));
    expect(e.header('Hangup-Cause')).toBe('NORMAL_CLEARING');
    expect(e.headers['Hangup-Cause']).toBe('NORMAL_CLEARING');
  });

  it('extracts the BACKGROUND_JOB body by its inner Content-Length (no trailing newline for uuid_exists)', () => {
    const raw = recvWhere('02', (r) => r.includes('Event-Name: BACKGROUND_JOB') && r.includes('Job-Command: uuid_exists'));
    const e = parsePlainEvent(bodyOf(raw));
    expect(e.name).toBe('BACKGROUND_JOB');
    expect(e.uuid).toBeUndefined();
    expect(e.body).toBe('false');
    expect(e.header('Job-UUID')).toMatch(UUID);
  });
});

describe('FrameReader', () => {
  const stream = recv('04').join('') + recv('02').join('') + recv('13a-outbound-socket-bound-call').join('');
  const expected = recv('04').length + recv('02').length + recv('13a-outbound-socket-bound-call').length;

  function collect(chunks: Buffer[]): Array<[Record<string, string>, string | undefined]> {
    const out: Array<[Record<string, string>, string | undefined]> = [];
    const r = new FrameReader((h, b) => out.push([h, b]));
    for (const c of chunks) r.push(c);
    return out;
  }

  it('frames every recorded message whatever the chunking (1 byte, 7 bytes, 64 KiB, whole)', () => {
    const buf = Buffer.from(stream);
    const whole = collect([buf]);
    expect(whole).toHaveLength(expected);
    for (const size of [1, 7, 1500, 65536]) {
      const chunks: Buffer[] = [];
      for (let i = 0; i < buf.length; i += size) chunks.push(buf.subarray(i, i + size));
      expect(collect(chunks)).toEqual(whole);
    }
  });

  it('decodes the connect reply (13a): CHANNEL_DATA headers and Reply-Text %2BOK%0A', () => {
    const frames = collect([Buffer.from(recv('13a-outbound-socket-bound-call')[0] as string)]);
    const [headers, body] = frames[0]!;
    expect(body).toBeUndefined();
    expect(headers['Event-Name']).toBe('CHANNEL_DATA');
    expect(headers['Content-Type']).toBe('command/reply');
    expect(headers['Reply-Text']).toBe('+OK\n');
    expect(headers['Socket-Mode']).toBe('async');
    expect(toModeslEvent(headers, body).getHeader('Modesl-Reply-OK')).toBe('');
  });

  it('keeps the api/response body exactly, without a newline where FreeSWITCH sent none', () => {
    const frames = collect([Buffer.from(recv('02').join(''))]);
    const api = frames.filter(([h]) => h['Content-Type'] === 'api/response').map(([, b]) => b);
    expect(api).toContain('false');
    expect(api).toContain('-ERR No such channel!\n');
    expect(api).toContain('{"row_count": 0}\n');
  });
});
