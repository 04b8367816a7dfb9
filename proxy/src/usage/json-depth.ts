/**
 * A guard run before parsing upstream text as JSON. V8 parses nested arrays at about half a
 * microsecond a level, seven times slower than the same bytes of an ordinary answer: 8 KiB
 * of gzipped `[[[[…` (16 MiB decoded, under every cap) held the event loop, and every other
 * tenant's requests, for ten seconds. No provider's answer nests more than a few dozen
 * levels, so text nested deeper than MAX_JSON_DEPTH is treated as not JSON.
 */
import { nestsDeeperThan } from '@lanekeeper/contract';

/** Deepest nesting of arrays and objects parsed from an upstream. */
export const MAX_JSON_DEPTH = 256;

/** Shorter text is not scanned: however it nests, it parses in about a millisecond. */
const SCANNED_FROM = 4 * 1024;

/**
 * True when `text` (a string, or bytes read as latin1) nests arrays and objects deeper than
 * MAX_JSON_DEPTH outside strings. One pass that stops at the first level too deep.
 */
export function tooDeepForJson(text: string): boolean {
  return text.length >= SCANNED_FROM && nestsDeeperThan(text, MAX_JSON_DEPTH);
}

/** `tooDeepForJson` for a raw block of bytes (bracket and quote bytes are ASCII in UTF-8). */
export function blockTooDeepForJson(block: Buffer): boolean {
  return block.length >= SCANNED_FROM && tooDeepForJson(block.toString('latin1'));
}
