import { describe, expect, it } from 'vitest';
import { acme } from '../../test/dialects/fixture-cases.js';
import { dialectByName, dialects, selectDialect } from './index.js';

describe('selectDialect', () => {
  it.each([
    ['POST', '/v1/chat/completions', 'openai', 'chat.completions'],
    ['POST', '/v1/responses', 'openai', 'responses'],
    ['POST', '/v1/messages', 'anthropic', 'messages'],
    ['POST', '/v1/messages/count_tokens', 'anthropic', 'count_tokens'],
    ['POST', '/v1beta/models/gemini-2.5-pro:generateContent', 'gemini', 'generateContent'],
    ['POST', '/v1/models/gemini-2.5-pro:streamGenerateContent', 'gemini', 'streamGenerateContent'],
    ['POST', '/v1beta/openai/chat/completions', 'openai', 'chat.completions'],
    ['POST', '/api/chat', 'ollama', 'chat'],
    ['GET', '/api/tags', 'ollama', 'other'],
    ['GET', '/v1/models', 'openai', 'models'],
    ['POST', '/v1/files', 'openai', 'other'],
  ])('in auto mode picks the dialect by path: %s %s -> %s', (method, path, name, endpoint) => {
    const selected = selectDialect('auto', method, path);
    expect(selected?.dialect.name).toBe(name);
    expect(selected?.route.endpoint).toBe(endpoint);
  });

  it('returns undefined for a path nothing speaks', () => {
    expect(selectDialect('auto', 'GET', '/healthz')).toBeUndefined();
  });

  it('forces the configured module, with vllm as OpenAI', () => {
    expect(selectDialect('anthropic', 'GET', '/v1/models')?.dialect.name).toBe('anthropic');
    expect(selectDialect('vllm', 'POST', '/v1/chat/completions')?.dialect.name).toBe('openai');
    expect(selectDialect('openai', 'POST', '/api/chat')).toBeUndefined();
    expect(selectDialect('nope', 'POST', '/v1/chat/completions')).toBeUndefined();
  });

  it("serves Ollama's OpenAI-compatible /v1 paths with the OpenAI module when ollama is configured", () => {
    expect(selectDialect('ollama', 'POST', '/api/chat')?.dialect.name).toBe('ollama');
    expect(selectDialect('ollama', 'POST', '/v1/chat/completions')?.dialect.name).toBe('openai');
  });

  it('tries custom dialects first in auto mode and finds them by name', () => {
    expect(selectDialect('auto', 'POST', '/infer/m/complete', [acme])?.dialect).toBe(acme);
    expect(selectDialect('acme', 'POST', '/infer/m/complete', [acme])?.dialect).toBe(acme);
    expect(dialectByName('acme', [acme])).toBe(acme);
  });

  it('registers every built-in dialect under a unique name', () => {
    const names = dialects.map((d) => d.name);
    expect(names).toEqual(['openai', 'anthropic', 'gemini', 'ollama']);
  });
});
