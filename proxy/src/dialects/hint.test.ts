import { describe, expect, it } from 'vitest';
import { OPEN_BRACE, errorNearStart, valueAfterLastKey } from './hint.js';

describe('valueAfterLastKey', () => {
  it.each([
    ['{"a":1,"usage":{"x":1}}', OPEN_BRACE],
    ['{"a":1,"usage" : \n {"x":1}}', OPEN_BRACE],
    ['{"a":1,"usage":null}', 'n'.charCodeAt(0)],
    ['{"usage":{"x":1},"b":{"usage":null}}', 'n'.charCodeAt(0)],
    ['{"a":"\\"usage\\":{"}', -1],
    ['{"a":1}', -1],
    ['{"usage":', -1],
  ])('reads the value after the last key in %s', (data, expected) => {
    expect(valueAfterLastKey(data, '"usage"')).toBe(expected);
  });
});

describe('errorNearStart', () => {
  it.each([
    ['{"error":{"message":"x"}}', true],
    ['{ "error": "x" }', true],
    ['{"object":"error","message":"x","type":"BadRequestError"}', true],
    ['{"choices":[{"delta":{"content":"an \\"error\\" happened"}}],"id":"c1","model":"m"}', false],
  ])('finds an error key at the start of %s: %s', (data, expected) => {
    expect(errorNearStart(data)).toBe(expected);
  });
});
