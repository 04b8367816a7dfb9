/**
 * One pass over a request's JSON text for what JSON.parse hides and upstreams read
 * differently: duplicate keys (JSON.parse and Python keep the last, other parsers the first)
 * and keys that differ only in case where Go's encoding/json, which matches struct fields
 * case-insensitively with Unicode simple folding (`ſ` is `s`, the Kelvin sign is `k`), would
 * read them as one field, or only in `_` where protobuf's JSON parsing (lowerCamel and
 * snake_case alike) would. A single key in another case is refused as well where the API
 * spells its keys in lowercase (`lowercase`): Go reads `Messages` as `messages`, while the
 * proxy, reading `messages`, would skip the plan's system prompt and checks. The long s and
 * the Kelvin sign, which no API spells a key with, are refused in any dialect. And nesting
 * past a depth limit, which recursive walks further on cannot take. The body is then re-serialised from the parsed object, so the upstream sees
 * exactly one copy of every key: the one the proxy checked.
 *
 * Run it on text JSON.parse accepted: it assumes well-formed JSON.
 */

/** Objects whose keys must also differ under case folding: the top level and the control objects. */
const FOLDED_OBJECTS = new Set(['stream_options', 'generationConfig', 'generation_config', 'options']);

/** What is wrong with a body; undefined when nothing is. */
export type ScanProblem =
  | { readonly kind: 'depth'; readonly limit: number }
  | { readonly kind: 'duplicate'; readonly key: string }
  | { readonly kind: 'case'; readonly key: string; readonly other: string }
  | { readonly kind: 'spelling'; readonly key: string; readonly as: string };

/**
 * The name a lenient server may read a key as: Go's simple case folding, and without `_`,
 * since protobuf's JSON parsing (Gemini's REST API) takes `system_instruction` and
 * `systemInstruction` as one field.
 */
export function foldKey(key: string): string {
  return key.toLowerCase().replaceAll('ſ', 's').replaceAll('\u212a', 'k').replaceAll('_', '');
}

interface Frame {
  /** Keys seen in this object (undefined for arrays). */
  keys: Set<string> | undefined;
  /** Folded keys, where case variants are refused. */
  folded: Map<string, string> | undefined;
  /** The key whose value this container is (for the control-object check). */
  key: string | undefined;
}

/** The key as Go's simple folding reads it, where it is read in lowercase; undefined when it already is. */
function respelled(key: string, lowercase: boolean): string | undefined {
  const plain = lowercase
    ? key.toLowerCase().replaceAll('ſ', 's')
    : key.replaceAll('ſ', 's').replaceAll('\u212a', 'k');
  return plain === key ? undefined : plain;
}

/**
 * Scans JSON text; the first problem found, or undefined. `lowercase`: the dialect spells
 * every top-level and control-object key in lowercase, so another case is refused there.
 */
export function scanJson(text: string, maxDepth: number, lowercase = false): ScanProblem | undefined {
  const stack: Frame[] = [];
  let lastKey: string | undefined;
  let expectKey = false;
  const n = text.length;
  for (let i = 0; i < n; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22) {
      // A string: find its end, skipping escapes.
      const start = i + 1;
      let escaped = false;
      let j = text.indexOf('"', start);
      while (j !== -1) {
        let backslashes = 0;
        for (let k = j - 1; k >= start && text.charCodeAt(k) === 0x5c; k--) backslashes++;
        if (backslashes % 2 === 0) break;
        escaped = true;
        j = text.indexOf('"', j + 1);
      }
      if (j === -1) return undefined;
      if (expectKey) {
        const raw = text.slice(start, j);
        const key = escaped || raw.includes('\\') ? (JSON.parse(`"${raw}"`) as string) : raw;
        const frame = stack[stack.length - 1]!;
        if (frame.keys!.has(key)) return { kind: 'duplicate', key };
        frame.keys!.add(key);
        if (frame.folded) {
          const as = respelled(key, lowercase);
          if (as !== undefined) return { kind: 'spelling', key, as };
          const fold = foldKey(key);
          const other = frame.folded.get(fold);
          if (other !== undefined) return { kind: 'case', key, other };
          frame.folded.set(fold, key);
        }
        lastKey = key;
        expectKey = false;
      }
      i = j;
    } else if (c === 0x7b || c === 0x5b) {
      if (stack.length >= maxDepth) return { kind: 'depth', limit: maxDepth };
      const object = c === 0x7b;
      const parent = stack[stack.length - 1];
      const key = parent?.keys ? lastKey : undefined;
      const folds =
        object &&
        (stack.length === 0 || (stack.length === 1 && key !== undefined && FOLDED_OBJECTS.has(key)));
      stack.push({ keys: object ? new Set() : undefined, folded: folds ? new Map() : undefined, key });
      expectKey = object;
    } else if (c === 0x7d || c === 0x5d) {
      stack.pop();
      expectKey = false;
    } else if (c === 0x2c) {
      expectKey = stack[stack.length - 1]?.keys !== undefined;
    }
  }
  return undefined;
}
