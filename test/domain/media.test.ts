import { isInertSwitchArgument, playbackArgument, validateMediaEntry, type MediaEntry } from '../../src/domain/media';
import { loadConfig } from '../../src/config';

const entry = (kind: MediaEntry['kind'], source: string, id = 'prompt-1'): MediaEntry => ({ id, kind, source, description: '' });

describe('media catalogue entries: only what the switch cannot expand', () => {
  it.each([
    ['file', 'numguard/welcome.wav'],
    ['file', 'en/us/callie/ivr/8000/ivr-welcome.wav'],
    ['file', 'beep.r8'],
    ['tone', '%(500,500,480,620);loops=2'],
    ['tone', '%(200,0,440)'],
    ['tone', 'v=-7;%(100,0,941.0,1477.0);loops=3'],
  ] as const)('accepts %s %s', (kind, source) => {
    expect(validateMediaEntry(entry(kind, source)).source).toBe(source);
  });

  it.each([
    ['file', '${system(touch /tmp/x)}.wav'],
    ['file', '/etc/passwd.wav'],
    ['file', '../secret.wav'],
    ['file', 'a/../../b.wav'],
    ['file', 'welcome.wav;rm'],
    ['file', 'welcome'],
    ['file', 'shout://example.com/a.wav'],
    ['file', 'a b.wav'],
    ['tone', '${system(id)}'],
    ['tone', '%(500,500,480);${x}'],
    ['tone', 'tone_stream://%(500,500,480)'],
    ['tone', '%(500,500,480)\napi system id'],
    ['tone', ''],
  ] as const)('refuses %s %s', (kind, source) => {
    expect(() => validateMediaEntry(entry(kind, source))).toThrow(expect.objectContaining({ code: 'invalid_media_source', field: 'source' }));
  });

  it.each(['Welcome', '-x', 'a'.repeat(65), 'ид', '${x}', 'a b'])('refuses the id %j', (id) => {
    expect(() => validateMediaEntry(entry('tone', '%(200,0,440)', id))).toThrow(expect.objectContaining({ code: 'invalid_media_id' }));
  });

  it('plays a file by its absolute path under the sounds directory, a tone as a tone stream', () => {
    expect(playbackArgument(entry('file', 'ng/hello.wav'), '/usr/share/freeswitch/sounds')).toBe('/usr/share/freeswitch/sounds/ng/hello.wav');
    expect(playbackArgument(entry('tone', '%(200,0,440)'), '/x')).toBe('tone_stream://%(200,0,440)');
    expect(() => playbackArgument(entry('file', '${system(id)}.wav'), '/x')).toThrow();
  });

  it("refuses operator prompts and directories the switch would expand, naming the variable", () => {
    expect(isInertSwitchArgument('tone_stream://%(500,500,480,620);loops=2')).toBe(true);
    expect(isInertSwitchArgument('${system(id)}')).toBe(false);
    const base = { ESL_PASSWORD: 'x' };
    expect(() => loadConfig({ ...base, NOT_IN_SERVICE_PROMPT: '${system(id)}' })).toThrow(/NOT_IN_SERVICE_PROMPT/);
    expect(() => loadConfig({ ...base, RINGBACK_TONE: '$${x}' })).toThrow(/RINGBACK_TONE/);
    expect(() => loadConfig({ ...base, SWITCH_SOUNDS_DIR: 'relative/dir' })).toThrow(/SWITCH_SOUNDS_DIR/);
    expect(() => loadConfig({ ...base, RECORDINGS_DIR: '/tmp/${x}' })).toThrow(/RECORDINGS_DIR/);
    expect(loadConfig(base).callsToX.soundsDir).toBe('/usr/share/freeswitch/sounds');
  });
});
