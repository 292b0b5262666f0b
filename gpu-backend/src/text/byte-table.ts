/**
 * The GPT-2 byte ↔ character table of byte-level BPE: every byte 0–255 is stood for by one printable Unicode
 * character, so that a vocabulary of strings can hold arbitrary bytes. Printable Latin-1 bytes stand for
 * themselves; the other 68 (controls, space, NBSP, soft hyphen) map to U+0100 onwards, in byte order.
 */

function isSelfMapped(byte: number): boolean {
  return (byte >= 0x21 && byte <= 0x7e) || (byte >= 0xa1 && byte <= 0xac) || (byte >= 0xae && byte <= 0xff);
}

function buildTables(): { toChar: string[]; toByte: Map<string, number> } {
  const toChar: string[] = new Array(256);
  let next = 0x100;
  for (let byte = 0; byte < 256; byte++) toChar[byte] = String.fromCharCode(isSelfMapped(byte) ? byte : next++);
  return { toChar, toByte: new Map(toChar.map((ch, byte) => [ch, byte])) };
}

const TABLES = buildTables();

/** The character that stands for `byte` in a byte-level BPE vocabulary. */
export function byteToChar(byte: number): string {
  return TABLES.toChar[byte];
}

/** Encodes bytes as a byte-level BPE string (one table character per byte). */
export function bytesToByteLevel(bytes: Iterable<number>): string {
  let s = '';
  for (const b of bytes) s += TABLES.toChar[b];
  return s;
}

/** Decodes a byte-level BPE token string to its bytes, or null when a character is outside the table. */
export function byteLevelToBytes(token: string): number[] | null {
  const bytes: number[] = [];
  for (const ch of token) {
    const b = TABLES.toByte.get(ch);
    if (b === undefined) return null;
    bytes.push(b);
  }
  return bytes;
}
