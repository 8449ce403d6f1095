import { ValidationError } from './errors';

/**
 * What a caller may hear (SPEC §7): prompts and announcements are entries of a catalogue the
 * operator manages, and tenants refer to them by id. FreeSWITCH expands `${...}` (variables and,
 * unless `api-expansion` is off, API calls such as `system`) in every application argument, so
 * nothing a tenant typed may ever reach `playback`: only an entry that passed these rules does.
 *
 * An entry is either a sound file, given relative to the switch's sounds directory, or a tone
 * (TGML, as `tone_stream://` plays it). Both are held to character sets in which FreeSWITCH has
 * nothing to expand, separate or escape.
 */
export type MediaKind = 'file' | 'tone';

export interface MediaEntry {
  readonly id: string;
  readonly kind: MediaKind;
  /** file: a path relative to the switch's sounds directory; tone: a TGML spec. */
  readonly source: string;
  readonly description: string;
}

export const MEDIA_ID_PATTERN = '^[a-z0-9][a-z0-9_-]{0,63}$';
const MEDIA_ID = new RegExp(MEDIA_ID_PATTERN);

const FILE_EXTENSIONS = ['wav', 'au', 'aiff', 'flac', 'ogg', 'gsm', 'ul', 'al', 'r8', 'r16', 'r32', 'r48'];
/** Path segments of letters, digits, `_`, `-` and `.`; no `..`, no leading `/`, a known audio extension. */
const RELATIVE_FILE = new RegExp(`^(?:[A-Za-z0-9_-][A-Za-z0-9_.-]{0,63}/){0,8}[A-Za-z0-9_-][A-Za-z0-9_.-]{0,63}\\.(?:${FILE_EXTENSIONS.join('|')})$`);
/** TGML: `%(on,off,freq[,freq…])` segments and `loops=`/`v=` settings separated by `;`. */
const TONE_PART = '(?:%\\(\\d{1,5},\\d{1,5}(?:,\\d{1,5}(?:\\.\\d{1,3})?){1,4}\\)|loops=-?\\d{1,3}|v=-?\\d{1,3})';
const TONE = new RegExp(`^${TONE_PART}(?:;${TONE_PART}){0,15}$`);

export function isMediaId(value: string): boolean {
  return MEDIA_ID.test(value);
}

/** Checks an id a tenant gave; the message never echoes the value. */
export function parseMediaId(value: string, field: string): string {
  if (!isMediaId(value)) {
    throw new ValidationError(field, `${field} must be the id of a catalogue entry (lower-case letters, digits, _ and -)`, 'invalid_media_id');
  }
  return value;
}

/** Checks an entry the operator registers; throws a ValidationError naming the field. */
export function validateMediaEntry(entry: MediaEntry): MediaEntry {
  parseMediaId(entry.id, 'id');
  if (entry.kind === 'file') {
    if (!RELATIVE_FILE.test(entry.source) || entry.source.split('/').some((s) => s === '.' || s === '..')) {
      throw new ValidationError(
        'source',
        `a file must be a path relative to the sounds directory, of letters, digits, _ - . and /, ending in .${FILE_EXTENSIONS.join(', .')}`,
        'invalid_media_source',
      );
    }
  } else if ((entry.kind as string) !== 'tone') {
    // The type says file or tone; a row or a CLI argument may say otherwise.
    throw new ValidationError('kind', 'kind must be file or tone', 'invalid_media_kind');
  } else if (!TONE.test(entry.source)) {
    throw new ValidationError('source', 'a tone must be TGML such as %(400,200,440);loops=2', 'invalid_media_source');
  }
  if (entry.description.length > 255) throw new ValidationError('description', 'description is longer than 255 characters', 'too_long');
  return entry;
}

/**
 * The `playback` argument for an entry: the absolute path of a file under `soundsDir` (a relative
 * path would resolve against the switch's base directory, not its sounds), or a tone stream.
 * The entry is checked again here, so an entry that was tampered with in storage never plays.
 */
export function playbackArgument(entry: MediaEntry, soundsDir: string): string {
  validateMediaEntry(entry);
  return entry.kind === 'tone' ? `tone_stream://${entry.source}` : `${soundsDir}/${entry.source}`;
}

/** An absolute directory in which the switch has nothing to expand (checked once, in the config). */
export function isSafeAbsoluteDir(dir: string): boolean {
  return /^(?:\/[A-Za-z0-9_.-]+)+$/.test(dir) && !dir.split('/').some((s) => s === '..');
}

/**
 * An operator's own prompt or tone setting (ringback, "not in service"): no `$`, braces or line
 * breaks, so the switch has nothing to expand or split in it.
 */
export function isInertSwitchArgument(value: string): boolean {
  return !/[${}\r\n]/.test(value);
}
