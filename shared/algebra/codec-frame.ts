/**
 * Framing shared by every Tributary binary message: magic 'TRB', a version byte and a kind
 * byte, then the body; decoding turns every failure into a typed {@link DecodeError}.
 */
import { ByteReader, ReadFailure, type ByteWriter } from './bytes.ts';

/** Wire format version written by the encoders. */
export const ENVELOPE_VERSION = 1;

/** Why bytes could not be decoded; `offset` is where the problem starts. */
export interface DecodeError {
  code: 'truncated' | 'bad_magic' | 'unsupported_version' | 'malformed';
  message: string;
  offset: number;
}

/** Decoding outcome: a value or a typed error, never an exception. */
export type DecodeResult<T> = { ok: true; value: T } | { ok: false; error: DecodeError };

const MAGIC = [0x54, 0x52, 0x42]; // 'TRB'
/** Kind byte of an edge -> Kafka envelope. */
export const KIND_ENVELOPE = 1;
/** Kind byte of a single partial aggregate. */
export const KIND_PARTIAL = 2;

/** Writes magic, version and kind. */
export function writeHeader(w: ByteWriter, kind: number): void {
  for (const b of MAGIC) w.byte(b);
  w.byte(ENVELOPE_VERSION);
  w.byte(kind);
}

class HeaderFailure {
  constructor(
    readonly code: 'bad_magic' | 'unsupported_version',
    readonly message: string,
    readonly offset: number,
  ) {}
}

function readHeader(r: ByteReader, kind: number): void {
  for (let i = 0; i < MAGIC.length; i++) {
    if (r.remaining === 0) r.fail('truncated', 'input ends inside the magic bytes');
    if (r.byte('magic') !== MAGIC[i]) throw new HeaderFailure('bad_magic', 'not a Tributary batch: magic bytes are not "TRB"', 0);
  }
  const version = r.byte('version');
  if (version !== ENVELOPE_VERSION) {
    throw new HeaderFailure('unsupported_version', `wire version ${version} is not supported (this build reads version ${ENVELOPE_VERSION}); upgrade the aggregator`, 3);
  }
  const got = r.byte('kind');
  if (got !== kind) {
    const name = (k: number): string => (k === KIND_ENVELOPE ? 'an envelope' : k === KIND_PARTIAL ? 'a partial' : `kind ${k}`);
    r.fail('malformed', `expected ${name(kind)}, got ${name(got)}`, 4);
  }
}

/**
 * Runs `body` after the header and requires it to consume every byte. Never throws: reader
 * failures become typed errors, anything unexpected becomes 'malformed'.
 */
export function decodeWith<T>(bytes: Uint8Array, kind: number, body: (r: ByteReader) => T): DecodeResult<T> {
  try {
    if (!(bytes instanceof Uint8Array)) {
      return { ok: false, error: { code: 'malformed', message: 'input is not a Uint8Array', offset: 0 } };
    }
    const r = new ByteReader(bytes);
    readHeader(r, kind);
    const value = body(r);
    if (r.remaining !== 0) r.fail('malformed', `${r.remaining} trailing bytes after the end`);
    return { ok: true, value };
  } catch (e) {
    if (e instanceof ReadFailure || e instanceof HeaderFailure) {
      return { ok: false, error: { code: e.code, message: e.message, offset: e.offset } };
    }
    // Defence in depth: a bug here must surface as a rejected batch, not a crashed consumer.
    return { ok: false, error: { code: 'malformed', message: `decoder error: ${e instanceof Error ? e.message : String(e)}`, offset: 0 } };
  }
}
